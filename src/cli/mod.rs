//! The command line for daily work on a running clicktap: `status`, `reload` and
//! `webhooks ...`, each a call to its admin API ([`client`]). People get tables and
//! sentences, scripts `--json` (the API's own answer, unchanged). Any no from clicktap
//! (a reload of a bad file, an unknown webhook, a bad request, a wrong token: a
//! [`Refusal`]) is exit code 2, like `check`; not reaching clicktap is 1.

mod client;
mod messages;
mod table;

pub use client::{Client, Refusal};
pub use messages::{Filter as MessageFilter, list as messages, resend};

use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use table::{Table, cell};

/// How a command ended, for its exit code.
pub enum Done {
    Ok,
    /// clicktap answered, and it is a no: a refused reload, a test event not delivered.
    Refused,
}

/// `println!` to standard output, with a write error (a reader that went away) returned
/// to the caller instead of a panic.
macro_rules! outln {
    ($($t:tt)*) => { writeln!(std::io::stdout(), $($t)*)? };
}

/// `print!`, the same way.
macro_rules! out {
    ($($t:tt)*) => { write!(std::io::stdout(), $($t)*)? };
}

fn print_json(v: &Value) -> std::io::Result<()> {
    writeln!(
        std::io::stdout(),
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_default()
    )
}

/// Whether `e` is standard output closed by its reader (`clicktap ... | head -1`): the
/// command then stops quietly, with exit 0, as the reader asked for no more.
pub fn reader_gone(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn age(ms: Option<u64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) => humantime::format_duration(Duration::from_secs(ms / 1000)).to_string(),
    }
}

/// How long ago a wall-clock time (Unix ms) was: `3m 12s ago`, or `-`.
fn ago(ms: Option<u64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) => format!(
            "{} ago",
            age(Some(crate::clock::now_ms().saturating_sub(ms)))
        ),
    }
}

/// The last failure of a webhook's health: when, and its error cut to a table's width.
fn last_error(h: &Value) -> String {
    let Some(at) = h["last_failure_ms"].as_u64() else {
        return "-".into();
    };
    let error = h["last_error"].as_str().unwrap_or("");
    let cut: String = error.chars().take(60).collect();
    let more = if cut.len() < error.len() { "…" } else { "" };
    format!("{}: {cut}{more}", ago(Some(at)))
}

/// `1536` as `1.5 KiB`: a size for people.
fn size(v: &Value) -> String {
    let Some(n) = v.as_u64() else {
        return cell(v);
    };
    let mut x = n as f64;
    let mut unit = 0;
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    while x >= 1024.0 && unit < UNITS.len() - 1 {
        x /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{x:.1} {}", UNITS[unit])
    }
}

/// The oldest of what waits for an attempt and of the dead letters (undelivered too),
/// and which it is.
fn oldest_undelivered(w: &Value) -> String {
    let waiting = w["oldest_undelivered_age_ms"].as_u64();
    match (waiting, w["oldest_dead_letter_age_ms"].as_u64()) {
        (None, None) => "-".into(),
        (waiting, Some(dead)) if waiting.is_none_or(|w| dead > w) => {
            format!("{} (dead letter)", age(Some(dead)))
        }
        (waiting, _) => age(waiting),
    }
}

