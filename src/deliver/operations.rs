//! What an operator can do to a running webhook through the admin API: read its
//! health, reactivate it, count and replay its dead letters.

use super::health::{Health, State};
use super::webhook::Webhook;
use crate::clock::now_ms;
use crate::queue::QueueError;

impl Webhook {
    pub fn health(&self) -> Health {
        self.health.lock().clone()
    }

    /// Back to healthy by hand: attempts resume from where they stopped.
    pub fn reactivate(&self) {
        let mut h = self.health.lock();
        if h.reactivate().is_some() {
            let _ = self.state.set_health(&h);
            self.metrics
                .delivery_state
                .with_label_values(&[self.id()])
                .set(State::Healthy.as_gauge());
            tracing::info!(webhook = self.id(), "webhook reactivated");
        }
        self.reactivated.notify_one();
    }

    pub fn dead_letters(&self) -> Result<usize, QueueError> {
        self.state.dead_count()
    }

    /// Events waiting for a retry.
    pub fn retries(&self) -> Result<usize, QueueError> {
        self.state.pending_count()
    }

    /// Puts every dead letter back in line for an attempt now, each with the events it
    /// failed with, so that it keeps its message id.
    pub fn replay_dead(&self) -> Result<usize, QueueError> {
        let n = self.state.replay_dead(now_ms())?;
        tracing::info!(webhook = self.id(), replayed = n, "dead letters replayed");
        self.reactivated.notify_one();
        Ok(n)
    }
}
