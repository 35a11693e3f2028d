//! Faults outside clicktap, one at a time, against the real binary, a real shortener
//! and real receivers on loopback: receivers down, slow, speaking garbage, answering
//! huge bodies or 500s; a token endpoint down; the shortener flapping; the GeoIP file
//! changed under a running process. In each, every click is accounted for (delivered,
//! waiting for another attempt, or dead-lettered with its reason) and nothing hangs.

mod common;

use common::receiver::{self, RawReceiver, native_ids};
use common::server::{Seen, Switch};
use common::{Clicktap, Options, free_port, handler, reply, upstream, wait_until};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn webhook(id: &str, url: &str, extra: &str) -> String {
    format!("[[webhooks]]\nid = \"{id}\"\nurl = \"{url}\"\nformat = \"native\"\n{extra}\n")
}

/// Retries every `step`, enough of them that no event dies during the test's outage.
fn retry_every(step: &str) -> String {
    format!("[webhooks.retry]\nmax_attempts = 100\nschedule = [\"{step}\"]\njitter = 0.0")
}

fn ok_handler() -> common::server::Handler {
    handler(|_| async { reply(200, &[], "ok") })
}

/// Clicks `/r/{prefix}-0` to `-{n-1}` (each a 302); returns the stored events by id.
fn click_all(ct: &Clicktap, prefix: &str, n: usize) -> HashMap<String, Value> {
    for i in 0..n {
        assert_eq!(ct.click(&format!("/r/{prefix}-{i}"), ""), 302);
    }
    stored(ct, n)
}

/// Stored events by id.
fn stored(ct: &Clicktap, n: usize) -> HashMap<String, Value> {
    let events = ct.wait_events(n);
    assert_eq!(events.len(), n, "stored events");
    events
        .into_iter()
        .map(|e| (e["id"].as_str().unwrap().to_string(), e))
        .collect()
}

/// A native single-event body as the event it was made from: the stored object plus
/// `webhook_id` (and `link_meta` when a link matches).
fn as_stored(s: &Seen) -> Value {
    let mut v = receiver::body_json(s);
    let o = v.as_object_mut().unwrap();
    o.remove("webhook_id");
    o.remove("link_meta");
    v
}

/// The webhook as the admin API lists it.
fn listed(ct: &Clicktap, id: &str) -> Value {
    let list: Value = serde_json::from_str(&ct.admin_get("/api/v1/webhooks")).unwrap();
    list["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not listed: {list}"))
}

/// Waits until the webhook has read every stored event: each was attempted at least
/// once and settled before the cursor moved past it.
fn wait_read(ct: &Clicktap, id: &str) {
    wait_until("every event read", Duration::from_secs(20), || {
        listed(ct, id)["lag"] == 0
    });
}

/// A webhook's whole delivery log, newest first.
fn whole_log(ct: &Clicktap, id: &str) -> Value {
    serde_json::from_str(&ct.admin_get(&format!("/api/v1/webhooks/{id}/deliveries?limit=10000")))
        .unwrap()
}

/// The newest attempt of each event in the delivery log.
fn newest_attempts(log: &Value) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    // Newest first: the first entry seen for an event is its newest.
    for d in log["deliveries"].as_array().unwrap() {
        out.entry(d["event_id"].as_str().unwrap().to_string())
            .or_insert_with(|| d.clone());
    }
    out
}

