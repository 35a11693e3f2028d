//! Webhook health, as Bitly and T.LY run it: the first failure puts a webhook in
//! alerting, a success makes it healthy again, and failing without a success for
//! `disable_after` disables it. A disabled webhook gets no attempts; its events stay
//! in the queue (within retention) and its cursor and retries stay where they were,
//! so reactivating it resumes delivery.
//!
//! Two answers are read as the Standard Webhooks spec asks: a 410 Gone disables the
//! webhook at once (`disabled_reason` says why it was disabled, whichever way), and a
//! 429, 502, 503 or 504 backs it off: no request for the back-off's time
//! (`backoff_until_ms`), its state left as it was, nothing counted toward
//! `disable_after`. Only reactivating lifts `disabled`: an answer in flight that
//! succeeds after the webhook was disabled does not.
//!
//! The times a person reads (`failing_since_ms`, `last_success_ms`, `last_failure_ms`)
//! are wall-clock times; how long a webhook has been failing is measured on the
//! queue's clock ([`crate::clock::Timeline`]), so that a step of the wall clock neither
//! disables a webhook at its next failure nor holds it alerting a day too long.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::attempt::{Class, Outcome};
use super::webhook::Webhook;
use crate::config::MIN_BACKOFF;
use crate::notice::{Change, Notice};

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
    /// Why it was disabled (a 410, or failing for `disable_after`), while disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// When it was disabled (wall clock), while disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_ms: Option<u64>,
    /// While backing off: until when (wall clock, to show) and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_until_ms: Option<u64>,
    /// The same on the queue's clock: what delivery waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_until_clock_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_reason: Option<String>,
    /// Back-off answers since the last other answer: picks the retry schedule's delay
    /// when the receiver sends no `Retry-After`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub backoffs: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
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
            disabled_reason: None,
            disabled_ms: None,
            backoff_until_ms: None,
            backoff_until_clock_ms: None,
            backoff_reason: None,
            backoffs: 0,
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
    /// Records a success; returns the new state when it changed. A disabled webhook
    /// stays disabled (a request that was in flight when it was disabled).
    pub fn success(&mut self, now: Now) -> Option<State> {
        self.last_success_ms = Some(now.wall_ms);
        self.end_backoff();
        if self.state == State::Disabled {
            return None;
        }
        self.failing_since_ms = None;
        self.failing_since_clock_ms = None;
        self.transition(State::Healthy)
    }

    /// Records a failure; returns the new state when it changed.
    pub fn failure(&mut self, now: Now, disable_after_ms: u64, error: &str) -> Option<State> {
        self.last_failure_ms = Some(now.wall_ms);
        self.last_error = Some(error.to_string());
        // A failure ends a streak of back-off answers, not a back-off: an answer of
        // another request in flight does not cut short the wait the receiver asked for.
        self.backoffs = 0;
        self.failing_since_ms.get_or_insert(now.wall_ms);
        // A health stored before the clock was kept counts from its next failure.
        let since = *self.failing_since_clock_ms.get_or_insert(now.clock_ms);
        if now.clock_ms.saturating_sub(since) >= disable_after_ms {
            let reason = format!(
                "failed without a success for disable_after ({}); last error: {error}",
                humantime::format_duration(std::time::Duration::from_millis(disable_after_ms))
            );
            self.disable(now, reason)
        } else {
            self.transition(State::Alerting)
        }
    }

    /// Records a 410 Gone: disabled at once, with the reason.
    pub fn gone(&mut self, now: Now, error: &str) -> Option<State> {
        self.last_failure_ms = Some(now.wall_ms);
        self.last_error = Some(error.to_string());
        self.end_backoff();
        self.disable(now, error.to_string())
    }

    /// Records a back-off answer: no request until `until` (queue clock), shown as
    /// `until_wall_ms`. The state and the failure clock are left as they are.
    pub fn backoff(&mut self, until: Now, reason: &str) {
        self.backoffs = self.backoffs.saturating_add(1);
        self.backoff_until_ms = Some(until.wall_ms);
        self.backoff_until_clock_ms = Some(until.clock_ms);
        self.backoff_reason = Some(reason.to_string());
    }

    /// How long is left of a back-off at `clock_ms` (queue clock), if one is on.
    pub fn backing_off(&self, clock_ms: u64) -> Option<u64> {
        self.backoff_until_clock_ms
            .filter(|until| *until > clock_ms)
            .map(|until| until - clock_ms)
    }

    fn end_backoff(&mut self) {
        self.backoffs = 0;
        self.backoff_until_ms = None;
        self.backoff_until_clock_ms = None;
        self.backoff_reason = None;
    }

    fn disable(&mut self, now: Now, reason: String) -> Option<State> {
        if self.state == State::Disabled {
            return None;
        }
        self.disabled_reason = Some(reason);
        self.disabled_ms = Some(now.wall_ms);
        self.transition(State::Disabled)
    }

    /// Back to healthy by hand, with a fresh failure clock and no back-off.
    pub fn reactivate(&mut self) -> Option<State> {
        self.failing_since_ms = None;
        self.failing_since_clock_ms = None;
        self.disabled_reason = None;
        self.disabled_ms = None;
        self.end_backoff();
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
    /// Back-off answers go through [`Webhook::back_off`] instead.
    pub(super) fn update_health(&self, o: &Outcome, wall_ms: u64) {
        let now = Now {
            wall_ms,
            clock_ms: self.queue.clock().now_ms(),
        };
        let mut h = self.health.lock();
        let error = o.error.as_deref().unwrap_or("failed");
        let changed = match o.class {
            Class::Delivered => h.success(now),
            Class::Gone => h.gone(now, error),
            _ => h.failure(now, self.cfg.disable_after.as_millis() as u64, error),
        };
        // Failure times are kept even without a transition, so that `disable_after`
        // counts across restarts; a success without one changes nothing worth a write.
        if changed.is_some() || !o.delivered() {
            let _ = self.state.set_health(&h);
        }
        let Some(state) = changed else { return };
        self.metrics
            .delivery_state
            .with_label_values(&[self.id()])
            .set(state.as_gauge());
        let (change, reason) = match state {
            State::Healthy => (Change::Recovered, "delivered again".to_string()),
            State::Alerting => (Change::Alerting, h.last_error.clone().unwrap_or_default()),
            State::Disabled => (
                Change::Disabled,
                h.disabled_reason.clone().unwrap_or_default(),
            ),
        };
        self.notify(change, reason, wall_ms);
        match state {
            State::Healthy => tracing::info!(webhook = self.id(), "webhook healthy again"),
            State::Alerting => {
                tracing::warn!(
                    webhook = self.id(),
                    error = h.last_error.as_deref().unwrap_or("none"),
                    "webhook failing: alerting"
                )
            }
            State::Disabled => {
                let reason = if o.class == Class::Gone {
                    "gone"
                } else {
                    "failing"
                };
                self.metrics
                    .delivery_disabled
                    .with_label_values(&[self.id(), reason])
                    .inc();
                tracing::error!(
                    webhook = self.id(),
                    reason = h.disabled_reason.as_deref().unwrap_or("none"),
                    "webhook disabled; its events are kept until it is reactivated"
                )
            }
        }
    }

    /// Applies a back-off answer (429, 502, 503, 504): the webhook sends nothing for the
    /// returned delay, which is the answer's `Retry-After`, or else the retry schedule's
    /// delay for the number of back-off answers in a row; at least [`MIN_BACKOFF`], at
    /// most `retry.max_backoff`. Logged when a back-off begins, not at each answer.
    pub(super) fn back_off(&self, o: &Outcome, wall_ms: u64) -> Duration {
        let clock_ms = self.queue.clock().now_ms();
        let mut h = self.health.lock();
        let delay = o
            .retry_after
            .unwrap_or_else(|| super::retry::delay(&self.cfg.retry, h.backoffs + 1))
            .clamp(MIN_BACKOFF, self.cfg.retry.max_backoff.max(MIN_BACKOFF));
        let ms = delay.as_millis() as u64;
        let until = Now {
            wall_ms: wall_ms.saturating_add(ms),
            clock_ms: clock_ms.saturating_add(ms),
        };
        let reason = o.error.as_deref().unwrap_or("backing off");
        let began = h.backoffs == 0;
        h.backoff(until, reason);
        let _ = self.state.set_health(&h);
        if began {
            tracing::warn!(
                webhook = self.id(),
                status = o.status.unwrap_or(0),
                delay = %humantime::format_duration(delay),
                retry_after = o.retry_after.is_some(),
                "webhook backing off: the receiver is overloaded; no request until the delay has passed (not counted toward disable_after)"
            );
        }
        delay
    }

    /// Tells the alert task (never waits: a full channel drops and counts the notice).
    pub(super) fn notify(&self, change: Change, reason: String, at_ms: u64) {
        self.notices.send(Notice {
            webhook: self.id().to_string(),
            url: crate::redact::url(&self.cfg.url),
            change,
            reason,
            at_ms,
        });
    }

    /// What holds the webhook's requests now: disabled (until reactivated), or a
    /// back-off with how long is left of it.
    pub(super) fn holding(&self) -> Option<Hold> {
        let h = self.health.lock();
        if h.state == State::Disabled {
            return Some(Hold::Disabled);
        }
        h.backing_off(self.queue.clock().now_ms())
            .map(|ms| Hold::Backoff(Duration::from_millis(ms)))
    }
}