pub fn status(c: &Client, as_json: bool) -> anyhow::Result<Done> {
    let s = c.ok(Method::GET, "/api/v1/status", None)?;
    if as_json {
        print_json(&s)?;
        return Ok(Done::Ok);
    }
    if s["role"] == "relay" {
        return relay_status(&s);
    }
    outln!(
        "clicktap {} (pid {}), up {}",
        cell(&s["version"]),
        cell(&s["pid"]),
        age(s["uptime_ms"].as_u64())
    );
    let hash = s["config"]["hash"].as_str().unwrap_or("");
    outln!(
        "config   {} (sha256 {}), loaded {}",
        cell(&s["config"]["path"]),
        &hash[..hash.len().min(12)],
        s["config"]["loaded_ms"]
            .as_u64()
            .map(crate::clock::rfc3339_ms)
            .unwrap_or_default()
    );
    outln!(
        "listens  proxy {}, admin {}",
        cell(&s["listeners"]["proxy"]),
        cell(&s["listeners"]["admin"])
    );
    outln!(
        "queue    {} events, {}{}",
        cell(&s["queue"]["depth"]),
        size(&s["queue"]["bytes"]),
        if s["queue"]["available"] == true {
            ""
        } else {
            " (storage out of service)"
        }
    );
    let mut t = Table::new(&[
        "webhook",
        "state",
        "lag",
        "retries",
        "dead",
        "oldest undelivered",
    ]);
    for w in s["webhooks"].as_array().into_iter().flatten() {
        t.row(vec![
            cell(&w["id"]),
            cell(&w["state"]),
            cell(&w["lag"]),
            cell(&w["retries"]),
            cell(&w["dead_letters"]),
            oldest_undelivered(w),
        ]);
    }
    out!("{}", t.render());
    for w in s["webhooks"].as_array().into_iter().flatten() {
        print_hold(
            w,
            &w["disabled_reason"],
            &w["backoff_until_ms"],
            &Value::Null,
        )?;
    }
    let sinks = s["sinks"].as_array().filter(|a| !a.is_empty());
    if let Some(sinks) = sinks {
        let mut t = Table::new(&["sink", "state", "lag", "last error"]);
        for k in sinks {
            t.row(vec![
                cell(&k["id"]),
                cell(&k["state"]),
                cell(&k["lag"]),
                cell(&k["last_error"]),
            ]);
        }
        out!("{}", t.render());
    }
    Ok(Done::Ok)
}

/// `clicktap status` of a relay: its stream and each webhook's consumer.
fn relay_status(s: &Value) -> anyhow::Result<Done> {
    outln!(
        "clicktap relay {} (pid {}), up {}",
        cell(&s["version"]),
        cell(&s["pid"]),
        age(s["uptime_ms"].as_u64())
    );
    let hash = s["config"]["hash"].as_str().unwrap_or("");
    outln!(
        "config   {} (sha256 {})",
        cell(&s["config"]["path"]),
        &hash[..hash.len().min(12)]
    );
    outln!(
        "stream   {}, dead letters in {}",
        cell(&s["stream"]),
        cell(&s["dead_letter_stream"])
    );
    let mut t = Table::new(&[
        "webhook",
        "consumer",
        "state",
        "pending",
        "unsettled",
        "redelivered",
        "last error",
    ]);
    for w in s["webhooks"].as_array().into_iter().flatten() {
        t.row(vec![
            cell(&w["id"]),
            cell(&w["consumer"]),
            cell(&w["state"]),
            cell(&w["pending"]),
            cell(&w["ack_pending"]),
            cell(&w["redelivered"]),
            cell(&w["last_error"]),
        ]);
    }
    out!("{}", t.render());
    for w in s["webhooks"].as_array().into_iter().flatten() {
        if let Some(why) = w["disabled_reason"].as_str() {
            outln!(
                "{} is disabled for every relay: {why} (clicktap relay --reactivate {})",
                cell(&w["id"]),
                cell(&w["id"])
            );
        }
    }
    Ok(Done::Ok)
}

/// A line under a table for a webhook that is disabled (why) or backing off (until when).
fn print_hold(
    w: &Value,
    disabled: &Value,
    backoff_until: &Value,
    backoff_reason: &Value,
) -> std::io::Result<()> {
    if let Some(why) = disabled.as_str() {
        outln!("{} is disabled: {why}", cell(&w["id"]));
    } else if let Some(until) = backoff_until.as_u64() {
        let why = backoff_reason
            .as_str()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        outln!(
            "{} is backing off until {}{why}",
            cell(&w["id"]),
            crate::clock::rfc3339_ms(until)
        );
    }
    Ok(())
}

