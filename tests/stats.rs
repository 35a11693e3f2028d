//! `GET /api/v1/stats` through the real binary: clicks of every kind counted in the
//! minute they were captured, tops by link and referrer, the same numbers after a
//! graceful restart, every stored event counted exactly once across SIGKILLs, and bad
//! query values refused naming the parameter.

mod common;

use common::{BROWSER, Clicktap, Options, events_cli, upstream, wait_until};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const KINDS: [&str; 5] = ["human", "bot", "preview", "head", "prefetch"];

fn get(ct: &Clicktap, query: &str) -> (u16, Value) {
    let (status, body) = common::http_get(
        ct.admin,
        &format!("/api/v1/stats{query}"),
        &[(
            "Authorization",
            &format!("Bearer {}", common::clicktap::TOKEN),
        )],
    );
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn stats(ct: &Clicktap, query: &str) -> Value {
    let (status, v) = get(ct, query);
    assert_eq!(status, 200, "{v}");
    v
}

/// Waits (bounded) until the rollup has counted `n` clicks in the last hour.
fn wait_counted(ct: &Clicktap, n: u64) -> Value {
    let mut last = Value::Null;
    wait_until(
        "the rollup to count every click",
        Duration::from_secs(20),
        || {
            last = stats(ct, "");
            last["totals"]["clicks"] == n
        },
    );
    last
}

fn top(v: &Value, dim: &str) -> Vec<(String, u64)> {
    v["top"][dim]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_string(),
                e["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Clicks per capture minute (`YYYY-MM-DDTHH:MM`) and kind, as the stored events say.
fn by_minute(events: &[Value]) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for e in events {
        let minute = e["timestamp"].as_str().unwrap()[..16].to_string();
        let kind = e["kind"].as_str().unwrap().to_string();
        *out.entry(minute).or_default().entry(kind).or_default() += 1;
    }
    out
}

/// The rollup's counts for each of `minutes`, asked one minute at a time.
fn counted_by_minute(
    ct: &Clicktap,
    minutes: impl Iterator<Item = String>,
) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for m in minutes {
        let v = stats(ct, &format!("?since={m}:00Z&until={m}:59.999Z&step=60"));
        let series = v["series"].as_array().unwrap();
        assert_eq!(series.len(), 1, "one minute, one point: {v}");
        let counts: BTreeMap<String, u64> = KINDS
            .iter()
            .map(|k| (k.to_string(), series[0][*k].as_u64().unwrap()))
            .filter(|(_, n)| *n > 0)
            .collect();
        out.insert(m, counts);
    }
    out
}

#[test]
fn clicks_of_every_kind_are_counted_in_their_minute_and_the_same_after_a_restart() {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let mut ct = Clicktap::start(dir.path(), up.addr, &Options::default());
    let from_news = format!("{BROWSER}Referer: https://news.example.org/today\r\n");
    let clicks = [
        ("/r/alpha", BROWSER.to_string()),
        ("/r/alpha", BROWSER.to_string()),
        ("/r/alpha", from_news.clone()),
        ("/r/alpha", "User-Agent: curl/8.4.0\r\n".to_string()),
        (
            "/r/alpha",
            "User-Agent: Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)\r\n"
                .to_string(),
        ),
        ("HEAD /r/beta", BROWSER.to_string()),
        ("/r/beta", format!("{from_news}Sec-Purpose: prefetch\r\n")),
    ];
    for (path, headers) in &clicks {
        assert_eq!(ct.click(path, headers), 302, "{path}");
    }
    ct.wait_settled(clicks.len());
    let v = wait_counted(&ct, 7);

    assert_eq!(v["kinds"], serde_json::json!(KINDS));
    for (kind, n) in [
        ("human", 3),
        ("bot", 1),
        ("preview", 1),
        ("head", 1),
        ("prefetch", 1),
    ] {
        assert_eq!(v["totals"][kind], n, "{kind}: {v}");
    }
    assert_eq!(
        top(&v, "links"),
        [("/r/alpha".to_string(), 5), ("/r/beta".to_string(), 2)]
    );
    assert_eq!(top(&v, "destinations"), [("example.com".to_string(), 7)]);
    assert_eq!(
        top(&v, "referrers"),
        [
            ("direct".to_string(), 5),
            ("news.example.org".to_string(), 2)
        ]
    );
    assert_eq!(top(&v, "countries"), [("unknown".to_string(), 7)]);
    // Chrome: the people, the HEAD and the prefetch.
    assert!(
        top(&v, "browsers").contains(&("Chrome".to_string(), 5)),
        "{}",
        v["top"]["browsers"]
    );
    assert_eq!(v["unique"], Value::Null);
    assert_eq!(v["qr"], Value::Null);
    // Every minute of the last hour, zeros included, oldest first.
    let series = v["series"].as_array().unwrap();
    assert!(series.len() >= 60, "{}", series.len());
    assert!(
        series
            .windows(2)
            .all(|p| p[1]["at_ms"].as_u64() == Some(p[0]["at_ms"].as_u64().unwrap() + 60_000))
    );
    // In the right minute: the one each event was captured in.
    let events = ct.events(100);
    let expected = by_minute(&events);
    assert_eq!(counted_by_minute(&ct, expected.keys().cloned()), expected);

    // The same window after a graceful restart: the same numbers, nothing counted twice.
    let window = format!(
        "?since={}&until={}",
        v["since_ms"].as_u64().unwrap(),
        v["until_ms"].as_u64().unwrap()
    );
    let before = stats(&ct, &window);
    assert!(ct.stop().success(), "{}", ct.log_text());
    let mut ct = Clicktap::start_with(ct.config.clone(), ct.proxy, ct.admin, dir.path());
    assert_eq!(stats(&ct, &window), before);
    assert_eq!(ct.click("/r/gamma", BROWSER), 302);
    let after = wait_counted(&ct, 8);
    assert_eq!(after["totals"]["human"], 4);
    assert_eq!(
        ct.metric("clicktap_stats_events_total", "outcome=\"counted\""),
        1.0
    );
    assert!(ct.stop().success());
}

#[test]
fn after_sigkills_mid_stream_every_stored_event_is_counted_exactly_once() {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let mut ct = Clicktap::start(dir.path(), up.addr, &Options::default());
    let stop = Arc::new(AtomicBool::new(false));
    let loader = {
        let (stop, addr) = (stop.clone(), ct.proxy);
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (method, ua) = match i % 4 {
                    0 => ("HEAD", BROWSER.to_string()),
                    1 => ("GET", "User-Agent: curl/8.4.0\r\n".to_string()),
                    _ => ("GET", BROWSER.to_string()),
                };
                let req = format!(
                    "{method} /r/load-{} HTTP/1.1\r\nHost: sho.rt\r\n{ua}Connection: close\r\n\r\n",
                    i % 7
                );
                // A process being killed refuses or cuts some: those are not stored.
                if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                    use std::io::{Read, Write};
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    let _ = s.write_all(req.as_bytes());
                    let _ = s.read_to_end(&mut Vec::new());
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    for round in 0..3 {
        let counted = ct.metric("clicktap_stats_events_total", "outcome=\"counted\"");
        wait_until(
            "clicks counted before the kill",
            Duration::from_secs(20),
            || ct.metric("clicktap_stats_events_total", "outcome=\"counted\"") >= counted + 50.0,
        );
        std::thread::sleep(Duration::from_millis(37 * round));
        ct.kill9();
        ct = Clicktap::start_with(ct.config.clone(), ct.proxy, ct.admin, dir.path());
    }
    stop.store(true, Ordering::Relaxed);
    loader.join().unwrap();
    ct.wait_settled(0);
    let events = events_cli(&ct.config, 1_000_000);
    assert!(events.len() > 150, "{}", events.len());
    // Counts only grow: once they equal the events stored, nothing was counted twice.
    wait_until(
        "the rollup to count every stored event",
        Duration::from_secs(20),
        || stats(&ct, "?since=0")["totals"]["clicks"] == events.len() as u64,
    );
    let expected = by_minute(&events);
    let counted = counted_by_minute(&ct, expected.keys().cloned());
    assert_eq!(
        counted, expected,
        "per minute and kind, rollup vs stored events"
    );
    let v = stats(&ct, "?since=0&top=100");
    assert_eq!(v["totals"]["clicks"], events.len() as u64);
    let links: u64 = top(&v, "links").iter().map(|(_, n)| n).sum();
    assert_eq!(links, events.len() as u64);
    assert_eq!(
        ct.metric("clicktap_stats_events_total", "outcome=\"missed\""),
        0.0
    );
    assert!(ct.stop().success());
}

#[test]
fn bad_query_values_are_refused_naming_the_parameter() {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default());
    for (query, name) in [
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("since=-5", "since"),
        ("top=0", "top"),
        ("top=101", "top"),
        ("top=ten", "top"),
        ("step=90", "step"),
        ("step=0", "step"),
        ("step=1m", "step"),
    ] {
        let (status, v) = get(&ct, &format!("?{query}"));
        assert_eq!(status, 400, "{query}: {v}");
        let message = v["message"].as_str().unwrap();
        assert!(message.starts_with(name), "{query}: {message}");
    }
    // An offset's `+` sent unencoded arrives as a space, and is read as the `+` it was.
    let v = stats(
        &ct,
        "?since=2026-12-04T10:00:00+01:00&until=2026-12-04T10:30:00+01:00",
    );
    assert_eq!(v["since_ms"], 1_796_374_800_000u64);
    assert_eq!(v["series"].as_array().unwrap().len(), 30);
    // Upside down: an empty window, not an error.
    let v = stats(&ct, "?since=2000&until=1000");
    assert_eq!(v["series"], serde_json::json!([]));
    assert_eq!(v["totals"]["clicks"], 0);
}

#[test]
fn with_stats_off_the_route_says_so_and_nothing_is_counted() {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail("[stats]\nenabled = false\n");
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/x", BROWSER), 302);
    ct.wait_settled(1);
    let (status, v) = get(&ct, "");
    assert_eq!(status, 404, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("[stats] enabled = false")
    );
    assert_eq!(
        ct.metric("clicktap_stats_events_total", "outcome=\"counted\""),
        0.0
    );
}

#[test]
fn check_lists_every_problem_of_the_stats_table_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clicktap.toml");
    let run = |text: &str| {
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(common::clicktap::bin())
            .current_dir(dir.path())
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) =
        run("[stats]\nretention = \"40d\"\nkeep = true\n[queue]\nretention = \"0s\"\n");
    assert_eq!(code, Some(2), "{err}");
    let file = path.display().to_string();
    for e in [
        "stats.retention: \"40d\" is outside 1m-30days",
        "stats.keep: unknown key",
        "queue.retention",
    ] {
        assert!(
            err.contains(&format!("{file}: {e}")),
            "does not say {e:?}:\n{err}"
        );
    }
    let (code, err) = run("[stats]\nretention = \"30s\"\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("stats.retention: \"30s\" is outside 1m-30days"),
        "{err}"
    );
    let (code, err) = run("[stats]\nenabled = false\nretention = \"1d\"\n");
    assert_eq!(code, Some(0), "{err}");
}
