//! The command line for daily work on a running clicktap: `status`, `reload` and
//! `webhooks ...`, each a call to its admin API ([`client`]). People get tables and
//! sentences, scripts `--json` (the API's own answer, unchanged). A refusal (a reload
//! of a bad file) is exit code 2, like `check`; not reaching clicktap is 1.

mod client;
mod table;

pub use client::Client;

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

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn age(ms: Option<u64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) => humantime::format_duration(Duration::from_secs(ms / 1000)).to_string(),
    }
}

pub fn status(c: &Client, as_json: bool) -> anyhow::Result<Done> {
    let s = c.ok(Method::GET, "/api/v1/status", None)?;
    if as_json {
        print_json(&s);
        return Ok(Done::Ok);
    }
    println!(
        "clicktap {} (pid {}), up {}",
        cell(&s["version"]),
        cell(&s["pid"]),
        age(s["uptime_ms"].as_u64())
    );
    let hash = s["config"]["hash"].as_str().unwrap_or("");
    println!(
        "config   {} (sha256 {}), loaded {}",
        cell(&s["config"]["path"]),
        &hash[..hash.len().min(12)],
        s["config"]["loaded_ms"]
            .as_u64()
            .map(crate::clock::rfc3339_ms)
            .unwrap_or_default()
    );
    println!(
        "listens  proxy {}, admin {}",
        cell(&s["listeners"]["proxy"]),
        cell(&s["listeners"]["admin"])
    );
    println!(
        "queue    {} events, {} bytes{}",
        cell(&s["queue"]["depth"]),
        cell(&s["queue"]["bytes"]),
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
            age(w["oldest_undelivered_age_ms"].as_u64()),
        ]);
    }
    print!("{}", t.render());
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
        print!("{}", t.render());
    }
    Ok(Done::Ok)
}

pub fn reload(c: &Client, as_json: bool) -> anyhow::Result<Done> {
    let a = c.call(Method::POST, "/api/v1/reload", None)?;
    let v = a.json()?;
    if as_json {
        print_json(&v);
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
        println!("reloaded (sha256 {})", &hash[..hash.len().min(12)]);
        println!(
            "webhooks added: {}; changed: {}; removed: {}",
            list("added"),
            list("changed"),
            list("removed")
        );
        if v["geoip"] == true {
            println!("GeoIP databases opened again");
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
        print_json(&v);
        return Ok(Done::Ok);
    }
    let mut t = Table::new(&["id", "format", "state", "lag", "retries", "dead", "url"]);
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
            cell(&w["url"]),
        ]);
    }
    print!("{}", t.render());
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
        print_json(&v);
    } else {
        let status = v["status"]
            .as_u64()
            .map_or("no answer".into(), |s| s.to_string());
        println!(
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
            println!("error: {e}");
        }
        let body = v["response"].as_str().unwrap_or("");
        if !body.is_empty() {
            println!("response: {body}");
        }
    }
    Ok(if delivered { Done::Ok } else { Done::Refused })
}

pub fn reactivate(c: &Client, id: &str, as_json: bool) -> anyhow::Result<Done> {
    let v = c.ok(Method::POST, &path(id, "/reactivate"), None)?;
    if as_json {
        print_json(&v);
    } else {
        println!("{id}: {}", cell(&v["health"]["state"]));
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
        print_json(&v);
    } else {
        println!("{id}: {n} events put back in line");
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
        println!("{id}: {delivered} of {n} delivered in {secs:.1} s");
    }
    Ok(Done::Ok)
}

pub fn deliveries(
    c: &Client,
    id: &str,
    status: Option<&str>,
    limit: u64,
    as_json: bool,
) -> anyhow::Result<Done> {
    let mut q = format!("?limit={limit}");
    if let Some(s) = status {
        q.push_str("&status=");
        q.extend(url::form_urlencoded::byte_serialize(s.as_bytes()));
    }
    let v = c.ok(Method::GET, &path(id, &format!("/deliveries{q}")), None)?;
    if as_json {
        print_json(&v);
        return Ok(Done::Ok);
    }
    let mut t = Table::new(&["at", "event", "attempt", "status", "ms", "error"]);
    for d in v["deliveries"].as_array().into_iter().flatten() {
        t.row(vec![
            cell(&d["at"]),
            cell(&d["event_id"]),
            cell(&d["attempt"]),
            cell(&d["status"]),
            cell(&d["latency_ms"]),
            cell(&d["error"]),
        ]);
    }
    print!("{}", t.render());
    if let Some(rate) = v["success_rate"].as_f64() {
        println!("success rate {:.1}%", rate * 100.0);
    }
    Ok(Done::Ok)
}

/// What to do with dead letters.
pub enum DeadLetters {
    List,
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
        print_json(&v);
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
        print!("{}", t.render());
        println!("{} in all", cell(&v["total"]));
    } else if let Some(n) = v.get("scheduled") {
        println!(
            "{id}: {} dead letters put back in line for an attempt (not yet delivered; `clicktap webhooks deliveries {id}` shows how they fare)",
            cell(n)
        );
    } else {
        println!("{id}: {} purged", cell(&v["purged"]));
    }
    Ok(Done::Ok)
}

/// `clicktap events` on a running clicktap: the newest events, as JSON lines.
pub fn events(c: &Client, limit: usize) -> anyhow::Result<Vec<u8>> {
    let a = c.call(Method::GET, &format!("/api/v1/events?limit={limit}"), None)?;
    if a.status != 200 {
        anyhow::bail!(
            "GET /api/v1/events: {}: {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        );
    }
    Ok(a.body)
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
