//! What an operator can do to a running webhook through the admin API: read its
//! health and backlog, reactivate it, replay a time range, and list, replay or purge
//! its dead letters.
//!
//! A replay puts events back in line as retries due now (a fresh count of attempts):
//! the loop sends them like any retry, with their own event ids and, for single-event
//! requests, their original message ids. Events the webhook has not reached yet are
//! left to the cursor, so that a replay never sends an event before its first attempt.
//! A replayed event is no longer a dead letter (it becomes one again if it fails its
//! attempts again), and a delivered one leaves none behind, so that replaying dead
//! letters never sends an event that was delivered. A replay answers how many events
//! it put in line; what became of them is counted as they end ([`super::webhook::Replays`]).
//! Replays go through the queue and the dead letters [`CHUNK`] at a time, each chunk
//! its own write: memory and the time the retry lock is held stay bounded whatever the
//! range.

use serde::Serialize;

use super::filter;
use super::health::{Health, State};
use super::member::Member;
use super::state::CHUNK;
use super::webhook::Webhook;
use crate::queue::QueueError;

/// Events are stored in capture order to within the enrichment threads' batches; a
/// replay looks this far beyond its range's ends for events that fall inside it.
const ORDER_SLACK_MS: u64 = 10_000;

/// What a replay put back in line.
#[derive(Debug, Serialize)]
pub struct Replayed {
    /// Events of the range the webhook's filter selects, now due (scheduled, not yet
    /// delivered).
    pub events: usize,
    /// The sequence numbers looked at, `[from, to)`.
    pub from_seq: u64,
    pub to_seq: u64,
}

/// A dead letter as the admin API lists it.
#[derive(Debug, Serialize)]
pub struct DeadLetter {
    pub seq: u64,
    /// `None` when the queue no longer holds the event.
    pub event_id: Option<String>,
    pub attempts: u32,
    /// When it became a dead letter (RFC 3339).
    pub at: String,
    pub last_error: String,
}

impl Webhook {
    /// The webhook's health as shown: a back-off that has ended is not shown.
    pub fn health(&self) -> Health {
        let mut h = self.health.lock().clone();
        if h.backing_off(self.queue.clock().now_ms()).is_none() {
            h.backoff_until_ms = None;
            h.backoff_until_clock_ms = None;
            h.backoff_reason = None;
        }
        h
    }

    /// Back to healthy by hand, a back-off ended too: attempts resume from where they
    /// stopped.
    pub fn reactivate(&self) {
        let mut h = self.health.lock();
        let changed = h.reactivate();
        let _ = self.state.set_health(&h);
        if changed.is_some() {
            self.notify(
                crate::notice::Change::Recovered,
                "reactivated by an operator".into(),
                crate::clock::now_ms(),
            );
            self.metrics
                .delivery_state
                .with_label_values(&[self.id()])
                .set(State::Healthy.as_gauge());
            tracing::info!(webhook = self.id(), "webhook reactivated");
        }
        self.reactivated.notify_one();
    }

    /// Bytes of its retries and dead letters.
    pub fn state_bytes(&self) -> u64 {
        self.state.bytes()
    }

    pub fn dead_letters(&self) -> Result<usize, QueueError> {
        self.state.dead_count()
    }

    /// Events waiting for a retry.
    pub fn retries(&self) -> Result<usize, QueueError> {
        self.state.pending_count()
    }

    /// The oldest event not yet delivered (waiting for a retry or not yet read), if any:
    /// its capture time by the wall clock, and its age on the queue's clock (which a
    /// step of the wall clock does not change).
    pub fn oldest_undelivered(&self) -> Result<Option<(u64, u64)>, QueueError> {
        let head = self.queue.head();
        let cursor = self.queue.cursor(&self.consumer)?.unwrap_or(head);
        let unread = (cursor < head).then_some(cursor.max(self.queue.first()));
        let oldest = match (self.state.oldest_pending()?, unread) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(match oldest {
            Some(seq) => self.queue.read(seq, 1)?.first().map(|s| {
                let age = self.queue.clock().now_ms().saturating_sub(s.stored_ms);
                (s.at_ms, age)
            }),
            None => None,
        })
    }

