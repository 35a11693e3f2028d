//! `clicktap webhooks messages` and `clicktap webhooks resend`: a webhook's failed and
//! dead messages, listed page by page, and sent again (one, or every one a filter
//! selects), through `/api/v1/webhooks/{id}/messages`.

use reqwest::Method;
use serde_json::{Value, json};
use std::io::Write;

use super::table::{Table, cell};
use super::{Client, Done, path, print_json};

/// The filters both commands take.
#[derive(Default)]
pub struct Filter {
    pub status: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub event_type: Option<String>,
    pub message_id: Option<String>,
}

impl Filter {
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("status", &self.status),
            ("since", &self.since),
            ("until", &self.until),
            ("type", &self.event_type),
            ("message_id", &self.message_id),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.as_deref()?)))
        .collect()
    }
}

/// `?k=v&...` of `pairs`, encoded.
pub(super) fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    let q = q.finish();
    if q.is_empty() { q } else { format!("?{q}") }
}

/// Lists one page (from `cursor`), or every page with `all`.
pub fn list(
    c: &Client,
    id: &str,
    filter: &Filter,
    limit: u64,
    cursor: Option<&str>,
    all: bool,
    as_json: bool,
) -> anyhow::Result<Done> {
    let limit = limit.to_string();
    let mut cursor = cursor.map(str::to_string);
    let mut messages: Vec<Value> = Vec::new();
    let mut next;
    loop {
        let mut pairs = filter.pairs();
        pairs.push(("limit", &limit));
        if let Some(c) = &cursor {
            pairs.push(("cursor", c));
        }
        let v = c.ok(
            Method::GET,
            &path(id, &format!("/messages{}", query(&pairs))),
            None,
        )?;
        messages.extend(v["messages"].as_array().into_iter().flatten().cloned());
        next = v["next_cursor"].as_str().map(str::to_string);
        match (&next, all) {
            (Some(n), true) => cursor = Some(n.clone()),
            _ => break,
        }
    }
    if as_json {
        print_json(&json!({ "messages": messages, "next_cursor": next }))?;
        return Ok(Done::Ok);
    }
    let mut t = Table::new(&[
        "seq",
        "status",
        "attempts",
        "captured",
        "type",
        "link",
        "message",
        "last error",
    ]);
    for m in &messages {
        let status = if m["replay"] == true {
            format!("{} (resent)", cell(&m["status"]))
        } else {
            cell(&m["status"])
        };
        t.row(vec![
            cell(&m["seq"]),
            status,
            cell(&m["attempts"]),
            cell(&m["captured_at"]),
            cell(&m["event_type"]),
            cell(&m["link"]),
            cell(&m["message_id"]),
            cell(&m["last_error"]),
        ]);
    }
    let mut out = std::io::stdout();
    write!(out, "{}", t.render())?;
    match next {
        Some(n) => writeln!(
            out,
            "{} listed; more with --cursor {n} (or --all)",
            messages.len()
        )?,
        None => writeln!(out, "{} listed", messages.len())?,
    }
    Ok(Done::Ok)
}

/// Sends again the message at `seq`, or every message `filter` selects.
pub fn resend(
    c: &Client,
    id: &str,
    seq: Option<u64>,
    filter: &Filter,
    as_json: bool,
) -> anyhow::Result<Done> {
    let v = match seq {
        Some(seq) => c.ok(
            Method::POST,
            &path(id, &format!("/messages/{seq}/resend")),
            None,
        )?,
        None => {
            let body: serde_json::Map<String, Value> = filter
                .pairs()
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect();
            c.ok(
                Method::POST,
                &path(id, "/messages/resend"),
                Some(&Value::Object(body)),
            )?
        }
    };
    if as_json {
        print_json(&v)?;
    } else {
        writeln!(
            std::io::stdout(),
            "{id}: {} messages put back in line, each sent again as a replay of its message (`clicktap webhooks deliveries {id} --replay` shows how they fare)",
            cell(&v["resent"])
        )?;
    }
    Ok(Done::Ok)
}
