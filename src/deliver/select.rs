//! What a turn takes up: the retries that are due, and new events from the cursor.
//!
//! Taking events has no side effects: events a filter passes over and events that do
//! not decode are counted and dead-lettered when the cursor moves past them
//! ([`super::settle`]), not when they are read, because a batch that is still filling
//! reads the same events again on the next turn.

use std::sync::Arc;
use std::time::Duration;

use super::filter;
use super::group;
use super::member::Member;
use super::settle::Passed;
use super::state::Pending;
use super::webhook::Webhook;
use crate::queue::Stored;
use crate::shutdown::Stop;

/// What a part of a turn did.
pub enum Progress {
    /// Sent something: look again at once.
    Worked,
    /// Nothing to send before this long from now (a retry's time, a filling batch).
    Wait(Duration),
    /// Nothing to send.
    Idle,
}

impl Webhook {
    /// Sends the retries that are due; the events of one failed request go together
    /// again, with the message id they had.
    pub(super) async fn retry_due(self: &Arc<Self>, stop: &mut Stop) -> Progress {
        let now = self.queue.clock().now_ms();
        let (due, next) = match self.state.due(now, self.window()) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(webhook = self.id(), error = %e, "cannot read due retries");
                return Progress::Wait(self.delivery.poll_interval);
            }
        };
        if due.is_empty() {
            return match next {
                Some(at) => Progress::Wait(Duration::from_millis(at.saturating_sub(now))),
                None => Progress::Idle,
            };
        }
        let mut members = Vec::with_capacity(due.len());
        for (seq, p) in due {
            match self.retry_member(seq, &p) {
                Ok(Some(m)) => members.push(m),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(webhook = self.id(), seq, error = %e, "cannot read a retry's event");
                    return Progress::Wait(self.delivery.poll_interval);
                }
            }
        }
        let groups = group::retries(members, self.per_request());
        self.dispatch(groups, stop).await;
        Progress::Worked
    }

    /// The event a retry is for; `None` when it is settled here (dead-lettered because
    /// its event left the queue or does not decode).
    fn retry_member(
        &self,
        seq: u64,
        p: &Pending,
    ) -> Result<Option<Member>, crate::queue::QueueError> {
        let Some(stored) = self.queue.get(seq)? else {
            let why = format!(
                "left the queue (retention or room) before delivery; last error: {}",
                p.last_error
            );
            self.dead(seq, p.attempts, &why, p.message.clone());
            self.replays.failed_again(p.replay);
            return Ok(None);
        };
        match Member::read(stored, self.reads_whole_events()) {
            Ok(m) => Ok(Some(Member {
                attempts_before: p.attempts,
                due_at: Some(p.next_at_ms),
                message: p.message.clone(),
                replay: p.replay,
                ..m
            })),
            Err(e) => {
                self.dead(seq, p.attempts, &format!("undecodable event: {e}"), None);
                self.replays.failed_again(p.replay);
                Ok(None)
            }
        }
    }

    /// Sends new events from the cursor on, then moves the cursor past them.
    pub(super) async fn read_new(self: &Arc<Self>, stop: &mut Stop) -> Progress {
        if self.held_back() {
            return Progress::Wait(self.delivery.poll_interval);
        }
        let first = self.queue.first();
        let head = self.queue.head();
        let cursor = match self.queue.cursor(&self.consumer) {
            Ok(c) => c.unwrap_or(head).max(first),
            Err(e) => {
                tracing::error!(webhook = self.id(), error = %e, "cannot read the cursor");
                return Progress::Wait(self.delivery.poll_interval);
            }
        };
        self.metrics
            .delivery_lag
            .with_label_values(&[self.id()])
            .set(head.saturating_sub(cursor) as i64);
        if cursor >= head {
            return Progress::Idle;
        }
        let window = self.window();
        let stored = match self.queue.read(cursor, window) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(webhook = self.id(), error = %e, "cannot read the queue");
                return Progress::Wait(self.delivery.poll_interval);
            }
        };
        let Some(last) = stored.last().map(|s| s.seq) else {
            return Progress::Idle;
        };
        let reached_head = stored.len() < window;
        let (members, passed) = self.take(stored, last + 1);
        let per = self.per_request();
        if per > 1 && reached_head && !members.is_empty() && members.len() < per {
            let oldest = members[0].age(self.queue.clock().now_ms());
            if oldest < self.cfg.batch.max_wait {
                return Progress::Wait(self.cfg.batch.max_wait - oldest);
            }
        }
        let recorded = self.dispatch(group::new_events(members, per), stop).await;
        if recorded {
            self.pass(passed);
        }
        Progress::Worked
    }

    /// Whether new events wait in the queue because this webhook's retries and dead
    /// letters are at `delivery.state_max_bytes`, or the disk is below
    /// `queue.min_free_bytes`: each new event that fails adds to them, while a retry
    /// that fails again only replaces its own record. So the state stays within its
    /// bound plus one turn's events, and the events held back meet the queue's own
    /// bounds (`queue.retention`, `queue.max_bytes`), counted there. Holding is counted
    /// (`clicktap_delivery_held_total`) and logged when it starts and ends.
    fn held_back(&self) -> bool {
        let bytes = self.state.bytes();
        let id = self.id();
        self.metrics
            .delivery_state_bytes
            .with_label_values(&[id])
            .set(bytes as i64);
        let why = if bytes >= self.delivery.state_max_bytes {
            Some("delivery.state_max_bytes")
        } else if self.queue.below_disk_floor() {
            Some("queue.min_free_bytes")
        } else {
            None
        };
        let was = self
            .held
            .swap(why.is_some(), std::sync::atomic::Ordering::Relaxed);
        match (was, why) {
            (false, Some(bound)) => {
                self.metrics.delivery_held.with_label_values(&[id]).inc();
                tracing::warn!(
                    webhook = id,
                    bound,
                    state_bytes = bytes,
                    "retries and dead letters at their bound: new events wait in the queue (within queue.retention and queue.max_bytes) until retries drain"
                );
            }
            (true, None) => {
                tracing::info!(webhook = id, state_bytes = bytes, "new events taken again")
            }
            _ => {}
        }
        why.is_some()
    }

    /// Reads stored events and keeps those the filter selects; what it passes over
    /// is returned to be settled when the cursor moves to `next`.
    fn take(&self, stored: Vec<Stored>, next: u64) -> (Vec<Member>, Passed) {
        let mut out = Vec::with_capacity(stored.len());
        let mut passed = Passed {
            next,
            ..Passed::default()
        };
        let links = self.sender.links.load();
        for s in stored {
            let seq = s.seq;
            let member = match Member::read(s, self.reads_whole_events()) {
                Ok(m) => m,
                Err(e) => {
                    passed
                        .unreadable
                        .push((seq, format!("undecodable event: {e}")));
                    continue;
                }
            };
            let meta = filter::link_meta(&links, &member.head);
            if filter::selects(&self.cfg.filter, &member.head, meta) {
                out.push(member);
            } else {
                passed.filtered += 1;
            }
        }
        (out, passed)
    }
}