/// Why a webhook sends nothing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    Disabled,
    /// Backing off for this much longer.
    Backoff(Duration),
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
    fn a_410_disables_at_once_and_a_late_success_does_not_lift_it() {
        let mut h = Health::default();
        assert_eq!(
            h.gone(at(1_000), "answered 410 Gone"),
            Some(State::Disabled)
        );
        assert_eq!(h.disabled_reason.as_deref(), Some("answered 410 Gone"));
        assert_eq!(h.disabled_ms, Some(1_000));
        // A request that was in flight comes back delivered: still disabled.
        assert_eq!(h.success(at(1_100)), None);
        assert_eq!(h.state, State::Disabled);
        assert_eq!(h.reactivate(), Some(State::Healthy));
        assert_eq!(h.disabled_reason, None);
    }

    #[test]
    fn back_offs_leave_the_state_and_the_failure_clock_alone() {
        let mut h = Health::default();
        for i in 0..100u64 {
            h.backoff(at(i * 1_000 + 500), "answered 429");
        }
        assert_eq!(h.state, State::Healthy);
        assert_eq!(h.failing_since_clock_ms, None);
        assert_eq!(h.backoffs, 100);
        assert_eq!(h.backing_off(99_000), Some(500));
        assert_eq!(h.backing_off(99_500), None);
        // Failing for disable_after disables; the back-offs before did not count.
        h.failure(at(200_000), 60_000, "500");
        assert_eq!(h.state, State::Alerting);
        assert_eq!(h.backoffs, 0, "another answer ends the streak");
        assert_eq!(h.backing_off(99_000), Some(500), "but not the back-off");
        h.failure(at(260_000), 60_000, "500");
        assert_eq!(h.state, State::Disabled);
        assert!(
            h.disabled_reason
                .as_deref()
                .unwrap()
                .starts_with("failed without a success"),
            "{:?}",
            h.disabled_reason
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
