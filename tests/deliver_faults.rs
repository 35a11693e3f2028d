//! Delivery when what lies outside clicktap misbehaves, and across stops and restarts:
//! every event is delivered, recorded for another attempt or dead-lettered with its
//! reason, never lost silently, and a stop is bounded whatever receivers do.

mod common;

use common::receiver::{self, native_ids};
use common::{Clicktap, Options, reply, upstream, wait_until};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn webhook(id: &str, url: &str, extra: &str) -> String {
    format!("[[webhooks]]\nid = \"{id}\"\nurl = \"{url}\"\nformat = \"native\"\n{extra}\n")
}

fn oauth(id: &str, url: &str, token_url: &str, extra: &str) -> String {
    format!(
        "[[webhooks]]\nid = \"{id}\"\nurl = \"{url}\"\n{extra}\n[webhooks.auth]\ntype = \"oauth2_client_credentials\"\ntoken_url = \"{token_url}\"\nclient_id = \"cid\"\nclient_secret = \"csecret\"\n"
    )
}

/// The longest a stop may take with the harness's settings: `proxy.grace_period` 1 s,
/// `proxy.shutdown_timeout` 1 s, `delivery.stop_timeout` as set, the margin of docs/operations.md ("Stopping and upgrading")
/// of 2 s, and room for a loaded machine.
fn stop_bound(stop_timeout: Duration) -> Duration {
    Duration::from_secs(1 + 1 + 2 + 5) + stop_timeout
}

#[test]
fn a_token_that_claims_never_to_expire_does_not_stop_delivery() {
    let up = upstream::start();
    let tokens = receiver::scripted(|_, _| async {
        reply(
            200,
            &[("Content-Type", "application/json")],
            r#"{"access_token":"t","expires_in":18446744073709551615}"#,
        )
    });
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&oauth("forever", &rx.url("/"), &tokens.url("/token"), ""));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..3 {
        assert_eq!(ct.click(&format!("/r/{i}"), ""), 302);
    }
    wait_until("3 delivered", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 3.0
    });
    assert_eq!(tokens.requests().len(), 1, "the token is cached");
    assert!(
        rx.requests()
            .iter()
            .all(|s| s.headers["authorization"] == "Bearer t")
    );
}

