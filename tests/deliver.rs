//! Delivery against real loopback receivers: retries, failures, health, restarts.

mod common;

use common::receiver::{self, native_ids};
use common::{Clicktap, Options, reply, upstream, wait_until};
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn webhook(id: &str, url: &str, extra: &str) -> String {
    format!("[[webhooks]]\nid = \"{id}\"\nurl = \"{url}\"\nformat = \"native\"\n{extra}\n")
}

#[test]
fn every_click_reaches_the_webhook_with_clicktap_headers() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook("main", &rx.url("/hook"), ""));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..20 {
        assert_eq!(ct.click(&format!("/r/{i}"), ""), 302);
    }
    let seen = rx.wait_for(20, Duration::from_secs(10));
    assert_eq!(seen.len(), 20);
    let stored: HashSet<String> = ct
        .events(100)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let got: HashSet<String> = seen.iter().flat_map(native_ids).collect();
    assert_eq!(got, stored);
    let r = &seen[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.uri.path(), "/hook");
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(
        r.headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("clicktap/")
    );
    assert!(
        r.headers["idempotency-key"]
            .to_str()
            .unwrap()
            .starts_with("msg_")
    );
    // The receiver records a request before it answers; clicktap counts it after.
    wait_until("20 counted delivered", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 20.0
    });
}

