//! A webhook's messages that were not delivered, as Svix and Convoy show them: each
//! event waiting for its next attempt after a failed one (`failed`) or given up on
//! (`dead`), with its message id, filtered by capture time and event type, paged by
//! a cursor (the last sequence number seen); and a resend of one or of a filtered set.
//!
//! This is a view over the retries and dead letters of `state.rs`, not a store of its
//! own, and a resend is the same move as a replay ([`super::state::WebhookState::resend`]): the event
//! is put in line for an attempt now, with its message id, marked as a replay, which
//! the delivery log then shows. Only events that already wait behind the cursor are
//! touched, so a resend never moves a cursor, and an event delivered meanwhile is left
//! be rather than sent twice.

use serde::Serialize;

use super::event_query::EventQuery;
use super::member::Member;
use super::state::{CHUNK, Undelivered};
use super::webhook::Webhook;
use crate::queue::QueueError;

/// Retries and dead letters one page looks at, at most, whatever the filter matches:
/// a page answers in bounded time, and its cursor goes on from where it stopped.
pub const SCAN_MAX: usize = 10_000;

/// Which messages.
#[derive(Debug, Clone)]
pub struct MessageQuery {
    pub failed: bool,
    pub dead: bool,
    pub events: EventQuery,
    pub message_id: Option<String>,
}

/// One undelivered event of a webhook.
#[derive(Debug, Serialize)]
pub struct Message {
    pub seq: u64,
    /// `None` when the queue no longer holds the event.
    pub event_id: Option<String>,
    /// The message id it was (and will be) sent with.
    pub message_id: Option<String>,
    /// `failed` (waiting for its next attempt) or `dead` (a dead letter).
    pub status: &'static str,
    /// Attempts made (for a failed message, since it was last put in line).
    pub attempts: u32,
    pub last_error: String,
    /// When the event was captured (RFC 3339).
    pub captured_at: Option<String>,
    pub event_type: Option<&'static str>,
    /// `host/path` of the link.
    pub link: Option<String>,
    /// For a dead letter: when it became one (RFC 3339).
    pub dead_at: Option<String>,
    /// Put in line by an operator (a replay or a resend).
    pub replay: bool,
}

/// A page of messages, and where the next one starts (`None`: no more).
#[derive(Debug, Serialize)]
pub struct Page {
    pub messages: Vec<Message>,
    pub next_cursor: Option<String>,
}

impl Webhook {
    /// `query`'s messages after sequence `after`, at most `limit`, in sequence order.
    /// Blocks on the queue: run it off the admin listener's threads.
    pub fn messages(
        &self,
        query: &MessageQuery,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page, QueueError> {
        let mut messages = Vec::new();
        let mut at = after;
        let mut scanned = 0;
        loop {
            let page = self
                .state
                .undelivered_page(at, CHUNK, query.failed, query.dead)?;
            let Some(last) = page.last().map(|p| p.0) else {
                return Ok(Page {
                    messages,
                    next_cursor: None,
                });
            };
            for (seq, u) in page {
                scanned += 1;
                if let Some(m) = self.message(seq, u, query)? {
                    messages.push(m);
                    if messages.len() >= limit {
                        return Ok(self.page_at(messages, seq, query));
                    }
                }
                if scanned >= SCAN_MAX {
                    return Ok(self.page_at(messages, seq, query));
                }
            }
            at = Some(last);
        }
    }

    /// A page that stopped at `seq`: it has a next page if anything follows `seq`.
    fn page_at(&self, messages: Vec<Message>, seq: u64, query: &MessageQuery) -> Page {
        let more = self
            .state
            .undelivered_page(Some(seq), 1, query.failed, query.dead)
            .map(|p| !p.is_empty())
            .unwrap_or(true);
        Page {
            messages,
            next_cursor: more.then(|| seq.to_string()),
        }
    }

    fn message(
        &self,
        seq: u64,
        u: Undelivered,
        query: &MessageQuery,
    ) -> Result<Option<Message>, QueueError> {
        let stored = self.queue.get(seq)?;
        let at_ms = stored.as_ref().map(|s| s.at_ms);
        let member = stored.and_then(|s| Member::read(s, false).ok());
        if !query.events.is_empty() {
            match (&member, at_ms) {
                (Some(m), Some(at)) if query.events.matches(&m.head, at) => {}
                _ => return Ok(None),
            }
        }
        let (status, attempts, last_error, message, dead_at, replay) = match u {
            Undelivered::Failed(p) => (
                "failed",
                p.attempts,
                p.last_error,
                p.message,
                None,
                p.replay,
            ),
            Undelivered::Dead(d) => (
                "dead",
                d.attempts,
                d.last_error,
                d.message,
                Some(crate::clock::rfc3339_ms(d.at_ms)),
                false,
            ),
        };
        let message_id = message.or_else(|| {
            member
                .as_ref()
                .map(|m| super::formats::message_id(self.id(), [&m.head.id]))
        });
        if query
            .message_id
            .as_ref()
            .is_some_and(|want| message_id.as_ref() != Some(want))
        {
            return Ok(None);
        }
        Ok(Some(Message {
            seq,
            event_id: member.as_ref().map(|m| m.head.id.to_string()),
            message_id,
            status,
            attempts,
            last_error,
            captured_at: at_ms.map(crate::clock::rfc3339_ms),
            event_type: member.as_ref().map(|m| m.head.event_type().as_str()),
            link: member
                .as_ref()
                .map(|m| format!("{}{}", m.head.link.host, m.head.link.path)),
            dead_at,
            replay,
        }))
    }

    /// Sends again every message `query` selects: each is put in line for an attempt
    /// now, with its message id, [`CHUNK`] at a time. Returns how many.
    pub fn resend(&self, query: &MessageQuery) -> Result<usize, QueueError> {
        let now = self.queue.clock().now_ms();
        let mut n = 0;
        let mut at = None;
        loop {
            let page = self.messages(query, at, CHUNK)?;
            let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
            n += self.state.resend(&seqs, now)?;
            if n > 0 {
                self.reactivated.notify_one();
            }
            match page.next_cursor.and_then(|c| c.parse().ok()) {
                Some(next) => at = Some(next),
                None => break,
            }
        }
        tracing::info!(webhook = self.id(), resent = n, "messages resent");
        Ok(n)
    }

    /// Sends one message again (the event at `seq`); `false` when it is neither waiting
    /// for a retry nor a dead letter.
    pub fn resend_one(&self, seq: u64) -> Result<bool, QueueError> {
        let n = self.state.resend(&[seq], self.queue.clock().now_ms())?;
        if n > 0 {
            tracing::info!(webhook = self.id(), seq, "message resent");
            self.reactivated.notify_one();
        }
        Ok(n > 0)
    }
}