#[test]
fn a_hanging_token_endpoint_fails_attempts_in_time_and_does_not_hold_the_stop() {
    let up = upstream::start();
    let tokens = receiver::slow(Duration::from_secs(3600));
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let extra = "timeout = \"300ms\"\n[webhooks.retry]\nmax_attempts = 100\nschedule = [\"100ms\"]\njitter = 0.0";
    let o = Options::default()
        .delivery(r#"stop_timeout = "500ms""#)
        .tail(&oauth("hang", &rx.url("/"), &tokens.url("/token"), extra));
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/t", ""), 302);
    wait_until("failed attempts", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_attempts_total", r#"outcome="failure""#) >= 2.0
    });
    let log = ct.wait_deliveries("hang", 1);
    let error = log["deliveries"][0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("token endpoint"), "{error}");
    assert!(!error.contains("csecret"), "{error}");
    assert_eq!(
        ct.metric("clicktap_delivery_webhook_state", r#"webhook="hang""#),
        1.0,
        "alerting"
    );
    // Token fetches are still hanging (one per retry); the stop does not wait for them.
    let started = Instant::now();
    let status = ct.stop();
    let took = started.elapsed();
    assert!(status.success(), "{status}:\n{}", ct.log_text());
    assert!(
        took < stop_bound(Duration::from_millis(500)),
        "stopped after {took:?}:\n{}",
        ct.log_text()
    );
    assert!(rx.requests().is_empty());
}

#[test]
fn a_stop_records_attempts_in_flight_as_retries_sent_again_after_the_restart() {
    let up = upstream::start();
    let accept = Arc::new(AtomicBool::new(false));
    let a = accept.clone();
    // Hangs until told to accept: every first attempt is still in flight at the stop.
    let rx = receiver::scripted(move |_, _| {
        let ok = a.load(Ordering::SeqCst);
        async move {
            if !ok {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            reply(200, &[], "")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .delivery(r#"stop_timeout = "500ms""#)
        .tail(&webhook(
            "held",
            &rx.url("/"),
            "timeout = \"60s\"\nconcurrency = 4",
        ));
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..3 {
        assert_eq!(ct.click(&format!("/r/held-{i}"), ""), 302);
    }
    // A turn waits for its requests: the clicks that came after the first may still
    // be in the queue, unread. Either way none is lost.
    let first = rx.wait_for(1, Duration::from_secs(10));
    assert!(!first.is_empty(), "a request in flight");
    let started = Instant::now();
    let status = ct.stop();
    let took = started.elapsed();
    assert!(status.success(), "{status}:\n{}", ct.log_text());
    assert!(
        took < stop_bound(Duration::from_millis(500)),
        "stopped after {took:?}"
    );
    assert!(
        ct.log_text().contains("cut short"),
        "the stop says what it did:\n{}",
        ct.log_text()
    );
    let in_flight = rx.requests().len();

    accept.store(true, Ordering::SeqCst);
    let ct = Clicktap::start_with(ct.config.clone(), ct.proxy, ct.admin, dir.path());
    wait_until("3 delivered", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 3.0
    });
    let all = rx.requests();
    assert_eq!(
        all.len(),
        in_flight + 3,
        "each event sent once after the restart"
    );
    let keys = |list: &[common::server::Seen]| -> HashSet<String> {
        list.iter()
            .map(|s| s.headers["idempotency-key"].to_str().unwrap().to_string())
            .collect()
    };
    assert!(
        keys(&all[..in_flight]).is_subset(&keys(&all[in_flight..])),
        "what was cut short is sent again with the same message ids"
    );
    // The interrupted attempts are in the delivery log with their reason.
    let log = ct.wait_deliveries("held", in_flight + 3);
    let reasons: Vec<String> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["error"].as_str().map(str::to_string))
        .collect();
    assert_eq!(reasons.len(), in_flight, "{log}");
    assert!(
        reasons.iter().all(|r| r.contains("cut short by a stop")),
        "{reasons:?}"
    );
}

#[test]
fn a_failed_batch_is_retried_as_the_same_batch_with_the_same_message_id() {
    let up = upstream::start();
    let rx = receiver::scripted(|n, _| async move {
        if n == 0 {
            reply(500, &[], "")
        } else {
            reply(200, &[], "")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    // The default jitter: each event's retry time would differ if each had its own.
    let extra = "secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n[webhooks.batch]\nmax_events = 5\nmax_wait = \"5s\"\n[webhooks.retry]\nschedule = [\"300ms\"]";
    let o = Options::default().tail(&webhook("batch", &rx.url("/"), extra));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..5 {
        assert_eq!(ct.click(&format!("/r/b{i}"), ""), 302);
    }
    wait_until("delivered", Duration::from_secs(15), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 5.0
    });
    let seen = rx.requests();
    assert_eq!(seen.len(), 2, "one failed batch, one retry of it");
    let id = |i: usize| seen[i].headers["webhook-id"].to_str().unwrap().to_string();
    assert_eq!(id(0), id(1));
    let events = |i: usize| native_ids(&seen[i]).into_iter().collect::<HashSet<_>>();
    assert_eq!(events(0).len(), 5);
    assert_eq!(events(0), events(1));
}

#[test]
fn an_event_a_filter_passes_over_is_counted_once_while_a_batch_fills() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let extra = "[webhooks.filter]\nkinds = [\"human\"]\n[webhooks.batch]\nmax_events = 10\nmax_wait = \"1s\"";
    let o = Options::default().tail(&webhook("people", &rx.url("/"), extra));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/bot", "User-Agent: curl/8.5.0\r\n"), 302);
    assert_eq!(ct.click("/r/person", common::BROWSER), 302);
    wait_until(
        "the person's click delivered",
        Duration::from_secs(10),
        || ct.metric("clicktap_delivery_delivered_total", "") == 1.0,
    );
    // Counted when the cursor passes the bot's click, just after the delivery.
    wait_until("the cursor past both", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_filtered_total", "") >= 1.0
    });
    assert_eq!(ct.metric("clicktap_delivery_filtered_total", ""), 1.0);
}

#[test]
fn a_webhook_removed_and_added_again_starts_afresh() {
    let up = upstream::start();
    let failing = receiver::always(500);
    let dir = tempfile::tempdir().unwrap();
    let hook = webhook(
        "again",
        &failing.url("/"),
        "[webhooks.retry]\nmax_attempts = 1",
    );
    let mut ct = Clicktap::start(dir.path(), up.addr, &Options::default().tail(&hook));
    assert_eq!(ct.click("/r/x", ""), 302);
    wait_until("a dead letter", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_dead_total", "") == 1.0
    });
    assert!(
        ct.admin_get("/api/v1/webhooks")
            .contains("\"state\":\"alerting\"")
    );
    assert!(ct.stop().success());

    // Removed: its state goes.
    let mut ct = Clicktap::start(dir.path(), up.addr, &Options::default());
    assert!(
        ct.log_text().contains("no longer configured"),
        "{}",
        ct.log_text()
    );
    assert!(ct.stop().success());

    // Added again: a new webhook that happens to have the old id.
    let rx = receiver::ok();
    let hook = webhook("again", &rx.url("/"), "");
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().tail(&hook));
    let list: serde_json::Value = serde_json::from_str(&ct.admin_get("/api/v1/webhooks")).unwrap();
    let w = &list["webhooks"][0];
    assert_eq!(w["health"]["state"], "healthy", "{list}");
    assert_eq!(w["health"]["last_error"], serde_json::Value::Null, "{list}");
    assert_eq!(w["dead_letters"], 0, "{list}");
    assert_eq!(ct.deliveries("again")["deliveries"], serde_json::json!([]));
}

#[test]
fn cursors_reach_the_disk_without_new_clicks_to_flush_them() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook("durable", &rx.url("/"), ""));
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/first", ""), 302);
    wait_until("delivered", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 1.0
    });
    // No click follows: delivery itself must put its cursor on disk. The cursor has
    // moved once the webhook's lag reads 0; it is on disk once no write waits.
    wait_until("the cursor past the event", Duration::from_secs(10), || {
        let list: serde_json::Value =
            serde_json::from_str(&ct.admin_get("/api/v1/webhooks")).unwrap();
        list["webhooks"][0]["lag"] == 0
    });
    wait_until("state on disk", Duration::from_secs(10), || {
        let m = ct.admin_get("/metrics");
        m.contains("clicktap_queue_unflushed_writes ")
            && common::clicktap::metric_in(&m, "clicktap_queue_unflushed_writes", "") == 0.0
            && common::clicktap::metric_in(&m, "clicktap_queue_unflushed_events", "") == 0.0
    });
    ct.kill9();

    let ct = Clicktap::start_with(ct.config.clone(), ct.proxy, ct.admin, dir.path());
    assert_eq!(ct.click("/r/second", ""), 302);
    wait_until("the second delivered", Duration::from_secs(10), || {
        rx.requests()
            .iter()
            .any(|s| receiver::body_json(s)["link"]["path"] == "/r/second")
    });
    wait_until(
        "the restart's deliveries counted",
        Duration::from_secs(10),
        || ct.metric("clicktap_delivery_delivered_total", "") >= (rx.requests().len() - 1) as f64,
    );
    let paths: Vec<String> = rx.requests().iter().map(receiver::link_path).collect();
    assert_eq!(
        paths,
        ["/r/first", "/r/second"],
        "the first was not sent again"
    );
}
