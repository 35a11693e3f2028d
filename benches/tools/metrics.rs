//! Reading clicktap's `/metrics` (Prometheus text) without a client library: a plain
//! HTTP/1.0 GET over loopback, and counters summed over their labels.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// A GET over plain HTTP/1.1 with `Connection: close`; the body as text, read up to
/// its `Content-Length` (a server may keep the connection open regardless).
pub fn get(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("only http:// URLs: {url}"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if let Some(len) = len
                && buf.len() >= end + 4 + len
            {
                return Ok(String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned());
            }
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            let end = find(&buf, b"\r\n\r\n").map_or(buf.len(), |e| e + 4);
            return Ok(String::from_utf8_lossy(&buf[end.min(buf.len())..]).into_owned());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Every `clicktap_*` series summed over its labels (histogram buckets left out).
pub fn sums(url: &str) -> anyhow::Result<BTreeMap<String, f64>> {
    Ok(sums_of(&get(url)?))
}

fn sums_of(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || !line.starts_with("clicktap_") {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        if name.ends_with("_bucket") {
            continue;
        }
        if let Ok(v) = value.parse::<f64>() {
            *out.entry(name.to_string()).or_insert(0.0) += v;
        }
    }
    out
}

fn as_json(m: &BTreeMap<String, f64>) -> Value {
    let mut o = Map::new();
    for (k, v) in m {
        o.insert(k.clone(), json!(v));
    }
    Value::Object(o)
}

pub fn fetch(url: &str) -> anyhow::Result<String> {
    Ok(as_json(&sums(url)?).to_string())
}

fn val(m: &BTreeMap<String, f64>, k: &str) -> f64 {
    m.get(k).copied().unwrap_or(0.0)
}

/// Polls until enrichment has caught up with capture and the queue stopped growing.
pub fn settle(url: &str, timeout: f64) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    let mut prev: Option<f64> = None;
    loop {
        let m = sums(url)?;
        let captured = val(&m, "clicktap_capture_clicks_total");
        let enriched = val(&m, "clicktap_enrich_events_total");
        let appended = val(&m, "clicktap_queue_appended_total");
        let settled = enriched >= captured && prev == Some(appended);
        if settled || Instant::now() > deadline {
            let mut v = as_json(&m);
            v["settled"] = json!(settled);
            return Ok(v.to_string());
        }
        prev = Some(appended);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One series' value summed over the label sets that hold every `key="value"` of the
/// selector: `name` or `name{key="value",...}`.
pub fn selected(text: &str, selector: &str) -> f64 {
    let (name, labels) = match selector.split_once('{') {
        Some((n, l)) => (n, l.trim_end_matches('}')),
        None => (selector, ""),
    };
    let wanted: Vec<&str> = labels.split(',').filter(|l| !l.is_empty()).collect();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let (n, l) = series.split_once('{').unwrap_or((series, ""));
            n == name
                && wanted
                    .iter()
                    .all(|w| l.split(',').any(|x| x.trim_end_matches('}') == *w))
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

/// Polls `counter` (delivered webhooks by default; a selector as [`selected`] takes)
/// every 20 ms: the rate is taken from the first poll that saw it move to the one that
/// saw `expect`, so start-up is not counted.
pub fn drain(url: &str, expect: u64, timeout: f64, counter: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    let mut first: Option<(Instant, f64)> = None;
    loop {
        let text = get(url)?;
        let m = sums_of(&text);
        let now = Instant::now();
        let delivered = selected(&text, counter);
        if first.is_none() && delivered > 0.0 {
            first = Some((now, delivered));
        }
        let done = delivered >= expect as f64;
        if done || now > deadline {
            let (t0, d0) = first.unwrap_or((now, 0.0));
            let secs = now.duration_since(t0).as_secs_f64();
            let rate = if secs > 0.0 {
                (delivered - d0) / secs
            } else {
                0.0
            };
            return Ok(json!({
                "complete": done,
                "expected": expect,
                "delivered": delivered,
                "requests": val(&m, "clicktap_delivery_attempts_total"),
                "dead": val(&m, "clicktap_delivery_dead_total"),
                "retried": val(&m, "clicktap_delivery_retried_total"),
                "seconds": secs,
                "events_per_s": rate,
            })
            .to_string());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
