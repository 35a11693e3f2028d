//! Delivery as the Standard Webhooks spec reads a receiver's answers, through the real
//! binary: a 410 Gone disables the webhook at once, and its events wait for a
//! reactivation; a 429 (or 502, 503, 504) backs the webhook off, honouring
//! `Retry-After`, without using up attempts or counting toward `disable_after`, and
//! every event is delivered once the receiver takes them again.

mod common;

use common::receiver::{self, native_ids};
use common::{Clicktap, Options, reply, upstream, wait_until};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn webhook(id: &str, url: &str, extra: &str) -> String {
    format!("[[webhooks]]\nid = \"{id}\"\nurl = \"{url}\"\nformat = \"native\"\n{extra}\n")
}

fn stored_ids(ct: &Clicktap) -> HashSet<String> {
    ct.events(100)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_410_disables_the_webhook_at_once_and_its_events_wait_for_a_reactivation() {
    let up = upstream::start();
    let gone = Arc::new(AtomicBool::new(true));
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let (g, a) = (gone.clone(), accepted.clone());
    let rx = receiver::scripted(move |_, s| {
        let status = if g.load(Ordering::SeqCst) {
            410
        } else {
            a.lock().unwrap().extend(native_ids(&s));
            200
        };
        async move { reply(status, &[], "") }
    });
    let dir = tempfile::tempdir().unwrap();
    // One attempt and a day to disable: a plain failure would be a dead letter and an
    // alerting webhook; a 410 is neither.
    let o = Options::default().tail(&webhook(
        "gone",
        &rx.url("/"),
        "concurrency = 1\ndisable_after = \"24h\"\n[webhooks.retry]\nmax_attempts = 1",
    ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..3 {
        assert_eq!(ct.click(&format!("/r/gone-{i}"), ""), 302);
    }
    wait_until("disabled", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_webhook_state", r#"webhook="gone""#) == 2.0
    });
    ct.wait_settled(3);
    assert_eq!(rx.requests().len(), 1, "disabled at the first 410");
    assert_eq!(
        ct.metric(
            "clicktap_delivery_disabled_total",
            r#"reason="gone",webhook="gone""#
        ),
        1.0
    );
    assert_eq!(
        ct.metric("clicktap_delivery_attempts_total", r#"outcome="gone""#),
        1.0
    );
    assert_eq!(ct.metric("clicktap_delivery_dead_total", ""), 0.0);

    // The reason, everywhere health is shown.
    let w: Value = serde_json::from_str(&ct.admin_get("/api/v1/webhooks/gone")).unwrap();
    assert_eq!(w["health"]["state"], "disabled", "{w}");
    let reason = w["health"]["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("410"), "{w}");
    assert_eq!(w["dead_letters"], 0, "{w}");
    let status: Value = serde_json::from_str(&ct.admin_get("/api/v1/status")).unwrap();
    assert_eq!(status["webhooks"][0]["state"], "disabled", "{status}");
    assert!(
        status["webhooks"][0]["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410"),
        "{status}"
    );
    let (code, out, err) = ct.cli(&["webhooks", "list"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("gone is disabled: answered 410"), "{out}");
    let (_, out, _) = ct.cli(&["status"]);
    assert!(out.contains("gone is disabled: answered 410"), "{out}");
    let log = ct.wait_deliveries("gone", 1);
    assert_eq!(log["deliveries"][0]["outcome"], "gone", "{log}");
    assert_eq!(log["deliveries"][0]["status"], 410, "{log}");

    // Disabled: nothing more is sent, new events included; nothing is lost either.
    for i in 3..5 {
        assert_eq!(ct.click(&format!("/r/gone-{i}"), ""), 302);
    }
    ct.wait_settled(5);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        rx.requests().len(),
        1,
        "a disabled webhook was sent a request"
    );

    // Reactivated once the receiver wants them again: every event arrives.
    gone.store(false, Ordering::SeqCst);
    let (code, out, err) = ct.cli(&["webhooks", "reactivate", "gone"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_until("5 delivered", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 5.0
    });
    let got: HashSet<String> = accepted.lock().unwrap().iter().cloned().collect();
    assert_eq!(got, stored_ids(&ct));
    let w: Value = serde_json::from_str(&ct.admin_get("/api/v1/webhooks/gone")).unwrap();
    assert_eq!(w["health"]["state"], "healthy", "{w}");
    assert!(w["health"].get("disabled_reason").is_none(), "{w}");
}

#[test]
fn a_429_storm_backs_off_as_retry_after_asks_without_disabling_and_every_event_arrives() {
    let up = upstream::start();
    const STORM: usize = 4;
    let arrived: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let (t, a) = (arrived.clone(), accepted.clone());
    let rx = receiver::scripted(move |n, s| {
        t.lock().unwrap().push(Instant::now());
        let limited = n < STORM;
        if !limited {
            a.lock().unwrap().extend(native_ids(&s));
        }
        async move {
            if limited {
                reply(429, &[("Retry-After", "1")], "slow down")
            } else {
                reply(200, &[], "")
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    // A plain failure would be a dead letter at once, and failing for 300 ms would
    // disable the webhook: a storm of 429s over four seconds does neither.
    let o = Options::default().tail(&webhook(
        "limited",
        &rx.url("/"),
        "concurrency = 1\ndisable_after = \"300ms\"\n\
         [webhooks.retry]\nmax_attempts = 1\nschedule = [\"10ms\"]\njitter = 0.0",
    ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..5 {
        assert_eq!(ct.click(&format!("/r/storm-{i}"), ""), 302);
    }
    // While it backs off, health says until when and why.
    let mut shown = Value::Null;
    wait_until("the back-off shown", Duration::from_secs(10), || {
        shown = serde_json::from_str(&ct.admin_get("/api/v1/webhooks/limited")).unwrap();
        shown["health"]["backoff_until_ms"].is_u64()
    });
    assert!(
        shown["health"]["backoff_reason"]
            .as_str()
            .unwrap()
            .contains("429"),
        "{shown}"
    );
    assert_eq!(shown["health"]["state"], "healthy", "{shown}");
    wait_until("5 delivered", Duration::from_secs(30), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 5.0
    });
    let got: HashSet<String> = accepted.lock().unwrap().iter().cloned().collect();
    assert_eq!(got, stored_ids(&ct), "every event delivered");
    assert_eq!(ct.metric("clicktap_delivery_dead_total", ""), 0.0);
    assert_eq!(
        ct.metric("clicktap_delivery_disabled_total", ""),
        0.0,
        "never disabled"
    );
    assert_eq!(
        ct.metric("clicktap_delivery_webhook_state", r#"webhook="limited""#),
        0.0
    );
    assert_eq!(
        ct.metric("clicktap_delivery_attempts_total", r#"outcome="backoff""#),
        STORM as f64
    );
    assert_eq!(
        ct.metric("clicktap_delivery_attempts_total", r#"outcome="failure""#),
        0.0
    );
    // Retry-After: 1 was honoured: no request within a second of a 429.
    let times = arrived.lock().unwrap().clone();
    for (i, pair) in times.windows(2).take(STORM).enumerate() {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(950),
            "request {} came {gap:?} after a 429 with Retry-After: 1",
            i + 1
        );
    }
    // The delivery log tells back-offs from failures.
    let v: Value =
        serde_json::from_str(&ct.admin_get("/api/v1/deliveries?status=backoff")).unwrap();
    let backoffs = v["deliveries"].as_array().unwrap();
    assert!(!backoffs.is_empty(), "{v}");
    assert!(
        backoffs
            .iter()
            .all(|d| d["outcome"] == "backoff" && d["status"] == 429),
        "{v}"
    );
    let w: Value = serde_json::from_str(&ct.admin_get("/api/v1/webhooks/limited")).unwrap();
    assert!(w["health"].get("backoff_until_ms").is_none(), "{w}");
    assert!(w["health"]["last_error"].is_null(), "{w}");
}

#[test]
fn a_retry_after_beyond_max_backoff_waits_only_max_backoff() {
    let up = upstream::start();
    let arrived: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let t = arrived.clone();
    // A week as seconds, then as an HTTP date: both held to retry.max_backoff (1s).
    let rx = receiver::scripted(move |n, _| {
        t.lock().unwrap().push(Instant::now());
        async move {
            match n {
                0 => reply(503, &[("Retry-After", "604800")], ""),
                1 => reply(429, &[("Retry-After", "Fri, 31 Dec 2100 23:59:59 GMT")], ""),
                _ => reply(200, &[], ""),
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook(
        "capped",
        &rx.url("/"),
        "[webhooks.retry]\nmax_backoff = \"1s\"",
    ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/capped", ""), 302);
    wait_until("delivered", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 1.0
    });
    let times = arrived.lock().unwrap().clone();
    assert_eq!(times.len(), 3);
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            (Duration::from_millis(950)..Duration::from_secs(4)).contains(&gap),
            "{gap:?}"
        );
    }
    assert_eq!(
        ct.metric("clicktap_delivery_attempts_total", r#"outcome="backoff""#),
        2.0
    );
}
