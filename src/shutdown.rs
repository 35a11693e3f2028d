//! How clicktap stops: both SIGTERM and SIGINT are graceful.
//!
//! Pingora treats SIGINT as a fast shutdown that cancels requests in flight; for a
//! sidecar whose promise is that nothing captured is lost, an interrupt from a
//! terminal deserves the same care as a `systemctl stop`. The sequence after a signal:
//! the listeners stop accepting, requests in flight get `proxy.grace_period` to finish,
//! Pingora's runtimes stop, and then `run` drains the capture channel, stops delivery
//! and flushes the queue. SIGQUIT, Pingora's signal for handing the listening sockets
//! to a new process, stops gracefully too: the hand-over is not wired yet, because the
//! queue can be held by one process at a time.

use async_trait::async_trait;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use tokio::signal::unix::{SignalKind, signal};

pub struct Signals;

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut term), Ok(mut int), Ok(mut quit)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::quit()),
        ) else {
            tracing::error!("cannot install signal handlers; stopping");
            return ShutdownSignal::GracefulTerminate;
        };
        tokio::select! {
            _ = term.recv() => {
                tracing::info!("SIGTERM: stopping gracefully");
                ShutdownSignal::GracefulTerminate
            }
            _ = int.recv() => {
                tracing::info!("SIGINT: stopping gracefully");
                ShutdownSignal::GracefulTerminate
            }
            _ = quit.recv() => {
                tracing::info!("SIGQUIT: stopping gracefully (socket hand-over is not supported)");
                ShutdownSignal::GracefulTerminate
            }
        }
    }
}

/// The stop as a consumer's task sees it: a flag it can look at between pieces of work
/// and a future it can `select!` on inside one, so that a task waiting on a receiver,
/// a token endpoint or a timer notices the stop at once rather than after the wait.
#[derive(Clone)]
pub struct Stop {
    rx: tokio::sync::watch::Receiver<bool>,
}

/// The side that stops: dropping it stops too.
pub struct Stopper {
    tx: tokio::sync::watch::Sender<bool>,
}

impl Stop {
    pub fn new() -> (Stopper, Stop) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (Stopper { tx }, Stop { rx })
    }

    pub fn is_stopped(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once the stop is asked for (at once if it was). Cancel-safe.
    pub async fn stopped(&mut self) {
        // An error means the stopper is gone, which is a stop as well.
        let _ = self.rx.wait_for(|s| *s).await;
    }
}

impl Stopper {
    pub fn stop(&self) {
        self.tx.send_replace(true);
    }
}
