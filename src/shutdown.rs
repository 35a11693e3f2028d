//! How clicktap stops: both SIGTERM and SIGINT are graceful.
//!
//! Pingora treats SIGINT as a fast shutdown that cancels requests in flight; for a
//! sidecar whose promise is that nothing captured is lost, an interrupt from a
//! terminal deserves the same care as a `systemctl stop`. The sequence after a signal:
//! the listeners stop accepting, requests in flight get `proxy.grace_period` to finish,
//! Pingora's runtimes stop, and then `run` drains the capture channel, stops delivery
//! and flushes the queue. SIGQUIT is Pingora's signal for handing the listening sockets
//! to a new process (`clicktap run --upgrade`, see [`crate::upgrade`]): they are sent,
//! the old process keeps serving for five seconds, then stops as on SIGTERM.

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
                tracing::info!("SIGQUIT: handing the listening sockets to a new process (clicktap run --upgrade), then stopping gracefully");
                ShutdownSignal::GracefulUpgrade
            }
        }
    }
}

/// The stop as a consumer's task sees it: a flag it can look at between pieces of work
/// and a future it can `select!` on inside one, so that a task waiting on a receiver,
/// a token endpoint or a timer notices the stop at once rather than after the wait.
/// A child ([`Stop::child`]) stops with its parent or on its own: one webhook can be
/// stopped (a reload removed or changed it) while the others go on.
#[derive(Clone)]
pub struct Stop {
    own: tokio::sync::watch::Receiver<bool>,
    parent: Option<tokio::sync::watch::Receiver<bool>>,
}

/// The side that stops: dropping it stops too.
pub struct Stopper {
    tx: tokio::sync::watch::Sender<bool>,
}

/// Resolves once `rx` says stop, or its sender is gone (a stop as well).
async fn said(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

impl Stop {
    pub fn new() -> (Stopper, Stop) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (
            Stopper { tx },
            Stop {
                own: rx,
                parent: None,
            },
        )
    }

    /// A stop of its own that also follows this one.
    pub fn child(&self) -> (Stopper, Stop) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (
            Stopper { tx },
            Stop {
                own: rx,
                parent: Some(self.own.clone()),
            },
        )
    }

    pub fn is_stopped(&self) -> bool {
        let gone =
            |rx: &tokio::sync::watch::Receiver<bool>| *rx.borrow() || rx.has_changed().is_err();
        gone(&self.own) || self.parent.as_ref().is_some_and(gone)
    }

    /// Resolves once the stop is asked for (at once if it was). Cancel-safe.
    pub async fn stopped(&mut self) {
        match &mut self.parent {
            None => said(&mut self.own).await,
            Some(parent) => {
                tokio::select! {
                    _ = said(&mut self.own) => {}
                    _ = said(parent) => {}
                }
            }
        }
    }
}

impl Stopper {
    pub fn stop(&self) {
        self.tx.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_child_stops_with_its_parent_or_alone() {
        let (parent, p) = Stop::new();
        let (a_stopper, mut a) = p.child();
        let (_b_stopper, mut b) = p.child();
        assert!(!a.is_stopped() && !b.is_stopped());
        a_stopper.stop();
        a.stopped().await;
        assert!(a.is_stopped());
        assert!(!b.is_stopped(), "a sibling goes on");
        parent.stop();
        b.stopped().await;
        assert!(b.is_stopped());
        let (gone, mut c) = Stop::new();
        drop(gone);
        c.stopped().await;
        assert!(c.is_stopped(), "a dropped stopper is a stop");
    }
}