#[test]
fn a_receiver_down_for_a_while_gets_every_event_as_stored_once_it_is_back() {
    let up = upstream::start();
    let mut rx = Switch::down(free_port(), ok_handler());
    let dir = tempfile::tempdir().unwrap();
    let steps = "[webhooks.retry]\nmax_attempts = 100\nschedule = [\"50ms\", \"100ms\", \"200ms\", \"400ms\"]\njitter = 0.0";
    let o = Options::default().tail(&webhook("down", &rx.url("/"), steps));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let stored = click_all(&ct, "down", 10);
    wait_read(&ct, "down");
    // Every event is waiting for another attempt, with the reason: none delivered,
    // none dead, none unaccounted for.
    let mut newest = HashMap::new();
    wait_until(
        "each event's attempt logged",
        Duration::from_secs(10),
        || {
            newest = newest_attempts(&whole_log(&ct, "down"));
            newest.len() == 10
        },
    );
    assert_eq!(
        newest.keys().cloned().collect::<HashSet<_>>(),
        stored.keys().cloned().collect::<HashSet<_>>()
    );
    for d in newest.values() {
        let error = d["error"].as_str().unwrap_or_default();
        assert!(error.contains("Connection refused"), "{d}");
    }
    assert_eq!(ct.metric("clicktap_delivery_delivered_total", ""), 0.0);
    assert_eq!(ct.metric("clicktap_delivery_dead_total", ""), 0.0);
    assert_eq!(listed(&ct, "down")["dead_letters"], 0);
    assert_eq!(listed(&ct, "down")["retries"], 10, "each waits for a retry");

    // Still refused while the schedule reaches its longest step, then back.
    wait_until("a few retries", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_attempts_total", r#"outcome="failure""#) >= 40.0
    });
    rx.up();
    let back = Instant::now();
    // The longest step is 400 ms: each event is due within that of the receiver's
    // return. The bound leaves room for a loaded machine, not for a missed retry.
    wait_until("every event delivered", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 10.0
    });
    let took = back.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "delivered {took:?} after the return"
    );
    let seen = rx.requests();
    assert_eq!(seen.len(), 10, "each event sent once to the receiver");
    for s in &seen {
        let got = as_stored(s);
        let id = got["id"].as_str().unwrap();
        assert_eq!(got, stored[id], "sent as stored");
    }
    assert_eq!(ct.metric("clicktap_delivery_dead_total", ""), 0.0);
    // delivered + dead + waiting = stored: every event's newest attempt is its delivery.
    let mut newest = HashMap::new();
    wait_until("the deliveries logged", Duration::from_secs(10), || {
        newest = newest_attempts(&whole_log(&ct, "down"));
        newest.values().filter(|d| d["status"] == 200).count() == 10
    });
    assert_eq!(newest.len(), 10);
    assert!(newest.values().all(|d| d["status"] == 200), "{newest:?}");
    assert_eq!(listed(&ct, "down")["dead_letters"], 0);
    assert_eq!(listed(&ct, "down")["retries"], 0);
}

#[test]
fn a_slow_receiver_under_a_burst_gets_everything_within_the_webhooks_concurrency() {
    let up = upstream::start();
    // Answers after 60% of the timeout: slow, never too slow.
    let (rx, in_flight) = receiver::slow_counted(Duration::from_millis(600));
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "timeout = \"1s\"\nconcurrency = 3\n{}",
        retry_every("100ms")
    );
    let o = Options::default().tail(&webhook("slow", &rx.url("/"), &extra));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let stored = click_all(&ct, "slow", 13);
    wait_until("13 delivered", Duration::from_secs(20), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 13.0
    });
    let got: HashSet<String> = rx.requests().iter().flat_map(native_ids).collect();
    assert_eq!(got, stored.keys().cloned().collect::<HashSet<_>>());
    assert_eq!(
        ct.metric("clicktap_delivery_attempts_total", r#"outcome="failure""#),
        0.0,
        "an answer within the timeout is a success, however long the wait for a slot:\n{}",
        whole_log(&ct, "slow")
    );
    assert_eq!(rx.requests().len(), 13, "each event sent once");
    assert!(
        in_flight.most() <= 3,
        "{} requests in flight at once with concurrency = 3",
        in_flight.most()
    );
    assert_eq!(in_flight.most(), 3, "the burst used the concurrency it has");
}

#[test]
fn a_receiver_answering_garbage_is_a_failed_attempt_retried_until_it_recovers() {
    let up = upstream::start();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let garbage = RawReceiver::start(
        &bind,
        b"SSH-2.0-OpenSSH_9.6\r\n\x00\xff\xfe not http\r\n\r\n",
    );
    let mut rx = Switch::down(port, ok_handler());
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook("garbage", &rx.url("/"), &retry_every("100ms")));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/garbage", ""), 302);
    let stored = stored(&ct, 1);
    wait_until("retried", Duration::from_secs(10), || {
        garbage.connections() >= 3
    });
    let log = ct.wait_deliveries("garbage", 2);
    for d in log["deliveries"].as_array().unwrap() {
        assert_eq!(d["status"], Value::Null, "{d}");
        let error = d["error"].as_str().unwrap();
        assert!(error.contains("invalid HTTP"), "a clear reason: {error}");
    }
    assert_eq!(ct.metric("clicktap_delivery_delivered_total", ""), 0.0);
    assert_eq!(ct.metric("clicktap_delivery_dead_total", ""), 0.0);

    drop(garbage);
    rx.up();
    wait_until("delivered", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 1.0
    });
    let seen = rx.requests();
    assert_eq!(seen.len(), 1);
    let got = as_stored(&seen[0]);
    assert_eq!(got, stored[got["id"].as_str().unwrap()]);
}

/// A process's resident memory and its peak, in bytes, from /proc.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {status}"))
    };
    (kib("VmRSS:") * 1024, kib("VmHWM:") * 1024)
}

