//! `/api/v1/webhooks/{id}/messages`: the messages a webhook did not deliver (failed,
//! waiting for their next attempt, or dead letters), listed by cursor and resent one
//! at a time or as a filtered set (`deliver/messages.rs`).
//!
//! Filters: `status` (`failed`, `dead`; both when absent), `since` and `until` (capture
//! time, RFC 3339 or Unix ms, as everywhere in the API), `type` (the event type),
//! `message_id`. A resend of a set takes them from the query or from a JSON body.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

use super::answer::{Answer, bad_request, error, method_not_allowed, ok, queue_error};
use super::request::Request;
use super::times;
use crate::deliver::Handle;
use crate::deliver::event_query::EventQuery;
use crate::deliver::messages::MessageQuery;
use crate::deliver::webhook::Webhook;

/// Most messages one page gives.
pub const MAX_LIMIT: u64 = 1_000;

/// The filters, from the JSON body when it has them, else from the query; a bad value
/// in either is refused, whichever would be used.
fn query(req: &Request, body: &Value) -> Result<MessageQuery, String> {
    let from_query = filters(
        |name| req.param(name).map(str::to_string),
        |name| req.time(name),
    )?;
    for name in ["status", "type", "message_id"] {
        if body.get(name).is_some_and(|v| !v.is_string()) {
            return Err(format!("{name} is a string"));
        }
    }
    let from_body = filters(
        |name| body.get(name).and_then(Value::as_str).map(str::to_string),
        |name| match body.get(name) {
            Some(v) => times::parse(v)
                .map(Some)
                .map_err(|e| format!("{name}: {e}")),
            None => Ok(None),
        },
    )?;
    let given = |name: &str| body.get(name).is_some();
    Ok(MessageQuery {
        failed: if given("status") {
            from_body.failed
        } else {
            from_query.failed
        },
        dead: if given("status") {
            from_body.dead
        } else {
            from_query.dead
        },
        events: EventQuery {
            since_ms: from_body.events.since_ms.or(from_query.events.since_ms),
            until_ms: from_body.events.until_ms.or(from_query.events.until_ms),
            event_type: from_body.events.event_type.or(from_query.events.event_type),
            ..EventQuery::default()
        },
        message_id: from_body.message_id.or(from_query.message_id),
    })
}

/// The filters read through `text` and `time`, one source's.
fn filters(
    text: impl Fn(&str) -> Option<String>,
    time: impl Fn(&str) -> Result<Option<u64>, String>,
) -> Result<MessageQuery, String> {
    let (failed, dead) = match text("status").as_deref() {
        None | Some("all") => (true, true),
        Some("failed") => (true, false),
        Some("dead") => (false, true),
        Some(s) => return Err(format!("status={s:?}: give failed, dead or all")),
    };
    // A reversed range selects nothing, as in the delivery log's listing.
    let (since_ms, until_ms) = (time("since")?, time("until")?);
    let event_type = text("type")
        .map(|t| EventQuery::event_type(&t))
        .transpose()?;
    Ok(MessageQuery {
        failed,
        dead,
        events: EventQuery {
            since_ms,
            until_ms,
            event_type,
            ..EventQuery::default()
        },
        message_id: text("message_id"),
    })
}

/// The JSON object of a body, `Null` when there is none.
fn body_object(body: Option<&[u8]>) -> Result<Value, String> {
    match body.filter(|b| !b.iter().all(u8::is_ascii_whitespace)) {
        None => Ok(Value::Null),
        Some(b) => match serde_json::from_slice(b) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err("the body is a JSON object of filters".into()),
            Err(e) => Err(format!("the body is not JSON: {e}")),
        },
    }
}

/// `/api/v1/webhooks/{id}/messages[/...]`; `rest` follows `messages`.
pub async fn route(
    d: &Handle,
    w: &Arc<Webhook>,
    req: &Request,
    rest: &[&str],
    body: Option<Vec<u8>>,
) -> Answer {
    let m = &req.method;
    match rest {
        [] if *m == Method::GET => list(d, w, req).await,
        [] => method_not_allowed("GET"),
        ["resend"] if *m == Method::POST => {
            let q = match body_object(body.as_deref()).and_then(|b| query(req, &b)) {
                Ok(q) => q,
                Err(e) => return bad_request(&e),
            };
            let w2 = w.clone();
            match super::webhooks::off_admin(d, move || w2.resend(&q)).await {
                Some(Ok(n)) => ok(&json!({ "id": w.id(), "resent": n })),
                Some(Err(e)) => queue_error(&e),
                None => super::webhooks::not_running(),
            }
        }
        ["resend"] => method_not_allowed("POST"),
        [seq, "resend"] => {
            if *m != Method::POST {
                return method_not_allowed("POST");
            }
            let Ok(seq) = seq.parse::<u64>() else {
                return bad_request(&format!("{seq:?} is not a message's sequence number"));
            };
            match w.resend_one(seq) {
                Ok(true) => ok(&json!({ "id": w.id(), "seq": seq, "resent": 1 })),
                Ok(false) => error(
                    StatusCode::NOT_FOUND,
                    "unknown_message",
                    "the webhook has no failed or dead message with that sequence number",
                ),
                Err(e) => queue_error(&e),
            }
        }
        _ => super::answer::not_found(),
    }
}

async fn list(d: &Handle, w: &Arc<Webhook>, req: &Request) -> Answer {
    let limit = match req.number("limit") {
        Ok(n) => n.unwrap_or(100).clamp(1, MAX_LIMIT) as usize,
        Err(e) => return bad_request(&e),
    };
    let cursor = match req.param("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => match c.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return bad_request(&format!("cursor={c:?} is not a cursor of this list")),
        },
    };
    let q = match query(req, &Value::Null) {
        Ok(q) => q,
        Err(e) => return bad_request(&e),
    };
    let w2 = w.clone();
    match super::webhooks::off_admin(d, move || w2.messages(&q, cursor, limit)).await {
        Some(Ok(page)) => ok(&page),
        Some(Err(e)) => queue_error(&e),
        None => super::webhooks::not_running(),
    }
}
