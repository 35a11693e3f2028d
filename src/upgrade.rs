//! A binary upgrade without a refused connection, as Pingora does it: the new process
//! (`clicktap run --upgrade`) asks the running one to hand over its listening sockets,
//! and serves from them at once, while the old one finishes its requests, drains its
//! channel, flushes and lets go of the queue.
//!
//! The order, which this module keeps:
//! 1. the new process reads the running one's pid from the pid file beside the queue
//!    and sends it SIGQUIT;
//! 2. the old one sends its listening sockets over the upgrade socket (also beside the
//!    queue), keeps serving for Pingora's five seconds, then stops like on SIGTERM;
//! 3. the new one, which waited on the upgrade socket, serves and captures; its events
//!    wait in memory (`queue.spool_bytes`) until the old one has released the queue,
//!    which it opens as soon as it can, and delivery starts there.
//!
//! The files are named after `queue.path`, which one clicktap at a time holds, so two
//! clicktaps on one machine never meet.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::QueueConfig;
use crate::metrics::Metrics;
use crate::queue::{Queue, QueueError};

/// Where the running clicktap's pid is written: beside its queue.
pub fn pid_file(queue: &QueueConfig) -> PathBuf {
    beside(&queue.path, "pid")
}

/// The unix socket the listening sockets are handed over on.
pub fn socket(queue: &QueueConfig) -> PathBuf {
    beside(&queue.path, "upgrade.sock")
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// Records this process as the queue's holder.
pub fn write_pid(queue: &QueueConfig) {
    let path = pid_file(queue);
    if let Err(e) = std::fs::write(&path, format!("{}\n", std::process::id())) {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the pid file; an upgrade will not find this process");
    }
}

/// Removes the pid file if it still names this process (after an upgrade it names
/// the new one).
pub fn remove_pid(queue: &QueueConfig) {
    let path = pid_file(queue);
    if read_pid(&path) == Some(std::process::id()) {
        let _ = std::fs::remove_file(path);
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Asks the running clicktap to hand over its sockets (SIGQUIT); its pid.
pub fn quit_old(queue: &QueueConfig) -> anyhow::Result<u32> {
    let path = pid_file(queue);
    let pid = read_pid(&path).ok_or_else(|| {
        anyhow::anyhow!(
            "--upgrade: no running clicktap found ({} is missing or unreadable); start without --upgrade",
            path.display()
        )
    })?;
    // SAFETY: kill with a pid read from our pid file and a signal number; no memory
    // is shared. Signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
    if !alive || pid == std::process::id() {
        anyhow::bail!(
            "--upgrade: the clicktap of {} (pid {pid}) is not running; start without --upgrade",
            path.display()
        );
    }
    // SAFETY: as above.
    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGQUIT) } != 0 {
        anyhow::bail!(
            "--upgrade: cannot signal pid {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    tracing::info!(
        pid,
        "upgrade: asked the running clicktap for its listening sockets"
    );
    Ok(pid)
}

/// Whether opening failed only because another process holds the queue: sled reports
/// its file lock taken as an I/O error of its own wording.
fn held_elsewhere(e: &QueueError) -> bool {
    match e {
        QueueError::Open {
            source: sled::Error::Io(io),
            ..
        } => {
            io.kind() == std::io::ErrorKind::WouldBlock
                || io.to_string().contains("could not acquire lock")
        }
        _ => false,
    }
}

/// Opens the queue, waiting while another process holds it (the old one of an upgrade),
/// until `stop` says to give up. Other errors end the wait at once.
pub fn open_when_free(
    cfg: &QueueConfig,
    metrics: std::sync::Arc<Metrics>,
    stop: &dyn Fn() -> bool,
) -> Result<Queue, QueueError> {
    let started = Instant::now();
    let mut said = Instant::now();
    loop {
        match Queue::open(cfg, metrics.clone()) {
            Ok(q) => {
                tracing::info!(waited = %crate::logging::duration(started.elapsed()), "queue open");
                return Ok(q);
            }
            Err(e) if held_elsewhere(&e) && !stop() => {
                if said.elapsed() >= Duration::from_secs(10) {
                    tracing::info!(waited = %crate::logging::duration(started.elapsed()), "waiting for the previous clicktap to release the queue; events wait in memory meanwhile");
                    said = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}
