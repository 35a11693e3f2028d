//! The admin API an operator works with: status, test events, replay by time range,
//! dead letters, the delivery log's filters, against the real binary.

mod common;

use common::receiver::{self, native_ids};
use common::{Clicktap, Options, reply, upstream, wait_until};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn webhook(id: &str, url: &str, extra: &str) -> String {
    format!("[[webhooks]]\nid = \"{id}\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n{extra}\n")
}

/// A request to the admin API with the token; returns the status and the JSON answer.
fn call(ct: &Clicktap, method: &str, path: &str, body: &str) -> (u16, Value) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        common::clicktap::TOKEN,
        body.len()
    );
    let raw = common::raw_exchange(ct.admin, req.as_bytes());
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn the_status_says_what_runs_on_which_file_and_how_far_behind_each_webhook_is() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook("main", &rx.url("/"), ""));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/s", ""), 302);
    // Delivered is counted a moment before the webhook's cursor moves past the event.
    wait_until("delivered and settled", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 1.0
            && call(&ct, "GET", "/api/v1/status", "").1["webhooks"][0]["lag"] == 0
    });
    let (status, s) = call(&ct, "GET", "/api/v1/status", "");
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["pid"], ct.child.id());
    let file = std::fs::read(&ct.config).unwrap();
    let hash: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&file)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(s["config"]["hash"], hash);
    assert_eq!(s["listeners"]["proxy"], ct.proxy.to_string());
    assert_eq!(s["listeners"]["admin"], ct.admin.to_string());
    assert_eq!(s["queue"]["depth"], 1);
    assert_eq!(s["queue"]["available"], true);
    assert_eq!(s["webhooks"][0]["id"], "main");
    assert_eq!(s["webhooks"][0]["lag"], 0);
    assert_eq!(s["webhooks"][0]["oldest_undelivered_age_ms"], Value::Null);
    assert!(s["uptime_ms"].as_u64().is_some());
}

#[test]
fn a_test_event_is_sent_now_signed_marked_and_never_stored() {
    let up = upstream::start();
    let rx = receiver::scripted(|_, _| async { reply(202, &[], "thanks, test") });
    let tly = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .tail(&webhook("native", &rx.url("/hook"), ""))
        .tail(&format!(
            "[[webhooks]]\nid = \"tly\"\nurl = \"{}\"\nformat = \"tly\"\nsecret = \"tly-key-1\"\n",
            tly.url("/t")
        ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let (status, answer) = call(&ct, "POST", "/api/v1/webhooks/native/test", "");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["delivered"], true);
    assert_eq!(answer["status"], 202);
    assert_eq!(answer["response"], "thanks, test");
    assert!(answer["latency_ms"].as_u64().is_some());
    let seen = rx.requests();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.headers["x-clicktap-test"], "true");
    let body = receiver::body_json(s);
    assert_eq!(body["kind"], "test");
    assert_eq!(body["id"], answer["event_id"]);
    assert_eq!(
        s.headers["webhook-id"],
        answer["message_id"].as_str().unwrap()
    );
    common::verify_standard_webhooks(SECRET, s);

    // A vendor format carries it in its own shape, with the marker header.
    let (status, answer) = call(&ct, "POST", "/api/v1/webhooks/tly/test", "");
    assert_eq!(status, 200, "{answer}");
    let t = &tly.requests()[0];
    assert_eq!(t.headers["x-clicktap-test"], "true");
    assert_eq!(t.headers["x-tly-key"], "tly-key-1");
    assert_eq!(receiver::body_json(t)["event"], "short_link.visited");
    // What was sent comes back, its key redacted.
    assert_eq!(answer["sent"]["headers"]["x-tly-key"], "[redacted]");
    assert!(!answer.to_string().contains("tly-key-1"), "{answer}");

    // Nothing of it was stored or counted; the delivery log keeps it, marked as a test.
    assert!(ct.events(10).is_empty());
    assert_eq!(ct.metric("clicktap_delivery_attempts_total", ""), 0.0);
    let log = ct.wait_deliveries("native", 1);
    assert_eq!(log["deliveries"].as_array().unwrap().len(), 1, "{log}");
    assert_eq!(log["deliveries"][0]["test"], true);
    assert_eq!(log["deliveries"][0]["seq"], 0);
    let (_, real) = call(
        &ct,
        "GET",
        "/api/v1/webhooks/native/deliveries?test=false",
        "",
    );
    assert_eq!(real["deliveries"], serde_json::json!([]));

    // A receiver that is down: the answer says why.
    let dead = common::free_port();
    let o2 = Options::default().tail(&webhook("down", &format!("http://127.0.0.1:{dead}/"), ""));
    let dir2 = tempfile::tempdir().unwrap();
    let ct2 = Clicktap::start(dir2.path(), up.addr, &o2);
    let (status, answer) = call(&ct2, "POST", "/api/v1/webhooks/down/test", "");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["delivered"], false);
    assert!(
        answer["error"].as_str().unwrap().contains("connect"),
        "{answer}"
    );
    assert_eq!(call(&ct, "POST", "/api/v1/webhooks/nope/test", "").0, 404);
}

