//! Notices: what delivery tells the alert task (a webhook turned alerting, was disabled,
//! recovered), handed over a bounded channel that never waits.
//!
//! It sits low, below both `deliver` and `alert`, so that delivery tells without
//! knowing how a person is told. A full channel (the alert task far behind, say an SMTP
//! server hanging) drops the notice and counts it (`clicktap_alerts_dropped_total`):
//! delivery never waits on alerts, and the request path never sends one.

use std::sync::Arc;

use crate::metrics::Metrics;

/// Notices waiting for the alert task, at most.
pub const CAPACITY: usize = 1024;

/// What changed about a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Alerting,
    Disabled,
    Recovered,
}

#[derive(Debug, Clone)]
pub struct Notice {
    pub webhook: String,
    /// The webhook's URL as logs show it (no userinfo, no query).
    pub url: String,
    pub change: Change,
    /// Why: the last error, the reason it was disabled, or how it recovered.
    pub reason: String,
    /// When, on the wall clock (ms).
    pub at_ms: u64,
}

/// The sending end, cloned into every webhook.
#[derive(Clone)]
pub struct Notices {
    tx: tokio::sync::mpsc::Sender<Notice>,
    metrics: Arc<Metrics>,
}

impl Notices {
    /// A channel of [`CAPACITY`] notices.
    pub fn channel(metrics: Arc<Metrics>) -> (Notices, tokio::sync::mpsc::Receiver<Notice>) {
        let (tx, rx) = tokio::sync::mpsc::channel(CAPACITY);
        (Notices { tx, metrics }, rx)
    }

    /// Hands `n` to the alert task, or drops and counts it: never waits.
    pub fn send(&self, n: Notice) {
        if self.tx.try_send(n).is_err() {
            self.metrics.alerts_dropped.inc();
        }
    }
}
