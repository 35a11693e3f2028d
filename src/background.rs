//! Background threads (enrichment, delivery, the keeper) give way to the proxy's.

/// Marks the calling thread as batch work for the Linux scheduler: it keeps its full
/// share of CPU, but waking up does not preempt a running thread. Without this, a
/// background thread waking every millisecond cuts into the proxy's threads
/// mid-request, which on a busy machine costs visitors latency out of proportion to
/// the work it does.
pub fn mark_thread() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler reads `param` and changes only this thread's policy.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if rc != 0 {
            tracing::debug!("SCHED_BATCH not available; background work runs as normal work");
        }
    }
}

/// Lowers the calling thread's priority to `nice` (0-19): under CPU contention it gets
/// a smaller share than the proxy's threads, and catches up when they are idle. Linux
/// keeps the nice value per thread; raising it needs no privilege.
pub fn set_nice(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions; setpriority changes only this thread's
        // nice value.
        let rc =
            unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice) };
        if rc != 0 {
            tracing::debug!(nice, "cannot set the thread's nice value; it keeps its own");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}
