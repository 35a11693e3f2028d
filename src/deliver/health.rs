//! Webhook health, as Bitly and T.LY run it: the first failure puts a webhook in
//! alerting, a success makes it healthy again, and failing without a success for
//! `disable_after` disables it. A disabled webhook gets no attempts; its events stay
//! in the queue (within retention) and its cursor and retries stay where they were,
//! so reactivating it resumes delivery.
//!
//! The times a person reads (`failing_since_ms`, `last_success_ms`, `last_failure_ms`)
//! are wall-clock times; how long a webhook has been failing is measured on the
//! queue's clock ([`crate::clock::Timeline`]), so that a step of the wall clock neither
//! disables a webhook at its next failure nor holds it alerting a day too long.

use serde::{Deserialize, Serialize};

use super::attempt::Outcome;
use super::webhook::Webhook;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Healthy,
    Alerting,
    Disabled,
}

impl State {
    pub fn as_gauge(self) -> i64 {
        match self {
            State::Healthy => 0,
            State::Alerting => 1,
            State::Disabled => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub state: State,
    /// The first failure since the last success.
    pub failing_since_ms: Option<u64>,
    /// The same, on the queue's clock: what `disable_after` is measured from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since_clock_ms: Option<u64>,
    pub last_success_ms: Option<u64>,
    pub last_failure_ms: Option<u64>,
    pub last_error: Option<String>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            state: State::Healthy,
            failing_since_ms: None,
            failing_since_clock_ms: None,
            last_success_ms: None,
            last_failure_ms: None,
            last_error: None,
        }
    }
}

/// An instant on both clocks: the wall clock's reading to show, the queue's to measure.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub wall_ms: u64,
    pub clock_ms: u64,
}

impl Health {
    /// Records a success; returns the new state when it changed.
    pub fn success(&mut self, now: Now) -> Option<State> {
        self.last_success_ms = Some(now.wall_ms);
        self.failing_since_ms = None;
        self.failing_since_clock_ms = None;
        self.transition(State::Healthy)
    }

    /// Records a failure; returns the new state when it changed.
    pub fn failure(&mut self, now: Now, disable_after_ms: u64, error: &str) -> Option<State> {
        self.last_failure_ms = Some(now.wall_ms);
        self.last_error = Some(error.to_string());
        self.failing_since_ms.get_or_insert(now.wall_ms);
        // A health stored before the clock was kept counts from its next failure.
        let since = *self.failing_since_clock_ms.get_or_insert(now.clock_ms);
        if now.clock_ms.saturating_sub(since) >= disable_after_ms {
            self.transition(State::Disabled)
        } else {
            self.transition(State::Alerting)
        }
    }

    /// Back to healthy by hand, with a fresh failure clock.
    pub fn reactivate(&mut self) -> Option<State> {
        self.failing_since_ms = None;
        self.failing_since_clock_ms = None;
        self.transition(State::Healthy)
    }

    fn transition(&mut self, to: State) -> Option<State> {
        if self.state == State::Disabled && to != State::Healthy {
            return None;
        }
        (self.state != to).then(|| {
            self.state = to;
            to
        })
    }
}

impl Webhook {
    /// Applies an answer to the webhook's health; a change is stored, counted and logged.
    pub(super) fn update_health(&self, o: &Outcome, wall_ms: u64) {
        let now = Now {
            wall_ms,
            clock_ms: self.queue.clock().now_ms(),
        };
        let mut h = self.health.lock();
        let changed = if o.delivered {
            h.success(now)
        } else {
            let error = o.error.as_deref().unwrap_or("failed");
            h.failure(now, self.cfg.disable_after.as_millis() as u64, error)
        };
        // Failure times are kept even without a transition, so that `disable_after`
        // counts across restarts; a success without one changes nothing worth a write.
        if changed.is_some() || !o.delivered {
            let _ = self.state.set_health(&h);
        }
        let Some(state) = changed else { return };
        self.metrics
            .delivery_state
            .with_label_values(&[self.id()])
            .set(state.as_gauge());
        match state {
            State::Healthy => tracing::info!(webhook = self.id(), "webhook healthy again"),
            State::Alerting => {
                tracing::warn!(
                    webhook = self.id(),
                    error = h.last_error.as_deref().unwrap_or("none"),
                    "webhook failing: alerting"
                )
            }
            State::Disabled => tracing::error!(
                webhook = self.id(),
                disable_after = %crate::logging::duration(self.cfg.disable_after),
                error = h.last_error.as_deref().unwrap_or("none"),
                "webhook failed without a success for disable_after: disabled; its events are kept until it is reactivated"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both clocks reading `ms`.
    fn at(ms: u64) -> Now {
        Now {
            wall_ms: ms,
            clock_ms: ms,
        }
    }

    #[test]
    fn first_failure_alerts_and_a_success_clears_it() {
        let mut h = Health::default();
        assert_eq!(h.failure(at(1_000), 60_000, "503"), Some(State::Alerting));
        assert_eq!(h.failure(at(2_000), 60_000, "503"), None);
        assert_eq!(h.success(at(3_000)), Some(State::Healthy));
        assert_eq!(h.failing_since_ms, None);
    }

    #[test]
    fn failing_for_disable_after_disables_until_reactivated() {
        let mut h = Health::default();
        h.failure(at(0), 60_000, "timeout");
        assert_eq!(h.failure(at(59_999), 60_000, "timeout"), None);
        assert_eq!(
            h.failure(at(60_000), 60_000, "timeout"),
            Some(State::Disabled)
        );
        assert_eq!(h.failure(at(70_000), 60_000, "timeout"), None);
        assert_eq!(h.state, State::Disabled);
        assert_eq!(h.reactivate(), Some(State::Healthy));
        // The clock starts again: one failure alerts, it does not disable at once.
        assert_eq!(
            h.failure(at(80_000), 60_000, "timeout"),
            Some(State::Alerting)
        );
    }

    #[test]
    fn a_step_of_the_wall_clock_does_not_disable_a_webhook() {
        let mut h = Health::default();
        h.failure(at(1_000), 60_000, "503");
        // The wall clock jumps a day ahead; the queue's clock moved a second.
        let stepped = Now {
            wall_ms: 1_000 + 86_400_000,
            clock_ms: 2_000,
        };
        assert_eq!(h.failure(stepped, 60_000, "503"), None);
        assert_eq!(h.state, State::Alerting);
        assert_eq!(
            h.last_failure_ms,
            Some(stepped.wall_ms),
            "shown as the wall clock read"
        );
    }
}