    /// Dead letters after sequence `after`, oldest first, at most `limit`.
    pub fn dead_letter_page(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        let mut out = Vec::new();
        for (seq, d) in self.state.dead_page(after, limit)? {
            let event_id = match self.queue.get(seq)? {
                Some(s) => Member::read(s, false).ok().map(|m| m.head.id.to_string()),
                None => None,
            };
            out.push(DeadLetter {
                seq,
                event_id,
                attempts: d.attempts,
                at: crate::clock::rfc3339_ms(d.at_ms),
                last_error: d.last_error,
            });
        }
        Ok(out)
    }

    /// Puts every dead letter back in line for an attempt now, each with the events it
    /// failed with, so that it keeps its message id. Blocks on the queue: run it off
    /// the admin listener's threads.
    pub fn replay_dead(&self) -> Result<usize, QueueError> {
        let n = self.state.replay_dead(self.queue.clock().now_ms())?;
        tracing::info!(webhook = self.id(), replayed = n, "dead letters replayed");
        self.reactivated.notify_one();
        Ok(n)
    }

    /// Puts one dead letter back in line; `false` when there is none for `seq`.
    pub fn replay_dead_one(&self, seq: u64) -> Result<bool, QueueError> {
        let found = self
            .state
            .replay_dead_one(seq, self.queue.clock().now_ms())?;
        if found {
            tracing::info!(webhook = self.id(), seq, "dead letter replayed");
            self.reactivated.notify_one();
        }
        Ok(found)
    }

    /// Removes dead letters for good: one, or all. Returns how many.
    pub fn purge_dead(&self, seq: Option<u64>) -> Result<usize, QueueError> {
        let n = self.state.purge_dead(seq)?;
        tracing::info!(webhook = self.id(), purged = n, "dead letters purged");
        Ok(n)
    }

    /// Sends again the events captured from `since_ms` to `until_ms` (inclusive) that
    /// the queue still holds, the webhook's filter selects and the webhook has already
    /// reached.
    pub fn replay(&self, since_ms: u64, until_ms: u64) -> Result<Replayed, QueueError> {
        let head = self.queue.head();
        let cursor = self.queue.cursor(&self.consumer)?.unwrap_or(head);
        let range = self.queue.seqs_captured(
            since_ms.saturating_sub(ORDER_SLACK_MS),
            until_ms.saturating_add(ORDER_SLACK_MS),
        )?;
        let (from, to) = (range.start, range.end.min(cursor));
        let links = self.sender.links.load();
        let now = self.queue.clock().now_ms();
        let mut events = 0;
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut at = from;
        while at < to {
            let stored = self.queue.read(at, CHUNK)?;
            let Some(last) = stored.last().map(|s| s.seq) else {
                break;
            };
            for s in stored {
                if s.seq >= to || !(since_ms..=until_ms).contains(&s.at_ms) {
                    continue;
                }
                let seq = s.seq;
                let Ok(m) = Member::read(s, false) else {
                    continue;
                };
                let meta = filter::link_meta(&links, &m.head);
                if filter::selects(&self.cfg.filter, &m.head, meta) {
                    chunk.push(seq);
                }
            }
            if !chunk.is_empty() {
                self.state.replay(&chunk, now)?;
                events += chunk.len();
                chunk.clear();
                // The loop starts on the first chunk while the rest is read.
                self.reactivated.notify_one();
            }
            at = last + 1;
        }
        tracing::info!(webhook = self.id(), events, since_ms, until_ms, "replay");
        Ok(Replayed {
            events,
            from_seq: from,
            to_seq: to.max(from),
        })
    }
}