#[test]
fn a_receiver_answering_ten_megabytes_is_a_delivery_and_costs_no_memory() {
    let up = upstream::start();
    let rx = receiver::big(10 << 20);
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .delivery("log_body_bytes = 300")
        .tail(&webhook("big", &rx.url("/"), "concurrency = 8"));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    // One delivery first, so that what a first request sets up once is in the baseline.
    assert_eq!(ct.click("/r/big-first", ""), 302);
    wait_until("the first delivered", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 1.0
    });
    let (before, _) = memory(ct.child.id());
    for i in 0..12 {
        assert_eq!(ct.click(&format!("/r/big-{i}"), ""), 302);
    }
    wait_until("12 more delivered", Duration::from_secs(20), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 13.0
    });
    let (after, peak) = memory(ct.child.id());
    const BOUND: u64 = 64 << 20;
    assert!(
        after < before + BOUND && peak < before + BOUND,
        "resident {} MiB before, {} MiB after, {} MiB at the peak",
        before >> 20,
        after >> 20,
        peak >> 20
    );
    let log = ct.wait_deliveries("big", 13);
    for d in log["deliveries"].as_array().unwrap() {
        assert_eq!(d["status"], 200, "{d}");
        assert_eq!(d["response"], "x".repeat(300));
    }
    // The connections cut short after the kept bytes leave nothing stuck behind.
    assert_eq!(ct.click("/r/big-next", ""), 302);
    wait_until("the next delivered", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 14.0
    });
    assert_eq!(
        ct.metric("clicktap_delivery_attempts_total", r#"outcome="failure""#),
        0.0
    );
}

#[test]
fn a_storm_of_500s_loses_nothing_and_the_counters_agree_with_the_receiver() {
    let up = upstream::start();
    let failing = Arc::new(AtomicBool::new(true));
    let refused = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let (f, r, a) = (failing.clone(), refused.clone(), accepted.clone());
    let rx = receiver::scripted(move |_, s| {
        let outcome = if f.load(Ordering::SeqCst) {
            r.fetch_add(1, Ordering::SeqCst);
            500
        } else {
            a.lock().unwrap().extend(native_ids(&s));
            200
        };
        async move { reply(outcome, &[], "") }
    });
    let dir = tempfile::tempdir().unwrap();
    let retry = "[webhooks.retry]\nmax_attempts = 100\nschedule = [\"1s\"]";
    let o = Options::default().tail(&webhook("storm", &rx.url("/"), retry));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let stored = click_all(&ct, "storm", 200);
    // Every event has failed at least once before the receiver recovers.
    wait_read(&ct, "storm");
    assert!(refused.load(Ordering::SeqCst) >= 200);
    failing.store(false, Ordering::SeqCst);
    wait_until("200 delivered", Duration::from_secs(20), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 200.0
    });
    let got: Vec<String> = accepted.lock().unwrap().clone();
    assert_eq!(got.len(), 200, "each event accepted once");
    assert_eq!(
        got.into_iter().collect::<HashSet<_>>(),
        stored.keys().cloned().collect::<HashSet<_>>()
    );
    // A request carries one event here: every 500 is a failed attempt and a retry.
    let refused = refused.load(Ordering::SeqCst) as f64;
    let m = ct.admin_get("/metrics");
    let metric = |name: &str, labels: &str| common::clicktap::metric_in(&m, name, labels);
    assert_eq!(
        metric("clicktap_delivery_attempts_total", r#"outcome="failure""#),
        refused,
        "{m}"
    );
    assert_eq!(
        metric("clicktap_delivery_attempts_total", r#"outcome="success""#),
        200.0,
        "{m}"
    );
    assert_eq!(
        metric("clicktap_delivery_retried_total", ""),
        refused,
        "{m}"
    );
    assert_eq!(metric("clicktap_delivery_dead_total", ""), 0.0, "{m}");
    assert_eq!(rx.requests().len() as f64, refused + 200.0);
}

#[test]
fn a_token_endpoint_down_fails_attempts_naming_it_then_delivers_once_it_is_up() {
    let up = upstream::start();
    let mut tokens = Switch::down(
        free_port(),
        handler(|_| async {
            reply(
                200,
                &[("Content-Type", "application/json")],
                r#"{"access_token":"t","expires_in":3600}"#,
            )
        }),
    );
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let hook = format!(
        "[[webhooks]]\nid = \"oauth\"\nurl = \"{}\"\n{}\n[webhooks.auth]\ntype = \"oauth2_client_credentials\"\ntoken_url = \"{}\"\nclient_id = \"cid\"\nclient_secret = \"csecret\"\n",
        rx.url("/"),
        retry_every("100ms"),
        tokens.url("/token")
    );
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().tail(&hook));
    assert_eq!(ct.click("/r/token", ""), 302);
    wait_until("failed attempts", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_attempts_total", r#"outcome="failure""#) >= 2.0
    });
    let log = ct.wait_deliveries("oauth", 2);
    for d in log["deliveries"].as_array().unwrap() {
        let error = d["error"].as_str().unwrap();
        assert!(error.contains("token endpoint"), "{error}");
        assert!(error.contains("Connection refused"), "{error}");
        assert!(!error.contains("csecret"), "{error}");
    }
    assert!(rx.requests().is_empty(), "nothing sent without a token");
    assert!(
        ct.metric(
            "clicktap_delivery_token_fetches_total",
            r#"outcome="failure""#
        ) >= 2.0
    );

    tokens.up();
    wait_until("delivered", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 1.0
    });
    let seen = rx.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["authorization"], "Bearer t");
    assert_eq!(ct.metric("clicktap_delivery_dead_total", ""), 0.0);
}