#[test]
fn failures_are_retried_until_the_receiver_recovers() {
    let up = upstream::start();
    // Fails the first three requests (500, a redirect, a 404), then accepts.
    let rx = receiver::scripted(|n, _| async move {
        match n {
            0 => reply(500, &[], "boom"),
            1 => reply(302, &[("Location", "https://elsewhere.example/")], ""),
            2 => reply(404, &[], "gone?"),
            _ => reply(204, &[], ""),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook(
        "flaky",
        &rx.url("/"),
        "[webhooks.retry]\nmax_attempts = 5\nschedule = [\"50ms\"]\njitter = 0.0",
    ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/flaky", ""), 302);
    let seen = rx.wait_for(4, Duration::from_secs(10));
    assert_eq!(seen.len(), 4);
    // Same message, same id, every attempt.
    let ids: HashSet<_> = seen
        .iter()
        .map(|s| s.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(ids.len(), 1);
    wait_until("delivered", Duration::from_secs(5), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 1.0
    });
    assert_eq!(
        ct.metric("clicktap_delivery_attempts_total", r#"outcome="failure""#),
        3.0
    );
    assert_eq!(ct.metric("clicktap_delivery_retried_total", ""), 3.0);
    // The delivery log has every attempt, newest first, the redirect named as a failure.
    let log = ct.wait_deliveries("flaky", 4);
    let attempts = log["deliveries"].as_array().unwrap();
    assert_eq!(attempts.len(), 4);
    assert_eq!(attempts[2]["status"], 302);
    assert!(
        attempts[2]["error"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed")
    );
    assert_eq!(attempts[3]["response"], "boom");
    assert_eq!(attempts[0]["attempt"], 4);
    assert_eq!(attempts[0]["status"], 204);
    assert_eq!(log["success_rate"], 0.25);
}

#[test]
fn the_last_failure_goes_to_dead_letters_and_can_be_replayed() {
    let up = upstream::start();
    let (rx, accept) = receiver::switchable(301);
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook(
        "dead",
        &rx.url("/"),
        "[webhooks.retry]\nmax_attempts = 2\nschedule = [\"10ms\"]",
    ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/d", ""), 302);
    wait_until("dead letter", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_dead_total", "") == 1.0
    });
    assert_eq!(rx.requests().len(), 2);
    accept.store(true, std::sync::atomic::Ordering::SeqCst);
    let out = common::http_post(ct.admin, "/api/v1/webhooks/dead/dead-letters/replay");
    assert!(out.contains("\"replayed\":1"), "{out}");
    wait_until("replayed delivery", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 1.0
    });
    assert_eq!(rx.requests().len(), 3);
}

#[test]
fn a_replayed_dead_letter_is_no_longer_dead_and_a_replay_says_what_was_delivered() {
    let up = upstream::start();
    let (rx, accept) = receiver::switchable(500);
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook(
        "dead",
        &rx.url("/"),
        "[webhooks.retry]\nmax_attempts = 1",
    ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..3 {
        assert_eq!(ct.click(&format!("/r/d-{i}"), ""), 302);
    }
    wait_until("3 dead letters", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_dead_total", "") == 3.0
    });
    let replay = || {
        ct.cli(&[
            "webhooks",
            "replay",
            "dead",
            "--since",
            "0",
            "--until",
            "99999999999999",
        ])
    };

    // Replayed while the receiver still fails: attempted, not delivered, and said so.
    let (code, out, err) = replay();
    assert_ne!(code, 0, "{out}{err}");
    assert!(out.contains("3 events put back in line"), "{out}");
    assert!(
        err.contains("0 of 3 delivered") && err.contains("3 failed again"),
        "{out}{err}"
    );
    assert!(!out.contains("sent"), "{out}");
    assert_eq!(rx.requests().len(), 6);

    // Replayed once it accepts: delivered, and no longer dead letters.
    accept.store(true, std::sync::atomic::Ordering::SeqCst);
    let (code, out, err) = replay();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("3 of 3 delivered"), "{out}");
    assert_eq!(rx.requests().len(), 9);
    let (_, out, _) = ct.cli(&["webhooks", "dead-letters", "dead"]);
    assert!(out.contains("0 in all"), "{out}");

    // Replaying dead letters now sends nothing again.
    let answer = common::http_post(ct.admin, "/api/v1/webhooks/dead/dead-letters/replay");
    assert!(answer.contains("\"scheduled\":0"), "{answer}");
    assert_eq!(
        rx.requests().len(),
        9,
        "a delivered event is not sent again"
    );
    assert_eq!(ct.metric("clicktap_delivery_delivered_total", ""), 3.0);
}

#[test]
fn retries_and_dead_letters_stay_within_their_byte_bound_and_new_events_wait() {
    let up = upstream::start();
    let rx = receiver::always(500);
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .delivery(r#"state_max_bytes = "64KiB""#)
        .tail(&webhook(
            "down",
            &rx.url("/"),
            "[webhooks.retry]\nmax_attempts = 100\nschedule = [\"1h\"]",
        ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..800 {
        assert_eq!(ct.click(&format!("/r/b-{i}"), ""), 302);
    }
    ct.wait_settled(800);
    wait_until("new events held back", Duration::from_secs(30), || {
        ct.metric("clicktap_delivery_held_total", r#"webhook="down""#) == 1.0
    });
    // Once held, nothing more is taken: the state stops within one turn's events
    // (64 here) of its bound, and the rest wait in the queue, counted as lag.
    let w: Value = serde_json::from_str(&ct.admin_get("/api/v1/webhooks/down")).unwrap();
    let bytes = w["state_bytes"].as_u64().unwrap();
    assert!(bytes >= 64 << 10, "{w}");
    assert!(bytes < (64 << 10) + 64 * 400, "{w}");
    assert_eq!(
        ct.metric("clicktap_delivery_state_bytes", r#"webhook="down""#),
        bytes as f64
    );
    let retries = w["retries"].as_u64().unwrap();
    assert!(w["lag"].as_u64().unwrap() + retries == 800, "{w}");
    assert!(retries < 800, "{w}");
    let sent = rx.requests().len();
    assert_eq!(
        sent as u64, retries,
        "each new event tried once, no more taken"
    );
    assert!(
        ct.log_text().contains("at their bound"),
        "{}",
        ct.log_text()
    );
}

#[test]
fn a_slow_receiver_times_out_and_a_429_waits_for_retry_after() {
    let up = upstream::start();
    let slow = receiver::slow(Duration::from_secs(3));
    let limited = receiver::scripted(|n, _| async move {
        if n == 0 {
            reply(429, &[("Retry-After", "1")], "")
        } else {
            reply(200, &[], "")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .tail(&webhook(
            "slow",
            &slow.url("/"),
            "timeout = \"200ms\"\n[webhooks.retry]\nmax_attempts = 1",
        ))
        .tail(&webhook(
            "limited",
            &limited.url("/"),
            "[webhooks.retry]\nschedule = [\"10ms\"]\njitter = 0.0",
        ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/t", ""), 302);
    wait_until("the timeout", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_dead_total", r#"webhook="slow""#) == 1.0
    });
    let log = ct.wait_deliveries("slow", 1);
    assert!(
        log["deliveries"][0]["error"]
            .as_str()
            .unwrap()
            .contains("timeout"),
        "{log}"
    );
    let seen = limited.wait_for(2, Duration::from_secs(10));
    assert_eq!(seen.len(), 2);
    // The delivery log is written after the answer arrives (within a second): wait for
    // the second attempt's entry rather than race it.
    let mut log = serde_json::Value::Null;
    wait_until(
        "both attempts in the delivery log",
        Duration::from_secs(5),
        || {
            log =
                serde_json::from_str(&ct.admin_get("/api/v1/webhooks/limited/deliveries")).unwrap();
            log["deliveries"].as_array().is_some_and(|d| d.len() >= 2)
        },
    );
    let at =
        |i: usize| humantime::parse_rfc3339(log["deliveries"][i]["at"].as_str().unwrap()).unwrap();
    // Newest first: the retry, then the 429.
    let gap = at(0).duration_since(at(1)).unwrap();
    assert!(
        gap >= Duration::from_millis(900),
        "retried after {gap:?} despite Retry-After: 1"
    );
}

#[test]
fn failing_webhooks_alert_then_disable_and_reactivate() {
    let up = upstream::start();
    let rx = receiver::always(500);
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook(
        "health",
        &rx.url("/"),
        "disable_after = \"1s\"\n[webhooks.retry]\nmax_attempts = 100\nschedule = [\"100ms\"]\njitter = 0.0",
    ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/h", ""), 302);
    wait_until("alerting", Duration::from_secs(5), || {
        ct.metric("clicktap_delivery_webhook_state", r#"webhook="health""#) == 1.0
    });
    wait_until("disabled", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_webhook_state", r#"webhook="health""#) == 2.0
    });
    // Disabled: no more attempts, the event kept.
    let attempts = rx.requests().len();
    assert_eq!(ct.click("/r/h2", ""), 302);
    ct.wait_settled(2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        rx.requests().len(),
        attempts,
        "a disabled webhook was attempted"
    );
    let list = ct.admin_get("/api/v1/webhooks");
    assert!(list.contains("\"state\":\"disabled\""), "{list}");
    // The state survives a restart.
    let mut ct = ct;
    assert!(ct.stop().success());
    let ct = Clicktap::start_with(ct.config.clone(), ct.proxy, ct.admin, dir.path());
    assert_eq!(
        ct.metric("clicktap_delivery_webhook_state", r#"webhook="health""#),
        2.0
    );
    // Reactivated, it takes up where it stopped: the second click gets attempted too.
    common::http_post(ct.admin, "/api/v1/webhooks/health/reactivate");
    wait_until("attempts resume", Duration::from_secs(10), || {
        rx.requests().len() > attempts + 1
    });
    let paths: HashSet<String> = rx.requests().iter().map(receiver::link_path).collect();
    assert!(paths.contains("/r/h2"));
}

#[test]
fn a_dead_endpoint_does_not_slow_a_healthy_one() {
    let up = upstream::start();
    let hang = receiver::slow(Duration::from_secs(30));
    let good = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .tail(&webhook(
            "hang",
            &hang.url("/"),
            "timeout = \"20s\"\nconcurrency = 1",
        ))
        .tail(&webhook("good", &good.url("/"), ""));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let started = Instant::now();
    for i in 0..50 {
        assert_eq!(ct.click(&format!("/r/{i}"), ""), 302);
    }
    let seen = good.wait_for(50, Duration::from_secs(10));
    assert_eq!(
        seen.len(),
        50,
        "the healthy webhook got {} of 50",
        seen.len()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        hang.requests().len(),
        1,
        "the hanging one is still on its first request"
    );
}

#[test]
fn kill_9_mid_delivery_then_restart_delivers_everything_at_least_once() {
    let up = upstream::start();
    let rx = receiver::slow(Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook("kill", &rx.url("/"), "concurrency = 1"));
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..100 {
        assert_eq!(ct.click(&format!("/r/{i}"), ""), 302);
    }
    ct.wait_settled(100);
    // A SIGKILL loses what was stored since the last flush (documented); this test is
    // about delivery, so it kills once everything is on disk.
    ct.wait_durable();
    let stored: HashSet<String> = ct
        .events(1000)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored.len(), 100);
    rx.wait_for(10, Duration::from_secs(10));
    ct.kill9();
    let before = rx.requests().len();
    assert!(
        before < 100,
        "everything was delivered before the kill; the test proves nothing"
    );
    let first_log = ct.log.clone();
    let ct = Clicktap::start_with(ct.config.clone(), ct.proxy, ct.admin, dir.path());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got: HashSet<String> = rx.requests().iter().flat_map(native_ids).collect();
        let missing: Vec<_> = stored.difference(&got).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of 100 never delivered after the restart ({} requests before the kill): {missing:?}\n\
             deliveries: {}\nmetrics:\n{}\nlog before the kill:\n{}\nlog after:\n{}",
            missing.len(),
            before,
            ct.admin_get("/api/v1/webhooks/kill/deliveries"),
            ct.admin_get("/metrics"),
            std::fs::read_to_string(&first_log).unwrap_or_default(),
            ct.log_text(),
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Redelivered events carry the message id they had before the kill.
    let mut by_event = std::collections::HashMap::new();
    for s in rx.requests() {
        let key = s.headers["idempotency-key"].to_str().unwrap().to_string();
        for id in native_ids(&s) {
            let prev = by_event.insert(id.clone(), key.clone());
            assert!(
                prev.is_none_or(|p| p == key),
                "event {id} changed message id"
            );
        }
    }
    drop(ct);
}

#[test]
fn rate_limit_spaces_requests_and_native_batches_carry_several_events() {
    let up = upstream::start();
    let limited = receiver::ok();
    let batched = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .tail(&webhook("limited", &limited.url("/"), "rate_limit = 10.0"))
        .tail(&webhook(
            "batched",
            &batched.url("/"),
            "[webhooks.batch]\nmax_events = 10\nmax_wait = \"200ms\"",
        ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let before_clicks = std::time::SystemTime::now();
    for i in 0..6 {
        assert_eq!(ct.click(&format!("/r/{i}"), ""), 302);
    }
    let log = ct.wait_deliveries("limited", 6);
    let last_answer = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| humantime::parse_rfc3339(d["at"].as_str().unwrap()).unwrap())
        .max()
        .unwrap();
    // The sixth request waits for the sixth slot, 500 ms after the first was sent. The
    // log's times are when answers arrived, so their spread shrinks when the first
    // answer is slow (a loaded machine); the clicks themselves came before the first send.
    let spread = last_answer
        .duration_since(before_clicks)
        .unwrap_or(Duration::ZERO);
    assert!(
        spread + Duration::from_millis(1) >= Duration::from_millis(500),
        "6 requests at 10/s answered within {spread:?} of the first click"
    );
    wait_until("batched delivery", Duration::from_secs(10), || {
        batched
            .requests()
            .iter()
            .map(|s| native_ids(s).len())
            .sum::<usize>()
            == 6
    });
    let first = receiver::body_json(&batched.requests()[0]);
    assert_eq!(first["webhook_id"], "batched");
    assert!(first["events"].is_array());
    assert!(batched.requests().len() < 6, "events were not batched");
}

/// `(comm, nice)` of each thread of a process, from /proc.
#[cfg(target_os = "linux")]
fn thread_nice(pid: u32) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let stat = std::fs::read_to_string(task.unwrap().path().join("stat")).unwrap();
        let (head, rest) = stat.rsplit_once(')').unwrap();
        let comm = head.split_once('(').unwrap().1.to_string();
        // Fields after the name start at the third, `state`; `nice` is the nineteenth.
        let nice = rest.split_whitespace().nth(16).unwrap().parse().unwrap();
        out.push((comm, nice));
    }
    out
}

#[cfg(target_os = "linux")]
#[test]
fn delivery_threads_yield_to_the_proxy_at_the_configured_nice_value() {
    let up = upstream::start();
    let rx = receiver::ok();
    for (round, (setting, want)) in [("", 10), ("nice = 3", 3)].into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let o = Options::default()
            .delivery(setting)
            .tail(&webhook("main", &rx.url("/hook"), ""));
        let mut ct = Clicktap::start(dir.path(), up.addr, &o);
        assert_eq!(ct.click("/r/nice", ""), 302);
        rx.wait_for(round + 1, Duration::from_secs(10));
        let threads = thread_nice(ct.child.id());
        let delivery: Vec<_> = threads
            .iter()
            .filter(|(c, _)| c.starts_with("clicktap-deliv"))
            .collect();
        assert!(!delivery.is_empty(), "delivery threads in {threads:?}");
        assert!(delivery.iter().all(|(_, n)| *n == want), "{threads:?}");
        let others: Vec<_> = threads
            .iter()
            .filter(|(c, _)| !c.starts_with("clicktap-deliv"))
            .collect();
        assert!(others.iter().all(|(_, n)| *n == 0), "{threads:?}");
        ct.stop();
    }
}
