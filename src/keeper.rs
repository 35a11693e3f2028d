//! The keeper: a background thread that applies the queue's retention and reports
//! drops in the log.
//!
//! Drops are counted on the request path with one atomic add; logging them there
//! would put I/O back on it. The keeper reads the counters instead and writes one line
//! per interval in which something was dropped.

use crossbeam_channel::{Sender, bounded};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::metrics::Metrics;
use crate::queue::Queue;

pub struct Keeper {
    stop: Sender<()>,
    handle: JoinHandle<()>,
}

impl Keeper {
    pub fn start(queue: Queue, metrics: Arc<Metrics>, every: Duration) -> std::io::Result<Keeper> {
        let (stop, stopped) = bounded::<()>(1);
        let handle = std::thread::Builder::new()
            .name("clicktap-keeper".into())
            .spawn(move || {
                crate::background::mark_thread();
                let mut seen = Drops::read(&metrics);
                loop {
                    if let Err(e) = queue.retain(queue.clock().now_ms()) {
                        tracing::error!(error = %e, "queue retention failed");
                    }
                    let now = Drops::read(&metrics);
                    now.report_since(&seen);
                    seen = now;
                    if stopped.recv_timeout(every).is_ok() {
                        break;
                    }
                }
            })?;
        Ok(Keeper { stop, handle })
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.join();
    }
}

#[derive(Clone, Copy)]
struct Drops {
    channel_full: u64,
    closed: u64,
    queue_full: u64,
    evicted: u64,
    expired: u64,
    error: u64,
}

impl Drops {
    fn read(m: &Metrics) -> Drops {
        Drops {
            channel_full: m.capture_dropped_full.get(),
            closed: m.capture_dropped_closed.get(),
            queue_full: m.queue_dropped_full.get(),
            evicted: m.queue_evicted.get(),
            expired: m.queue_expired.get(),
            error: m.queue_dropped_error.get(),
        }
    }

    fn report_since(&self, before: &Drops) {
        let capture = (
            self.channel_full - before.channel_full,
            self.closed - before.closed,
        );
        if capture != (0, 0) {
            tracing::warn!(
                channel_full = capture.0,
                closed = capture.1,
                "clicks dropped at capture; raise enrich.channel_capacity or enrich.workers"
            );
        }
        let queue = (
            self.queue_full - before.queue_full,
            self.evicted - before.evicted,
            self.expired - before.expired,
            self.error - before.error,
        );
        if queue != (0, 0, 0, 0) {
            tracing::warn!(
                full = queue.0,
                evicted = queue.1,
                expired = queue.2,
                error = queue.3,
                "events lost in the queue before every webhook read them"
            );
        }
    }
}
