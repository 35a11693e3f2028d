//! `/api/v1/webhooks`: each webhook's state, and what an operator does to one: send a
//! test event, replay a time range, reactivate it, list, replay and purge its dead
//! letters, list and resend its messages (`messages.rs`).

use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

use super::answer::{
    Answer, bad_request, error, method_not_allowed, not_found, ok, queue_error, unknown_webhook,
};
use super::request::Request;
use super::times;
use crate::deliver::Handle;
use crate::deliver::webhook::Webhook;
use crate::queue::Queue;

/// How long ago the oldest of `w`'s dead letters was stored (the same clock as
/// `oldest_undelivered_age_ms`, which counts only what still waits for an attempt):
/// dead letters are undelivered too, and a page that showed "none undelivered" beside
/// them would mislead. `None` without dead letters, or when the queue no longer holds
/// the event.
pub fn oldest_dead_letter_age(w: &Webhook, queue: &Queue) -> Option<u64> {
    let seq = w.dead_letter_page(None, 1).ok()?.first()?.seq;
    let stored = queue.read(seq, 1).ok()?.first()?.stored_ms;
    Some(queue.clock().now_ms().saturating_sub(stored))
}

/// One webhook as `GET /api/v1/webhooks` lists it.
pub fn describe(w: &Webhook, queue: &Queue) -> Value {
    let head = queue.head();
    let cursor = queue.cursor(&w.consumer).ok().flatten().unwrap_or(head);
    let oldest = w.oldest_undelivered().ok().flatten();
    json!({
        "id": w.cfg.id,
        "url": crate::redact::url(&w.cfg.url),
        "format": w.cfg.format.as_str(),
        "paused": !w.cfg.enabled,
        "public_keys": w.cfg.secret_keys.iter().map(|k| k.public_key()).collect::<Vec<_>>(),
        "health": w.health(),
        "lag": head.saturating_sub(cursor),
        "retries": w.retries().ok(),
        "dead_letters": w.dead_letters().ok(),
        "oldest_undelivered_ms": oldest.map(|o| o.0),
        "oldest_undelivered_age_ms": oldest.map(|o| o.1),
        "oldest_dead_letter_age_ms": oldest_dead_letter_age(w, queue),
        "replays": w.replays,
        "state_bytes": w.state_bytes(),
    })
}

pub fn list(d: &Handle, queue: &Queue) -> Answer {
    let list: Vec<Value> = d.webhooks().iter().map(|w| describe(w, queue)).collect();
    ok(&json!({ "webhooks": list }))
}

/// `/api/v1/webhooks/{id}[/...]`; `rest` is what follows the id. `body` is the
/// request's body for the routes that take one.
pub async fn route(
    d: &Handle,
    queue: &Queue,
    req: &Request,
    id: &str,
    rest: &[String],
    body: Option<Vec<u8>>,
) -> Answer {
    let Some(w) = d.webhook(id) else {
        return unknown_webhook();
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let m = &req.method;
    match rest.as_slice() {
        [] => only(m, Method::GET, || ok(&describe(&w, queue))),
        ["deliveries"] => only(m, Method::GET, || super::deliveries::list(d, req, Some(id))),
        ["messages", more @ ..] => super::messages::route(d, &w, req, more, body).await,
        ["test"] => {
            if *m != Method::POST {
                return method_not_allowed("POST");
            }
            let w2 = w.clone();
            match d.run(async move { w2.test().await }).await {
                Some(answer) => ok(&answer),
                None => not_running(),
            }
        }
        ["replay"] => {
            if *m != Method::POST {
                return method_not_allowed("POST");
            }
            let (since, until) = match replay_range(req, body.as_deref()) {
                Ok(r) => r,
                Err(e) => return bad_request(&e),
            };
            let w2 = w.clone();
            match off_admin(d, move || w2.replay(since, until)).await {
                Some(Ok(r)) => ok(&json!({
                    "id": id,
                    "scheduled": r.events,
                    "replayed": r.events,
                    "from_seq": r.from_seq,
                    "to_seq": r.to_seq,
                })),
                Some(Err(e)) => queue_error(&e),
                None => not_running(),
            }
        }
        ["reactivate"] => only(m, Method::POST, || {
            w.reactivate();
            ok(&json!({ "id": id, "health": w.health() }))
        }),
        ["dead-letters"] => match *m {
            Method::GET => dead_letters(&w, req),
            Method::DELETE => match w.purge_dead(None) {
                Ok(n) => ok(&json!({ "id": id, "purged": n })),
                Err(e) => queue_error(&e),
            },
            _ => method_not_allowed("GET, DELETE"),
        },
        ["dead-letters", "replay"] => {
            if *m != Method::POST {
                return method_not_allowed("POST");
            }
            let w2 = w.clone();
            match off_admin(d, move || w2.replay_dead()).await {
                Some(Ok(n)) => ok(&json!({ "id": id, "scheduled": n, "replayed": n })),
                Some(Err(e)) => queue_error(&e),
                None => not_running(),
            }
        }
        ["dead-letters", seq] | ["dead-letters", seq, "replay"] => {
            let Ok(seq) = seq.parse::<u64>() else {
                return bad_request(&format!("{seq:?} is not a dead letter's sequence number"));
            };
            let replay = rest.len() == 3;
            let found = match (replay, m) {
                (true, &Method::POST) => w.replay_dead_one(seq),
                (false, &Method::DELETE) => w.purge_dead(Some(seq)).map(|n| n > 0),
                (true, _) => return method_not_allowed("POST"),
                (false, _) => return method_not_allowed("DELETE"),
            };
            match found {
                Ok(true) if replay => {
                    ok(&json!({ "id": id, "seq": seq, "scheduled": 1, "replayed": 1 }))
                }
                Ok(true) => ok(&json!({ "id": id, "seq": seq, "purged": 1 })),
                Ok(false) => error(
                    StatusCode::NOT_FOUND,
                    "unknown_dead_letter",
                    "the webhook has no dead letter with that sequence number",
                ),
                Err(e) => queue_error(&e),
            }
        }
        _ => not_found(),
    }
}

pub(super) fn not_running() -> Answer {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "delivery is not running",
    )
}

