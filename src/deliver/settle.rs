//! What becomes of an event after an attempt: the one place that decides it.
//!
//! The rule this file keeps: no cursor moves past an event that was not delivered,
//! recorded for another attempt, or dead-lettered with its reason. Every way a request
//! can end is an [`Ending`], and every ending of every event is recorded here:
//! - delivered (a 2xx): counted; a retry's record is cleared;
//! - failed, attempts left: recorded as a retry (the whole request together, one delay,
//!   the request's message id kept for the next attempt); counted;
//! - failed, last attempt: a dead letter with the reason; counted;
//! - a back-off answer (429, 502, 503, 504): recorded as a retry due when the
//!   webhook's back-off ends, its attempts unchanged; counted as retried;
//! - a 410 Gone: the webhook is disabled, and the events recorded as retries, their
//!   attempts unchanged, sent once it is reactivated; counted as retried;
//! - not sent because the webhook was held meanwhile (backing off, or disabled by
//!   another answer of the same turn): likewise;
//! - the task failed (a panic): a failed attempt like any other;
//! - cut short or never started by a stop: recorded as a retry due at once, its
//!   attempts unchanged (no answer came back); counted as interrupted.
//!
//! [`Webhook::settle`] says whether it could record every event; the cursor moves
//! past new events ([`Webhook::pass`]) only when it could, so a storage error means
//! the events are sent again, never skipped.

use std::time::Duration;

use super::attempt::{Class, Outcome, message_id};
use super::log::{Answer, Request, Sending};
use super::member::Member;
use super::sent::Sent;
use super::state::{Dead, Pending};
use super::webhook::Webhook;
use crate::clock::now_ms;

/// How a request ended.
pub enum Ending {
    Answered(Outcome),
    /// Its task failed without an answer (a panic), with why.
    Failed(String),
    /// A stop cut it short (`started`) or came before it was sent.
    Interrupted {
        started: bool,
    },
}

/// What a turn passed over on its way to the cursor's next position: settled when the
/// cursor moves there.
#[derive(Default)]
pub struct Passed {
    pub next: u64,
    /// Events the webhook's filter did not select.
    pub filtered: u64,
    /// Events that do not decode, with why.
    pub unreadable: Vec<(u64, String)>,
}

impl Webhook {
    /// Records how a request ended for each of its events. Returns whether every
    /// record was written.
    pub(super) fn settle(&self, group: &[Member], ending: Ending) -> bool {
        match ending {
            Ending::Answered(o) => self.settle_answer(group, o),
            Ending::Failed(why) => self.settle_answer(group, Outcome::failed(why, Duration::ZERO)),
            Ending::Interrupted { started } => self.settle_interrupted(group, started),
        }
    }

    fn settle_answer(&self, group: &[Member], mut o: Outcome) -> bool {
        let now = now_ms();
        let id = self.id();
        let m = &self.metrics;
        m.delivery_attempts
            .with_label_values(&[id, o.class.label()])
            .inc();
        m.delivery_latency
            .with_label_values(&[id])
            .observe(o.latency.as_secs_f64());
        self.log_attempt(group, now, o.answer(), o.sent.take());
        let o = &o;
        let error = o.error.as_deref().unwrap_or("");
        match o.class {
            Class::Delivered => {
                let mut recorded = true;
                for member in group {
                    m.delivery_delivered.with_label_values(&[id]).inc();
                    self.replays.delivered(member.replay);
                    if let Some(due_at) = member.due_at
                        && let Err(e) = self.state.clear_retry(member.seq, due_at)
                    {
                        recorded = false;
                        tracing::error!(webhook = id, seq = member.seq, error = %e, "cannot record a delivery outcome; the event will be sent again");
                    }
                }
                self.update_health(o, now);
                recorded
            }
            // The receiver asked to slow down: no attempt used up, the whole webhook
            // waits, and these events come due when the back-off ends.
            Class::Backoff => {
                let delay = self.back_off(o, now);
                let due = self.queue.clock().now_ms() + delay.as_millis() as u64;
                self.reschedule(group, due, error)
            }
            // Disabled at once; the events wait for a reactivation, their attempts
            // unchanged (due now: the loop sends nothing while disabled).
            Class::Gone => {
                self.update_health(o, now);
                self.reschedule(group, self.queue.clock().now_ms(), error)
            }
            Class::Failed | Class::Interrupted => {
                let recorded = self.settle_failure(group, o, error);
                self.update_health(o, now);
                recorded
            }
        }
    }

    /// A failed attempt: each event is retried after the schedule (or the answer's
    /// `Retry-After`, within `retry.max_backoff`), or dead-lettered after its last.
    fn settle_failure(&self, group: &[Member], o: &Outcome, error: &str) -> bool {
        let id = self.id();
        let m = &self.metrics;
        // Due times are on the queue's clock, which a step of the wall clock leaves be.
        let due_base = self.queue.clock().now_ms();
        // One delay for the whole request, so that its events come due together.
        let delay = match o.retry_after {
            Some(d) => d.min(self.cfg.retry.max_backoff),
            None => {
                let attempt = group
                    .iter()
                    .map(|m| m.attempts_before + 1)
                    .max()
                    .unwrap_or(1);
                super::retry::delay(&self.cfg.retry, attempt)
            }
        };
        let message = Some(message_id(id, group));
        let mut recorded = true;
        for member in group {
            let attempt = member.attempts_before + 1;
            let result = if attempt >= self.cfg.retry.max_attempts {
                let dead = self.dead(member.seq, attempt, error, message.clone());
                if dead {
                    self.replays.failed_again(member.replay);
                }
                recorded &= dead;
                Ok(())
            } else {
                let r = self.state.set_pending(
                    member.seq,
                    &Pending {
                        attempts: attempt,
                        next_at_ms: due_base + delay.as_millis() as u64,
                        last_error: error.to_string(),
                        message: message.clone(),
                        replay: member.replay,
                    },
                );
                if r.is_ok() {
                    m.delivery_retried.with_label_values(&[id]).inc();
                }
                r
            };
            if let Err(e) = result {
                recorded = false;
                tracing::error!(webhook = id, seq = member.seq, error = %e, "cannot record a delivery outcome; the event will be sent again");
            }
        }
        recorded
    }

