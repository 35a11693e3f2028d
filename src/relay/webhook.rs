//! One webhook in a relay: its config, the sender its attempts go through, and what
//! the relay knows of it (consuming or not, disabled for every relay or not, what the
//! server last said of its consumer), for `/readyz`, `/api/v1/status` and the metrics.
//! Its sessions against NATS are in `session.rs`, the settling of each message in
//! `settle.rs`.

use async_nats::jetstream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::health::Disabled;
use crate::config::{RelayConfig, WebhookConfig};
use crate::deliver::sender::Sender;
use crate::metrics::Metrics;

pub struct Webhook {
    pub cfg: WebhookConfig,
    pub relay: Arc<RelayConfig>,
    pub sender: Sender,
    pub metrics: Arc<Metrics>,
    /// Whether it consumes now (what `/readyz` reports).
    pub consuming: AtomicBool,
    /// Whether this relay has seen the consumer: one missing afterwards was removed.
    pub(super) seen: AtomicBool,
    /// What the server last said of the consumer, and the last session's error.
    pub(super) status: parking_lot::Mutex<Status>,
    /// Disabled for every relay (a 410), as this relay last saw the health bucket.
    disabled: parking_lot::Mutex<Option<Disabled>>,
}

/// A webhook's consumer as `/api/v1/status` shows it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Status {
    /// Messages of the stream not yet handed to any relay.
    pub pending: Option<u64>,
    /// Messages handed out and not settled yet (in flight, or waiting for a retry).
    pub ack_pending: Option<u64>,
    /// Messages handed out more than once.
    pub redelivered: Option<u64>,
    /// When the server said so, in milliseconds since the Unix epoch.
    pub checked_ms: Option<u64>,
    /// The last session's error (NATS errors only; never a secret).
    pub last_error: Option<String>,
}

impl Webhook {
    pub fn new(
        cfg: WebhookConfig,
        relay: Arc<RelayConfig>,
        sender: Sender,
        metrics: Arc<Metrics>,
    ) -> Webhook {
        // Every series at 0 from the start, so that a rate over it has a beginning.
        for outcome in [
            "received",
            "delivered",
            "retried",
            "dead",
            "filtered",
            "unsettled",
            "max_deliver",
        ] {
            metrics
                .relay_messages
                .with_label_values(&[cfg.id.as_str(), outcome]);
        }
        metrics
            .relay_consumer_recreated
            .with_label_values(&[cfg.id.as_str()]);
        Webhook {
            cfg,
            relay,
            sender,
            metrics,
            consuming: AtomicBool::new(false),
            seen: AtomicBool::new(false),
            status: parking_lot::Mutex::new(Status::default()),
            disabled: parking_lot::Mutex::new(None),
        }
    }

    /// Why the webhook is disabled, if it is.
    pub fn disabled(&self) -> Option<Disabled> {
        self.disabled.lock().clone()
    }

    /// Takes the health bucket's word for whether the webhook is disabled; logs a change.
    pub(super) fn set_disabled(&self, mark: Option<Disabled>) {
        let id = self.cfg.id.as_str();
        let mut d = self.disabled.lock();
        match (&*d, &mark) {
            (None, Some(m)) => tracing::warn!(
                webhook = id,
                reason = m.reason,
                "webhook disabled for every relay: its messages wait in the stream until `clicktap relay --reactivate {id}`"
            ),
            (Some(_), None) => tracing::info!(webhook = id, "webhook reactivated: relaying again"),
            _ => {}
        }
        let gauge = match (&mark, self.consuming.load(Ordering::Relaxed)) {
            (Some(_), _) => 2,
            (None, true) => 0,
            (None, false) => 1,
        };
        self.metrics.relay_state.with_label_values(&[id]).set(gauge);
        *d = mark;
    }

    pub fn status(&self) -> Status {
        self.status.lock().clone()
    }

    /// Keeps what the server said of the consumer, for status and metrics.
    pub(super) fn counts(&self, info: &jetstream::consumer::Info) {
        let id = self.cfg.id.as_str();
        self.metrics
            .relay_pending
            .with_label_values(&[id])
            .set(info.num_pending as i64);
        self.metrics
            .relay_ack_pending
            .with_label_values(&[id])
            .set(info.num_ack_pending as i64);
        let mut s = self.status.lock();
        s.pending = Some(info.num_pending);
        s.ack_pending = Some(info.num_ack_pending as u64);
        s.redelivered = Some(info.num_redelivered as u64);
        s.checked_ms = Some(crate::clock::now_ms());
    }

    pub(super) fn set_consuming(&self, on: bool) {
        self.consuming.store(on, Ordering::Relaxed);
        let gauge = match (on, self.disabled.lock().is_some()) {
            (true, true) => 2,
            (true, false) => 0,
            (false, _) => 1,
        };
        self.metrics
            .relay_state
            .with_label_values(&[self.cfg.id.as_str()])
            .set(gauge);
    }
}
