//! Stored events as operators list them (`clicktap events`, `GET /api/v1/events`): the
//! newest that match an [`EventQuery`], oldest first, each as its stored JSON line, or
//! with `seq` and `message_ids` put in front, so that a line leads to the event's
//! deliveries (`GET /api/v1/deliveries?seq=`, `message_id=`) and back.
//!
//! `message_ids` has, for each configured webhook whose filter selects the event and
//! that sends one event per request, the message id that request carries (it is
//! derived from the webhook and the event id, so it is the same on every attempt). A
//! batching webhook's message id is derived from the whole batch: the delivery log
//! gives it (`deliveries?seq=`).
//!
//! A filtered listing reads backward from the newest event at most [`SCAN_MAX`] events
//! (within the capture-time range when one is given), so that it answers in bounded
//! time whatever it matches.

use serde_json::{Map, Value};

use super::event_query::EventQuery;
use super::member::Member;
use crate::config::{LinkMeta, WebhookConfig};
use crate::queue::{Queue, QueueError, Stored};

/// Events a filtered listing looks at, at most.
pub const SCAN_MAX: u64 = 1_000_000;
/// Events read at a time while scanning backward.
const READ_AT_ONCE: u64 = 1024;

/// The newest `limit` events `query` matches, oldest first.
pub fn select(queue: &Queue, query: &EventQuery, limit: usize) -> Result<Vec<Stored>, QueueError> {
    if query.is_empty() {
        return queue.tail(limit);
    }
    let range = match (query.since_ms, query.until_ms) {
        (None, None) => queue.first()..queue.head(),
        (s, u) => queue.seqs_captured(s.unwrap_or(0), u.unwrap_or(u64::MAX))?,
    };
    let floor = range.start.max(range.end.saturating_sub(SCAN_MAX));
    let mut out = Vec::new();
    let mut end = range.end;
    while end > floor && out.len() < limit {
        let from = end.saturating_sub(READ_AT_ONCE).max(floor);
        let chunk = queue.read(from, (end - from) as usize)?;
        for s in chunk.into_iter().rev() {
            if s.seq >= end || out.len() >= limit {
                continue;
            }
            let Ok(m) = Member::read(s.clone(), false) else {
                continue;
            };
            if query.matches(&m.head, s.at_ms) {
                out.push(s);
            }
        }
        end = from;
    }
    out.reverse();
    Ok(out)
}

/// The event's JSON line with `seq` and `message_ids` in front (the stored JSON after
/// them as it is, its keys in their order).
pub fn annotated(s: &Stored, webhooks: &[WebhookConfig], links: &[LinkMeta]) -> Vec<u8> {
    let json = s.bytes();
    let Some(rest) = json.strip_prefix(b"{") else {
        return json.to_vec();
    };
    let mut ids = Map::new();
    if let Ok(m) = Member::read(s.clone(), false) {
        let meta = super::filter::link_meta(links, &m.head);
        for w in webhooks {
            let single = !w.format.batches() || w.batch.max_events <= 1;
            if single && super::filter::selects(&w.filter, &m.head, meta) {
                ids.insert(
                    w.id.clone(),
                    Value::String(super::formats::message_id(&w.id, [&m.head.id])),
                );
            }
        }
    }
    let mut out =
        format!("{{\"seq\":{},\"message_ids\":{}", s.seq, Value::Object(ids)).into_bytes();
    if !rest.trim_ascii_start().starts_with(b"}") {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    out
}