pub fn reload(c: &Client, as_json: bool) -> anyhow::Result<Done> {
    let a = c.call(Method::POST, "/api/v1/reload", None)?;
    let v = a.json()?;
    if as_json {
        print_json(&v)?;
    } else if a.status == 200 {
        let list = |k: &str| {
            let ids: Vec<String> = v["webhooks"][k]
                .as_array()
                .into_iter()
                .flatten()
                .map(cell)
                .collect();
            if ids.is_empty() {
                "none".into()
            } else {
                ids.join(", ")
            }
        };
        let hash = v["hash"].as_str().unwrap_or("");
        outln!("reloaded (sha256 {})", &hash[..hash.len().min(12)]);
        outln!(
            "webhooks added: {}; changed: {}; removed: {}",
            list("added"),
            list("changed"),
            list("removed")
        );
        if v["geoip"] == true {
            outln!("GeoIP databases opened again");
        }
    } else {
        eprintln!("reload refused: {}", cell(&v["message"]));
        for p in v["problems"].as_array().into_iter().flatten() {
            eprintln!("{}", cell(p));
        }
    }
    Ok(if a.status == 200 {
        Done::Ok
    } else {
        Done::Refused
    })
}

pub fn webhooks(c: &Client, as_json: bool) -> anyhow::Result<Done> {
    let v = c.ok(Method::GET, "/api/v1/webhooks", None)?;
    if as_json {
        print_json(&v)?;
        return Ok(Done::Ok);
    }
    let mut t = Table::new(&[
        "id",
        "format",
        "state",
        "lag",
        "retries",
        "dead",
        "last success",
        "last error",
        "url",
    ]);
    for w in v["webhooks"].as_array().into_iter().flatten() {
        t.row(vec![
            cell(&w["id"]),
            cell(&w["format"]),
            if w["paused"] == true {
                "paused".to_string()
            } else {
                cell(&w["health"]["state"])
            },
            cell(&w["lag"]),
            cell(&w["retries"]),
            cell(&w["dead_letters"]),
            ago(w["health"]["last_success_ms"].as_u64()),
            last_error(&w["health"]),
            cell(&w["url"]),
        ]);
    }
    out!("{}", t.render());
    for w in v["webhooks"].as_array().into_iter().flatten() {
        for k in w["public_keys"].as_array().into_iter().flatten() {
            outln!(
                "{} signs v1a; its receiver verifies with {}",
                cell(&w["id"]),
                cell(k)
            );
        }
    }
    for w in v["webhooks"].as_array().into_iter().flatten() {
        let h = &w["health"];
        print_hold(
            w,
            &h["disabled_reason"],
            &h["backoff_until_ms"],
            &h["backoff_reason"],
        )?;
    }
    Ok(Done::Ok)
}

fn path(id: &str, rest: &str) -> String {
    let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    format!("/api/v1/webhooks/{id}{rest}")
}

pub fn test(c: &Client, id: &str, as_json: bool) -> anyhow::Result<Done> {
    let v = c.ok(Method::POST, &path(id, "/test"), None)?;
    let delivered = v["delivered"] == true;
    if as_json {
        print_json(&v)?;
    } else {
        let status = v["status"]
            .as_u64()
            .map_or("no answer".into(), |s| s.to_string());
        outln!(
            "{}: {status} in {} ms (event {}, message {})",
            if delivered {
                "delivered"
            } else {
                "not delivered"
            },
            cell(&v["latency_ms"]),
            cell(&v["event_id"]),
            cell(&v["message_id"])
        );
        if let Some(e) = v["error"].as_str() {
            outln!("error: {e}");
        }
        let body = v["response"].as_str().unwrap_or("");
        if !body.is_empty() {
            outln!("response: {body}");
        }
    }
    Ok(if delivered { Done::Ok } else { Done::Refused })
}

pub fn reactivate(c: &Client, id: &str, as_json: bool) -> anyhow::Result<Done> {
    let v = c.ok(Method::POST, &path(id, "/reactivate"), None)?;
    if as_json {
        print_json(&v)?;
    } else {
        outln!("{id}: {}", cell(&v["health"]["state"]));
    }
    Ok(Done::Ok)
}

/// What became of replayed events so far, as the webhook counts them: delivered, and
/// failed again (dead letters).
fn replay_outcomes(c: &Client, id: &str) -> anyhow::Result<(u64, u64)> {
    let v = c.ok(Method::GET, &path(id, ""), None)?;
    let n = |k: &str| v["replays"][k].as_u64().unwrap_or(0);
    Ok((n("delivered"), n("failed")))
}