/// Runs `f`, an operation on many retries or dead letters that blocks on the queue, on
/// delivery's runtime among its threads for blocking work, never on the admin
/// listener's; `None` when delivery is not running.
pub(super) async fn off_admin<T: Send + 'static>(
    d: &Handle,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    d.run(async move { tokio::task::spawn_blocking(f).await.ok() })
        .await
        .flatten()
}

fn only(m: &Method, want: Method, f: impl FnOnce() -> Answer) -> Answer {
    if *m == want {
        f()
    } else {
        method_not_allowed(want.as_str())
    }
}

fn dead_letters(w: &Arc<Webhook>, req: &Request) -> Answer {
    let limit = match req.number("limit") {
        Ok(n) => n.unwrap_or(100).min(super::deliveries::MAX_LIMIT) as usize,
        Err(e) => return bad_request(&e),
    };
    let after = match req.number("after") {
        Ok(n) => n,
        Err(e) => return bad_request(&e),
    };
    match (w.dead_letter_page(after, limit), w.dead_letters()) {
        (Ok(list), Ok(total)) => ok(&json!({ "dead_letters": list, "total": total })),
        (Err(e), _) | (_, Err(e)) => queue_error(&e),
    }
}

/// `since` and `until` from the JSON body or the query; both required. An error says
/// what is wrong with the request.
fn replay_range(req: &Request, body: Option<&[u8]>) -> Result<(u64, u64), String> {
    let from_body: Value = match body.filter(|b| !b.iter().all(u8::is_ascii_whitespace)) {
        None => Value::Null,
        Some(b) => match serde_json::from_slice(b) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return Err("the body is a JSON object: {\"since\": ..., \"until\": ...}".into());
            }
            Err(e) => return Err(format!("the body is not JSON: {e}")),
        },
    };
    let time = |name: &str| -> Result<u64, String> {
        match (from_body.get(name), req.param(name)) {
            (Some(v), _) => times::parse(v).map_err(|e| format!("{name}: {e}")),
            (None, Some(v)) => times::parse_text(v).map_err(|e| format!("{name}: {e}")),
            (None, None) => Err(format!(
                "{name} is required (RFC 3339 or Unix milliseconds)"
            )),
        }
    };
    match (time("since"), time("until")) {
        (Ok(s), Ok(u)) if s > u => Err(format!(
            "since ({}) is after until ({}): the range is reversed",
            crate::clock::rfc3339_ms(s),
            crate::clock::rfc3339_ms(u)
        )),
        (Ok(s), Ok(u)) => Ok((s, u)),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}