    /// Records `group` as retries due at `due_ms` (queue clock), their attempts unchanged:
    /// events the receiver did not refuse (a back-off, a 410) or that were not sent
    /// because the webhook is held. Counted as retried. Returns whether every record
    /// was written.
    pub(super) fn reschedule(&self, group: &[Member], due_ms: u64, why: &str) -> bool {
        let message = Some(message_id(self.id(), group));
        let mut recorded = true;
        for member in group {
            let r = self.state.set_pending(
                member.seq,
                &Pending {
                    attempts: member.attempts_before,
                    next_at_ms: due_ms,
                    last_error: why.to_string(),
                    message: message.clone(),
                    replay: member.replay,
                },
            );
            match r {
                Ok(()) => self
                    .metrics
                    .delivery_retried
                    .with_label_values(&[self.id()])
                    .inc(),
                Err(e) => {
                    recorded = false;
                    tracing::error!(webhook = self.id(), seq = member.seq, error = %e, "cannot record a retry; the event will be sent again");
                }
            }
        }
        recorded
    }

    fn settle_interrupted(&self, group: &[Member], started: bool) -> bool {
        let now = now_ms();
        let id = self.id();
        let why = if started {
            "cut short by a stop before the receiver answered"
        } else {
            "not sent before a stop"
        };
        if started {
            self.log_attempt(
                group,
                now,
                Answer {
                    at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
                    outcome: Some(Class::Interrupted),
                    status: None,
                    latency_ms: 0,
                    error: Some(why.to_string()),
                    response: String::new(),
                },
                None,
            );
        }
        let message = Some(message_id(id, group));
        let mut recorded = true;
        for member in group {
            let r = self.state.set_pending(
                member.seq,
                &Pending {
                    attempts: member.attempts_before,
                    next_at_ms: self.queue.clock().now_ms(),
                    last_error: why.to_string(),
                    message: message.clone(),
                    replay: member.replay,
                },
            );
            match r {
                Ok(()) => self
                    .metrics
                    .delivery_interrupted
                    .with_label_values(&[id])
                    .inc(),
                Err(e) => {
                    recorded = false;
                    tracing::error!(webhook = id, seq = member.seq, error = %e, "cannot record an interrupted attempt; the event will be sent again");
                }
            }
        }
        recorded
    }

    fn log_attempt(&self, group: &[Member], now: u64, answer: Answer, sent: Option<Sent>) {
        let message_id = message_id(self.id(), group);
        let replay = group.iter().any(|m| m.replay);
        // The message the events failed in, kept with their retry or dead letter; a
        // replay of delivered events was sent as this same message id (derived from
        // the same events), unless a batch grouped them otherwise.
        let replay_of = replay.then(|| {
            group
                .iter()
                .find_map(|m| m.message.clone())
                .unwrap_or_else(|| message_id.clone())
        });
        let request = Request {
            at_ms: now,
            answer,
            sending: Sending {
                message_id: Some(message_id),
                test: false,
                replay,
                replay_of,
                sent,
            },
            events: group
                .iter()
                .map(|m| (m.seq, m.attempts_before + 1, m.head.id.to_string()))
                .collect(),
        };
        if let Err(e) = self.recorder.record(request) {
            tracing::error!(webhook = self.id(), error = %e, "cannot write the delivery log");
        }
    }

    /// Settles what a turn passed over and moves the cursor past it: events that do not
    /// decode become dead letters, filtered ones are counted.
    pub(super) fn pass(&self, passed: Passed) {
        for (seq, why) in &passed.unreadable {
            tracing::error!(webhook = self.id(), seq, error = %why, "undecodable event; moved to dead letters");
            if !self.dead(*seq, 0, why, None) {
                return;
            }
        }
        if let Err(e) = self.queue.set_cursor(&self.consumer, passed.next) {
            tracing::error!(webhook = self.id(), error = %e, "cannot move the cursor; the events will be sent again");
            return;
        }
        if passed.filtered > 0 {
            self.metrics
                .delivery_skipped
                .with_label_values(&[self.id()])
                .inc_by(passed.filtered);
        }
    }

    /// Moves an event to the dead letters. Returns whether it was recorded.
    pub(super) fn dead(
        &self,
        seq: u64,
        attempts: u32,
        error: &str,
        message: Option<String>,
    ) -> bool {
        let d = Dead {
            attempts,
            at_ms: now_ms(),
            last_error: error.to_string(),
            message,
        };
        // Stored before it is counted: a dead letter the metric shows can be replayed.
        if let Err(e) = self.state.add_dead(seq, &d) {
            tracing::error!(webhook = self.id(), seq, error = %e, "cannot write a dead letter; the event will be sent again");
            return false;
        }
        self.metrics
            .delivery_dead
            .with_label_values(&[self.id()])
            .inc();
        tracing::warn!(
            webhook = self.id(),
            seq,
            attempts,
            error,
            "event moved to dead letters"
        );
        true
    }
}
