//! The delivery log as the admin API lists it: newest first, filtered by webhook, by
//! outcome or status code, by event (`seq`, `event_id`), by message id, test sends and
//! replays, and by time (`since`, `until`: RFC 3339 or Unix ms, as stats
//! and replay take them), with the success rate of what is listed and,
//! on request, a summary of the whole window: success rate and latency percentiles
//! over every attempt in it (up to [`MAX_LIMIT`]), however few are listed.

use serde_json::{Value, json};

use super::answer::{Answer, bad_request, ok, unknown_webhook};
use super::request::Request;
use crate::deliver::log::Attempt;
use crate::deliver::{Class, Handle};

/// Most entries one listing gives.
pub const MAX_LIMIT: u64 = 10_000;

/// `status=`: `success`, `failure` (any answer but a 2xx), `backoff` (429, 502, 503,
/// 504), `gone` (410), or a status code.
enum Status {
    Any,
    Success,
    Failure,
    Class(Class),
    Code(u16),
}

impl Status {
    fn parse(v: Option<&str>) -> Result<Status, String> {
        Ok(match v {
            None => Status::Any,
            Some("success") => Status::Success,
            Some("failure") => Status::Failure,
            Some("backoff") => Status::Class(Class::Backoff),
            Some("gone") => Status::Class(Class::Gone),
            Some(code) => Status::Code(
                code.parse()
                    .ok()
                    .filter(|c| (100..600).contains(c))
                    .ok_or_else(|| {
                        format!(
                            "status={code:?}: give success, failure, backoff, gone or a status code"
                        )
                    })?,
            ),
        })
    }

    fn keeps(&self, a: &Attempt) -> bool {
        let delivered = a.answer.error.is_none();
        match self {
            Status::Any => true,
            Status::Success => delivered,
            Status::Failure => !delivered,
            Status::Class(c) => class(a) == *c,
            Status::Code(c) => a.answer.status == Some(*c),
        }
    }
}

/// What an attempt's answer meant; entries written before it was kept are classed by
/// their status.
fn class(a: &Attempt) -> Class {
    a.answer.outcome.unwrap_or(match a.answer.status {
        Some(s) => Class::of(s),
        None => Class::Failed,
    })
}

/// `GET /api/v1/deliveries` (every webhook, or `webhook=`) and
/// `GET /api/v1/webhooks/{id}/deliveries`.
pub fn list(d: &Handle, req: &Request, webhook: Option<&str>) -> Answer {
    let limit = match req.number("limit") {
        Ok(n) => n.unwrap_or(100).min(MAX_LIMIT) as usize,
        Err(e) => return bad_request(&e),
    };
    // `since` and `until` as stats and replay take them; `since_ms` and `until_ms`, the
    // first names, read the same way. Both names are read, so that a bad value under
    // either is refused; given both, the new name wins.
    let time = |names: [&str; 2]| -> Result<Option<u64>, String> {
        let (new, old) = (req.time(names[0])?, req.time(names[1])?);
        Ok(new.or(old))
    };
    let since = match time(["since", "since_ms"]) {
        Ok(t) => t.unwrap_or(0),
        Err(e) => return bad_request(&e),
    };
    let until = match time(["until", "until_ms"]) {
        Ok(t) => t.unwrap_or(u64::MAX),
        Err(e) => return bad_request(&e),
    };
    let summary = match req.param("summary") {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => return bad_request(&format!("summary={v:?}: give true or false")),
    };
    let status = match Status::parse(req.param("status")) {
        Ok(s) => s,
        Err(e) => return bad_request(&e),
    };
    // From an event to its attempts: `seq`, `event_id` or `message_id`; `test` and
    // `replay` (true or false) keep test sends or operators' replays, or leave them out.
    let seq = match req.number("seq") {
        Ok(n) => n,
        Err(e) => return bad_request(&e),
    };
    let flag = |name: &str| -> Result<Option<bool>, String> {
        match req.param(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(format!("{name}={v:?}: give true or false")),
        }
    };
    let (test, replay) = match (flag("test"), flag("replay")) {
        (Ok(t), Ok(r)) => (t, r),
        (Err(e), _) | (_, Err(e)) => return bad_request(&e),
    };
    let event_id = req.param("event_id");
    let message_id = req.param("message_id");
    let ids: Vec<String> = match webhook.or(req.param("webhook")) {
        Some(id) if d.webhook(id).is_none() => return unknown_webhook(),
        Some(id) => vec![id.to_string()],
        None => d.webhooks().iter().map(|w| w.id().to_string()).collect(),
    };
    let keeps = |a: &Attempt| {
        a.at_ms <= until
            && status.keeps(a)
            && seq.is_none_or(|s| a.seq == s && !a.sending.test)
            && event_id.is_none_or(|e| a.event_id == e)
            && message_id.is_none_or(|m| a.sending.message_id.as_deref() == Some(m))
            && test.is_none_or(|t| a.sending.test == t)
            && replay.is_none_or(|r| a.sending.replay == r)
    };
    let take = if summary { MAX_LIMIT as usize } else { limit };
    let mut list: Vec<Attempt> = ids
        .iter()
        .flat_map(|id| d.log.list_where(id, since, take, keeps))
        .collect();
    // Each webhook's list is newest first; merged, the newest of all come first.
    list.sort_by_key(|a| std::cmp::Reverse(a.at_ms));
    list.truncate(take);
    let summary = summary.then(|| summarize(&list, take));
    list.truncate(limit);
    let rate = success_rate(delivered(&list), list.len());
    let mut answer = json!({ "deliveries": list, "success_rate": rate });
    if let Some(s) = summary {
        answer["summary"] = s;
    }
    ok(&answer)
}

