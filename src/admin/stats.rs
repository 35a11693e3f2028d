//! `GET /api/v1/stats`: click counts for a window, read from the per-minute rollups
//! ([`crate::rollup`]), never from the events, so a week answers in milliseconds.
//!
//! Every value the OpenAPI description allows is answered: a window given upside down
//! is empty, and a step that would give more than a week of points is widened (the
//! answer's `step_ms` says which was used). `unique` and `qr` are `null` until events
//! carry what they need (a visitor id, a QR marker).

use http::StatusCode;
use serde_json::{Map, Value, json};

use super::answer::{Answer, bad_request, error, ok, queue_error};
use super::request::Request;
use crate::click::ClickKind;
use crate::clock::now_ms;
use crate::queue::Queue;
use crate::rollup::minute::DIMENSIONS;
use crate::rollup::query::{self, Window};

/// The window when none is asked: the last hour.
const DEFAULT_SPAN_MS: u64 = 3600 * 1000;
const DEFAULT_TOP: u64 = 10;
const MAX_TOP: u64 = 100;

/// The parameters, or a message naming the one that is wrong.
fn window(req: &Request) -> Result<(Window, usize), String> {
    let since = req.time("since")?;
    let until = req.time("until")?;
    let (since, until) = match (since, until) {
        (Some(s), Some(u)) => (s, u),
        (Some(s), None) => (s, now_ms()),
        (None, Some(u)) => (u.saturating_sub(DEFAULT_SPAN_MS), u),
        (None, None) => {
            let now = now_ms();
            (now.saturating_sub(DEFAULT_SPAN_MS), now)
        }
    };
    let top = req.number("top")?.unwrap_or(DEFAULT_TOP);
    if !(1..=MAX_TOP).contains(&top) {
        return Err(format!("top={top}: give 1 to {MAX_TOP}"));
    }
    let step = req.number("step")?;
    if let Some(s) = step
        && (s == 0 || s % 60 != 0)
    {
        return Err(format!(
            "step={s}: give seconds, a multiple of 60 (60, 300, 3600, ...)"
        ));
    }
    Ok((Window::new(since, until, step), top as usize))
}

pub fn stats(enabled: bool, queue: &Queue, req: &Request) -> Answer {
    if !enabled {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "stats are off: [stats] enabled = false",
        );
    }
    let (w, top) = match window(req) {
        Ok(p) => p,
        Err(e) => return bad_request(&e),
    };
    let s = match query::summarize(queue, &w) {
        Ok(s) => s,
        Err(e) => return queue_error(&e),
    };
    let kinds: Vec<&str> = ClickKind::ALL.iter().map(|k| k.as_str()).collect();
    let by_kind = |counts: &[u64]| -> Map<String, Value> {
        kinds
            .iter()
            .zip(counts)
            .map(|(k, n)| (k.to_string(), json!(n)))
            .collect()
    };
    let series: Vec<Value> = s
        .series
        .iter()
        .enumerate()
        .map(|(i, counts)| {
            let mut point = Map::new();
            point.insert("at_ms".into(), json!(w.since_ms + i as u64 * w.step_ms));
            point.extend(by_kind(counts));
            Value::Object(point)
        })
        .collect();
    let mut totals = Map::new();
    totals.insert("clicks".into(), json!(s.totals.iter().sum::<u64>()));
    totals.extend(by_kind(&s.totals));
    let tops: Map<String, Value> = DIMENSIONS
        .iter()
        .zip(&s.tops)
        .map(|(name, counts)| {
            let list: Vec<Value> = counts
                .top(top)
                .into_iter()
                .map(|(key, count)| json!({ "key": key, "count": count }))
                .collect();
            (name.to_string(), Value::Array(list))
        })
        .collect();
    ok(&json!({
        "since_ms": w.since_ms,
        "until_ms": w.until_ms,
        "step_ms": w.step_ms,
        "kinds": kinds,
        "series": series,
        "totals": totals,
        "top": tops,
        "unique": null,
        "qr": null,
    }))
}