#[test]
fn a_replay_sends_a_time_range_again_with_the_original_ids() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook("main", &rx.url("/"), ""));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..3 {
        assert_eq!(ct.click(&format!("/r/replay-{i}"), ""), 302);
        ct.wait_settled(i + 1);
    }
    wait_until("3 delivered", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 3.0
    });
    let events = ct.events(10);
    let first: Vec<(String, String)> = rx
        .requests()
        .iter()
        .map(|s| {
            (
                native_ids(s)[0].clone(),
                s.headers["webhook-id"].to_str().unwrap().to_string(),
            )
        })
        .collect();

    // Everything, by RFC 3339 range.
    let body = r#"{"since": "2000-01-01T00:00:00Z", "until": "2999-01-01T00:00:00Z"}"#;
    let (status, answer) = call(&ct, "POST", "/api/v1/webhooks/main/replay", body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["replayed"], 3);
    let again = rx.wait_for(6, Duration::from_secs(10));
    assert_eq!(again.len(), 6);
    let second: HashSet<(String, String)> = again[3..]
        .iter()
        .map(|s| {
            (
                native_ids(s)[0].clone(),
                s.headers["webhook-id"].to_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        second,
        first.into_iter().collect(),
        "the same events, the same message ids"
    );

    // Only the middle one, by Unix milliseconds.
    let at = |e: &Value| -> u64 {
        let t = humantime::parse_rfc3339(e["timestamp"].as_str().unwrap()).unwrap();
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
    };
    let middle = &events[1];
    let body = format!(r#"{{"since": {}, "until": {}}}"#, at(middle), at(middle));
    let (status, answer) = call(&ct, "POST", "/api/v1/webhooks/main/replay", &body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["replayed"], 1, "{answer}");
    let last = rx.wait_for(7, Duration::from_secs(10));
    assert_eq!(
        last.len(),
        7,
        "{}\n{}",
        ct.admin_get("/metrics"),
        ct.log_text()
    );
    assert_eq!(native_ids(&last[6]), [middle["id"].as_str().unwrap()]);

    // Bad requests say what is wrong.
    let (status, answer) = call(
        &ct,
        "POST",
        "/api/v1/webhooks/main/replay",
        r#"{"since": "soon"}"#,
    );
    assert_eq!(status, 400);
    assert!(
        answer["message"].as_str().unwrap().contains("since"),
        "{answer}"
    );
    let (status, answer) = call(
        &ct,
        "POST",
        "/api/v1/webhooks/main/replay",
        r#"{"since": 5, "until": 1}"#,
    );
    assert_eq!(status, 400, "a range that ends before it starts is refused");
    assert!(
        answer["message"].as_str().unwrap().contains("reversed"),
        "{answer}"
    );
    let (status, _) = call(&ct, "GET", "/api/v1/webhooks/main/replay", "");
    assert_eq!(status, 405);
}

#[test]
fn dead_letters_are_listed_replayed_one_by_one_and_purged() {
    let up = upstream::start();
    let accept = Arc::new(AtomicBool::new(false));
    let a = accept.clone();
    let rx = receiver::scripted(move |_, _| {
        let ok = a.load(Ordering::SeqCst);
        async move { reply(if ok { 200 } else { 500 }, &[], "") }
    });
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook(
        "dl",
        &rx.url("/"),
        "[webhooks.retry]\nmax_attempts = 1",
    ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..3 {
        assert_eq!(ct.click(&format!("/r/dead-{i}"), ""), 302);
    }
    wait_until("3 dead letters", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_dead_total", "") == 3.0
    });
    let (status, list) = call(&ct, "GET", "/api/v1/webhooks/dl/dead-letters", "");
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 3);
    let letters = list["dead_letters"].as_array().unwrap();
    let stored: HashSet<String> = ct
        .events(10)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    for d in letters {
        assert!(stored.contains(d["event_id"].as_str().unwrap()), "{d}");
        assert_eq!(d["attempts"], 1);
        assert!(d["last_error"].as_str().unwrap().contains("500"), "{d}");
    }
    // Paged by sequence.
    let after = letters[0]["seq"].as_u64().unwrap();
    let (_, page) = call(
        &ct,
        "GET",
        &format!("/api/v1/webhooks/dl/dead-letters?after={after}&limit=1"),
        "",
    );
    assert_eq!(page["dead_letters"].as_array().unwrap().len(), 1);
    assert_eq!(page["dead_letters"][0]["seq"], letters[1]["seq"]);

    // One replayed: delivered once the receiver accepts.
    accept.store(true, Ordering::SeqCst);
    let seq = letters[0]["seq"].as_u64().unwrap();
    let (status, answer) = call(
        &ct,
        "POST",
        &format!("/api/v1/webhooks/dl/dead-letters/{seq}/replay"),
        "",
    );
    assert_eq!(status, 200, "{answer}");
    wait_until(
        "the replayed one delivered",
        Duration::from_secs(10),
        || ct.metric("clicktap_delivery_delivered_total", "") == 1.0,
    );
    let last = rx.requests().pop().unwrap();
    assert_eq!(
        native_ids(&last),
        [letters[0]["event_id"].as_str().unwrap()]
    );
    let (status, _) = call(
        &ct,
        "POST",
        &format!("/api/v1/webhooks/dl/dead-letters/{seq}/replay"),
        "",
    );
    assert_eq!(status, 404, "no longer a dead letter");

    // One deleted, then the rest purged.
    let seq = letters[1]["seq"].as_u64().unwrap();
    assert_eq!(
        call(
            &ct,
            "DELETE",
            &format!("/api/v1/webhooks/dl/dead-letters/{seq}"),
            ""
        )
        .0,
        200
    );
    let (_, list) = call(&ct, "GET", "/api/v1/webhooks/dl/dead-letters", "");
    assert_eq!(list["total"], 1);
    let (status, answer) = call(&ct, "DELETE", "/api/v1/webhooks/dl/dead-letters", "");
    assert_eq!((status, answer["purged"].as_u64()), (200, Some(1)));
    let (_, list) = call(&ct, "GET", "/api/v1/webhooks/dl/dead-letters", "");
    assert_eq!(list["total"], 0);
    assert_eq!(
        call(&ct, "GET", "/api/v1/webhooks/dl/dead-letters/x/replay", "").0,
        400
    );
}

#[test]
fn the_delivery_log_is_filtered_by_webhook_and_status_newest_first() {
    let up = upstream::start();
    let good = receiver::ok();
    let bad = receiver::always(500);
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .tail(&webhook("good", &good.url("/"), ""))
        .tail(&webhook(
            "bad",
            &bad.url("/"),
            "[webhooks.retry]\nmax_attempts = 1",
        ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..3 {
        assert_eq!(ct.click(&format!("/r/log-{i}"), ""), 302);
    }
    ct.wait_deliveries("good", 3);
    ct.wait_deliveries("bad", 3);
    let list = |q: &str| -> Vec<Value> {
        let (status, v) = call(&ct, "GET", &format!("/api/v1/deliveries{q}"), "");
        assert_eq!(status, 200, "{v}");
        v["deliveries"].as_array().unwrap().clone()
    };
    let all = list("");
    assert_eq!(all.len(), 6);
    let times: Vec<u64> = all.iter().map(|d| d["at_ms"].as_u64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    assert!(list("?webhook=good").iter().all(|d| d["webhook"] == "good"));
    assert_eq!(list("?status=failure").len(), 3);
    assert!(
        list("?status=failure")
            .iter()
            .all(|d| d["webhook"] == "bad")
    );
    assert_eq!(list("?status=success").len(), 3);
    assert_eq!(list("?status=500").len(), 3);
    assert_eq!(list("?status=200&limit=2").len(), 2);
    let (status, v) = call(&ct, "GET", "/api/v1/deliveries?status=maybe", "");
    assert_eq!(status, 400);
    assert!(v["message"].as_str().unwrap().contains("status"), "{v}");
    let (_, v) = call(
        &ct,
        "GET",
        "/api/v1/webhooks/bad/deliveries?status=success",
        "",
    );
    assert_eq!(v["deliveries"], serde_json::json!([]));
    assert_eq!(call(&ct, "GET", "/api/v1/deliveries?limit=x", "").0, 400);
    assert_eq!(call(&ct, "DELETE", "/api/v1/deliveries", "").0, 405);
}