/// Attempts of `list` the receiver accepted.
fn delivered(list: &[Attempt]) -> usize {
    list.iter().filter(|a| a.answer.error.is_none()).count()
}

fn success_rate(delivered: usize, attempts: usize) -> Option<f64> {
    (attempts > 0).then(|| delivered as f64 / attempts as f64)
}

/// Success rate and latency percentiles (nearest rank) of `list`; `complete` is false
/// when the window held more than `cap` attempts and only the newest were counted.
fn summarize(list: &[Attempt], cap: usize) -> Value {
    let mut latencies: Vec<u64> = list.iter().map(|a| a.answer.latency_ms).collect();
    latencies.sort_unstable();
    let pct = |p: f64| -> Option<u64> {
        let rank = ((p * latencies.len() as f64).ceil() as usize).max(1);
        latencies.get(rank - 1).copied()
    };
    let delivered = delivered(list);
    json!({
        "attempts": list.len(),
        "delivered": delivered,
        "success_rate": success_rate(delivered, list.len()),
        "latency_ms": { "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99) },
        "complete": list.len() < cap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::log::Answer;

    fn attempt(latency_ms: u64, ok: bool) -> Attempt {
        Attempt {
            webhook: "w".into(),
            at_ms: 1,
            event_id: "e".into(),
            seq: 1,
            attempt: 1,
            answer: Answer {
                at: String::new(),
                outcome: None,
                status: Some(if ok { 200 } else { 500 }),
                latency_ms,
                error: (!ok).then(|| "status 500".into()),
                response: String::new(),
            },
            sending: Default::default(),
        }
    }

    #[test]
    fn the_summary_gives_the_success_rate_and_nearest_rank_percentiles() {
        let list: Vec<Attempt> = (1..=100).map(|ms| attempt(ms, ms % 4 != 0)).collect();
        let s = summarize(&list, 1000);
        assert_eq!(s["attempts"], 100);
        assert_eq!(s["delivered"], 75);
        assert_eq!(s["success_rate"], 0.75);
        assert_eq!(s["latency_ms"], json!({ "p50": 50, "p90": 90, "p99": 99 }));
        assert_eq!(s["complete"], true);
        assert_eq!(summarize(&list, 100)["complete"], false);
        let empty = summarize(&[], 1000);
        assert_eq!(empty["success_rate"], Value::Null);
        assert_eq!(empty["latency_ms"]["p50"], Value::Null);
    }
}