#[test]
fn a_flapping_upstream_is_a_fast_502_while_down_and_clicks_are_captured_once_it_is_back() {
    let mut shortener = Switch::down(free_port(), upstream::routes());
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), shortener.addr, &Options::default());
    let mut captured = HashSet::new();
    let mut requests = 0;
    for round in 0..3 {
        shortener.up();
        // Two each time, so that a kept-alive connection waits in the pool at the fall.
        for i in 0..2 {
            let path = format!("/r/up-{round}-{i}");
            assert_eq!(ct.click(&path, ""), 302, "{path}:\n{}", ct.log_text());
            captured.insert(path);
            requests += 1;
        }
        shortener.take_down();
        for i in 0..2 {
            let path = format!("/r/down-{round}-{i}");
            let started = Instant::now();
            assert_eq!(ct.click(&path, ""), 502, "{path}");
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(2),
                "{path}: a 502 after {took:?}"
            );
            requests += 1;
        }
    }
    ct.wait_settled(requests);
    let paths: HashSet<String> = ct
        .events(100)
        .iter()
        .map(|e| e["link"]["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paths, captured, "the 302s and nothing else");
    assert_eq!(ct.metric("clicktap_capture_clicks_total", ""), 6.0);
    assert_eq!(
        ct.metric("clicktap_proxy_requests_total", ""),
        requests as f64
    );
}

#[test]
fn the_geoip_file_replaced_and_then_overwritten_with_garbage_changes_nothing_in_a_running_clicktap()
{
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("city.mmdb");
    std::fs::copy(common::test_city_db(), &db).unwrap();
    let o = Options::default()
        .proxy(r#"trusted_proxies = ["127.0.0.1"]"#)
        .geoip(&format!("database = {:?}", db.display().to_string()));
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    let from_london = "X-Forwarded-For: 81.2.69.142\r\n";
    let click = |ct: &Clicktap, path: &str, n: usize| -> Value {
        assert_eq!(ct.click(path, from_london), 302);
        let events = ct.wait_events(n);
        let e = events.iter().find(|e| e["link"]["path"] == path);
        e.unwrap_or_else(|| panic!("{path} not stored: {events:?}"))["geo"].clone()
    };
    let at_start = click(&ct, "/r/start", 1);
    // The flat database put in its place knows London too, without a country name.
    assert_eq!(at_start["city"], "London", "{at_start}");
    assert_eq!(at_start["country_name"], "United Kingdom", "{at_start}");

    // Replaced whole, as geoipupdate does: a new file renamed over the old one.
    let other = dir.path().join("other.mmdb.tmp");
    let flat = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("geo/test/clicktap-test-flat-ipv4.mmdb");
    std::fs::copy(flat, &other).unwrap();
    std::fs::rename(&other, &db).unwrap();
    assert_eq!(click(&ct, "/r/replaced", 2), at_start);

    // Overwritten in place with what is no database at all.
    std::fs::write(&db, b"not a MaxMind database, just bytes\n".repeat(100)).unwrap();
    assert_eq!(click(&ct, "/r/garbage", 3), at_start);
    assert!(ct.child.try_wait().unwrap().is_none(), "still running");
    assert_eq!(ct.metric("clicktap_queue_appended_total", ""), 3.0);

    // What a restart would meet is said before it: the file, and why.
    let out = std::process::Command::new(common::clicktap::bin())
        .args(["check", "--config"])
        .arg(&ct.config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("geoip.database"), "{stderr}");
    assert!(stderr.contains(&db.display().to_string()), "{stderr}");
    assert!(ct.stop().success(), "{}", ct.log_text());
}