/// Replays a time range; then, unless `wait` is off, follows the replayed events until
/// each is delivered or has failed again, and says which. Exits non-zero when any
/// failed again or still waits.
pub fn replay(
    c: &Client,
    id: &str,
    since: &str,
    until: &str,
    wait: bool,
    as_json: bool,
) -> anyhow::Result<Done> {
    let (delivered_before, failed_before) = replay_outcomes(c, id)?;
    let v = c.ok(
        Method::POST,
        &path(id, "/replay"),
        Some(&json!({ "since": since, "until": until })),
    )?;
    let n = v["scheduled"].as_u64().unwrap_or(0);
    if as_json {
        print_json(&v)?;
    } else {
        outln!("{id}: {n} events put back in line");
    }
    if !wait || n == 0 {
        return Ok(Done::Ok);
    }
    let tty = std::io::stderr().is_terminal() && !as_json;
    let started = Instant::now();
    let mut last_change = Instant::now();
    let (mut delivered, mut failed) = (0, 0);
    loop {
        let (d, f) = replay_outcomes(c, id)?;
        let d = d.saturating_sub(delivered_before).min(n);
        let f = f.saturating_sub(failed_before).min(n - d);
        if (d, f) != (delivered, failed) {
            last_change = Instant::now();
            (delivered, failed) = (d, f);
        }
        let left = n - delivered - failed;
        if tty {
            let done = n - left;
            let width = 30;
            let filled = (done * width / n) as usize;
            eprint!(
                "\r[{}{}] {done}/{n}",
                "#".repeat(filled),
                ".".repeat(width as usize - filled)
            );
            let _ = std::io::stderr().flush();
        }
        if left == 0 {
            break;
        }
        if last_change.elapsed() > Duration::from_secs(60) {
            if tty {
                eprintln!();
            }
            eprintln!(
                "{id}: {delivered} of {n} delivered, {failed} failed again (dead letters), {left} still wait for a retry (the receiver is failing?); see `clicktap webhooks deliveries {id}`"
            );
            return Ok(Done::Refused);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if tty {
        eprintln!();
    }
    let secs = started.elapsed().as_secs_f64();
    if failed > 0 {
        eprintln!(
            "{id}: {delivered} of {n} delivered in {secs:.1} s; {failed} failed again and are dead letters (`clicktap webhooks dead-letters {id}`)"
        );
        return Ok(Done::Refused);
    }
    if !as_json {
        outln!("{id}: {delivered} of {n} delivered in {secs:.1} s");
    }
    Ok(Done::Ok)
}

/// The delivery log, newest first; `filters` are the API's (`status`, `seq`,
/// `message_id`, `test`, `replay`).
pub fn deliveries(
    c: &Client,
    id: &str,
    filters: &[(&str, &str)],
    limit: u64,
    as_json: bool,
) -> anyhow::Result<Done> {
    let limit = limit.to_string();
    let mut pairs = vec![("limit", limit.as_str())];
    pairs.extend_from_slice(filters);
    let q = messages::query(&pairs);
    let v = c.ok(Method::GET, &path(id, &format!("/deliveries{q}")), None)?;
    if as_json {
        print_json(&v)?;
        return Ok(Done::Ok);
    }
    let mut t = Table::new(&[
        "at", "seq", "event", "attempt", "status", "ms", "message", "error",
    ]);
    for d in v["deliveries"].as_array().into_iter().flatten() {
        let attempt = if d["test"] == true {
            "test".to_string()
        } else if d["replay"] == true {
            format!("{} (replay)", cell(&d["attempt"]))
        } else {
            cell(&d["attempt"])
        };
        t.row(vec![
            cell(&d["at"]),
            cell(&d["seq"]),
            cell(&d["event_id"]),
            attempt,
            cell(&d["status"]),
            cell(&d["latency_ms"]),
            cell(&d["message_id"]),
            cell(&d["error"]),
        ]);
    }
    out!("{}", t.render());
    if let Some(rate) = v["success_rate"].as_f64() {
        outln!("success rate {:.1}%", rate * 100.0);
    }
    Ok(Done::Ok)
}

/// What to do with dead letters.
pub enum DeadLetters {
    List,
    /// The one dead letter at this sequence number.
    Show(u64),
    Replay(Option<u64>),
    Purge(Option<u64>),
}

pub fn dead_letters(
    c: &Client,
    id: &str,
    what: DeadLetters,
    as_json: bool,
) -> anyhow::Result<Done> {
    let v = match what {
        DeadLetters::List => c.ok(Method::GET, &path(id, "/dead-letters?limit=10000"), None)?,
        DeadLetters::Show(seq) => {
            let after = seq.checked_sub(1).map(|a| format!("&after={a}"));
            let mut v = c.ok(
                Method::GET,
                &path(
                    id,
                    &format!("/dead-letters?limit=1{}", after.unwrap_or_default()),
                ),
                None,
            )?;
            let one: Vec<Value> = v["dead_letters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["seq"] == seq)
                .cloned()
                .collect();
            if one.is_empty() {
                return Err(Refusal {
                    status: 404,
                    what: format!("{id} has no dead letter with seq {seq}"),
                }
                .into());
            }
            v["dead_letters"] = Value::Array(one);
            v
        }
        DeadLetters::Replay(None) => c.ok(Method::POST, &path(id, "/dead-letters/replay"), None)?,
        DeadLetters::Replay(Some(seq)) => c.ok(
            Method::POST,
            &path(id, &format!("/dead-letters/{seq}/replay")),
            None,
        )?,
        DeadLetters::Purge(None) => c.ok(Method::DELETE, &path(id, "/dead-letters"), None)?,
        DeadLetters::Purge(Some(seq)) => c.ok(
            Method::DELETE,
            &path(id, &format!("/dead-letters/{seq}")),
            None,
        )?,
    };
    if as_json {
        print_json(&v)?;
        return Ok(Done::Ok);
    }
    if let Some(list) = v["dead_letters"].as_array() {
        let mut t = Table::new(&["seq", "event", "attempts", "at", "last error"]);
        for d in list {
            t.row(vec![
                cell(&d["seq"]),
                cell(&d["event_id"]),
                cell(&d["attempts"]),
                cell(&d["at"]),
                cell(&d["last_error"]),
            ]);
        }
        out!("{}", t.render());
        outln!("{} in all", cell(&v["total"]));
    } else if let Some(n) = v.get("scheduled") {
        outln!(
            "{id}: {} dead letters put back in line for an attempt (not yet delivered; `clicktap webhooks deliveries {id}` shows how they fare)",
            cell(n)
        );
    } else {
        outln!("{id}: {} purged", cell(&v["purged"]));
    }
    Ok(Done::Ok)
}

/// `clicktap events` on a running clicktap: the newest events that match `filters`
/// (the API's: `since`, `until`, `link`, `type`, `kind`), as JSON lines with their
/// `seq` and `message_ids`.
pub fn events(c: &Client, limit: usize, filters: &[(&str, &str)]) -> anyhow::Result<Vec<u8>> {
    let limit = limit.to_string();
    let mut pairs = vec![("limit", limit.as_str()), ("meta", "true")];
    pairs.extend_from_slice(filters);
    let path = format!("/api/v1/events{}", messages::query(&pairs));
    let a = c.call(Method::GET, &path, None)?;
    if a.status != 200 {
        return Err(a.refusal("GET /api/v1/events"));
    }
    Ok(a.body)
}

/// Events as a table for people: one line each, with what leads to its deliveries.
pub fn events_table(lines: &[u8]) -> std::io::Result<()> {
    let mut t = Table::new(&["seq", "captured", "type", "kind", "link", "message ids"]);
    for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let e: Value = serde_json::from_slice(line).unwrap_or_default();
        let ids: Vec<String> = e["message_ids"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(w, m)| format!("{w}={}", cell(m)))
            .collect();
        t.row(vec![
            cell(&e["seq"]),
            cell(&e["timestamp"]),
            cell(&e["type"]),
            cell(&e["kind"]),
            format!("{}{}", cell(&e["link"]["host"]), cell(&e["link"]["path"])),
            ids.join(" "),
        ]);
    }
    write!(std::io::stdout(), "{}", t.render())
}

/// A client for `cfg`'s admin listener, with the file named in errors.
pub fn client(cfg: &crate::config::Config) -> anyhow::Result<Client> {
    let Some(admin) = &cfg.admin else {
        anyhow::bail!(
            "{}: no [admin] section: the command line talks to the running clicktap through its admin listener",
            cfg.source.display()
        );
    };
    Client::new(admin).with_context(|| format!("{}", cfg.source.display()))
}
