//! The wall clock steps, forward a day and back a day, under a running clicktap, and
//! retries, filling batches and retention keep moving.
//!
//! The step is real as far as clicktap can tell: libfaketime (`LD_PRELOAD`) moves what
//! `clock_gettime(CLOCK_REALTIME)` answers, as an NTP correction or an operator would,
//! and leaves the monotonic clock alone (`FAKETIME_DONT_FAKE_MONOTONIC`). The offset
//! lives in a file the test rewrites; clicktap reads it again every second. One test
//! moves the monotonic clock too, forward only, as a day of running would: what is
//! bounded in time on that clock (an OAuth token's lifetime) ends.

mod common;

use common::receiver::{self, body_json};
use common::{Clicktap, Options, reply, upstream, wait_until};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The preload library of the Debian package `libfaketime`; the test fails without it.
fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("faketime/libfaketimeMT.so.1"))
        .chain([PathBuf::from("/usr/lib/faketime/libfaketimeMT.so.1")])
        .find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!(
            "libfaketime is not installed: these tests step clicktap's wall clock with it \
             (Debian/Ubuntu: apt-get install libfaketime)"
        )
    })
}

/// A clicktap whose wall clock the test sets, as an offset from the real one.
struct Stepped {
    ct: Clicktap,
    offset_file: PathBuf,
}

impl Stepped {
    fn start(dir: &Path, upstream: std::net::SocketAddr, o: &Options) -> Stepped {
        Stepped::start_at(dir, upstream, o, 0)
    }

    /// Starts clicktap with its wall clock `days` away from the real one.
    fn start_at(dir: &Path, upstream: std::net::SocketAddr, o: &Options, days: i64) -> Stepped {
        Stepped::start_clocks(dir, upstream, o, days, false)
    }

    /// Starts clicktap with its wall clock, and with `monotonic` its monotonic clock
    /// too, `days` away from the real ones.
    fn start_clocks(
        dir: &Path,
        upstream: std::net::SocketAddr,
        o: &Options,
        days: i64,
        monotonic: bool,
    ) -> Stepped {
        let offset_file = dir.join("faketime");
        std::fs::write(&offset_file, format!("{days:+}d\n")).unwrap();
        let lib = libfaketime();
        let mut env = vec![
            ("LD_PRELOAD", lib.to_str().unwrap()),
            ("FAKETIME_TIMESTAMP_FILE", offset_file.to_str().unwrap()),
            ("FAKETIME_CACHE_DURATION", "1"),
        ];
        if !monotonic {
            env.push(("FAKETIME_DONT_FAKE_MONOTONIC", "1"));
        }
        let ct = Clicktap::start_env(dir, upstream, o, &env);
        let s = Stepped { ct, offset_file };
        assert_eq!(
            s.offset_days(),
            days,
            "clicktap's clock starts {days:+} days off"
        );
        s
    }

    /// How far clicktap's wall clock stands from the real one, in whole days, read from
    /// the `Date` header of its admin listener's answer.
    fn offset_days(&self) -> i64 {
        let raw = common::raw_exchange(
            self.ct.admin,
            b"GET /healthz HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
        );
        let text = String::from_utf8_lossy(&raw);
        let date = text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("date").then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no Date header in {text:?}"));
        let theirs = http_date_secs(&date);
        let ours = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        ((theirs - ours) as f64 / 86_400.0).round() as i64
    }

    /// Sets the wall clock `days` away from the real one and waits until clicktap
    /// reads it so.
    fn step_to(&self, days: i64) {
        std::fs::write(&self.offset_file, format!("{days:+}d\n")).unwrap();
        wait_until(
            &format!("clicktap's wall clock to stand {days:+} days off"),
            Duration::from_secs(20),
            || self.offset_days() == days,
        );
    }
}

/// Seconds since the epoch of an HTTP date (`Mon, 07 Dec 2026 15:16:27 GMT`).
fn http_date_secs(v: &str) -> i64 {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])
    .unwrap_or_else(|| panic!("not an HTTP date: {v}"))
        + 1;
    let rfc3339 = format!("{}-{month:02}-{}T{}Z", parts[3], parts[1], parts[4]);
    humantime::parse_rfc3339(&rfc3339)
        .unwrap_or_else(|e| panic!("not an HTTP date: {v}: {e}"))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn hook(url: &str, extra: &str) -> String {
    format!("[[webhooks]]\nid = \"w\"\nurl = \"{url}\"\n{extra}\n")
}

/// A receiver failing twice and then recovering, as its requests arrive.
#[test]
fn a_retry_comes_within_its_delay_when_the_clock_steps_back_and_forward() {
    let up = upstream::start();
    let arrived: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = arrived.clone();
    let rx = receiver::scripted(move |n, _| {
        seen.lock().unwrap().push(Instant::now());
        async move {
            if n < 2 {
                reply(500, &[], "down")
            } else {
                reply(200, &[], "ok")
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&hook(
        &rx.url("/w"),
        "[webhooks.retry]\nmax_attempts = 5\nschedule = [\"10s\"]\njitter = 0.0",
    ));
    let s = Stepped::start(dir.path(), up.addr, &o);
    let retried = |n: f64| {
        wait_until(
            "the failure recorded as a retry",
            Duration::from_secs(30),
            || s.ct.metric("clicktap_delivery_retried_total", "") >= n,
        )
    };

    s.ct.click("/r/a", "");
    retried(1.0);
    // Recorded by the wall clock, that retry would be due a day from now.
    s.step_to(-1);
    let stepped_back = Instant::now();
    wait_until(
        "the retry after the clock stepped back a day",
        Duration::from_secs(60),
        || arrived.lock().unwrap().len() >= 2,
    );
    let first_retry = arrived.lock().unwrap()[1];
    assert!(
        first_retry > stepped_back,
        "the retry came before clicktap saw the step; the test proves nothing on a machine this slow"
    );

    retried(2.0);
    // And forward a day, back to the real time: the next retry keeps its delay too.
    s.step_to(0);
    wait_until(
        "the retry after the clock stepped forward a day",
        Duration::from_secs(60),
        || s.ct.metric("clicktap_delivery_delivered_total", "") >= 1.0,
    );
    let times = arrived.lock().unwrap().clone();
    assert_eq!(times.len(), 3, "one attempt and two retries");
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        // The delay is 10 s; a retry stepped forward by a day must still wait it out.
        assert!(gap >= Duration::from_secs(9), "a retry came early: {gap:?}");
    }
}

/// A due time written by one process keeps its meaning for the next, whose wall clock
/// stands a day back: the retry still comes within its delay.
#[test]
fn a_retry_recorded_before_a_restart_comes_within_its_delay_when_the_clock_stands_back() {
    let up = upstream::start();
    let rx = receiver::scripted(|n, _| async move {
        if n < 1 {
            reply(500, &[], "down")
        } else {
            reply(200, &[], "ok")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&hook(
        &rx.url("/w"),
        "[webhooks.retry]\nmax_attempts = 5\nschedule = [\"8s\"]\njitter = 0.0",
    ));
    let mut s = Stepped::start(dir.path(), up.addr, &o);
    s.ct.click("/r/a", "");
    wait_until(
        "the failure recorded as a retry",
        Duration::from_secs(30),
        || s.ct.metric("clicktap_delivery_retried_total", "") >= 1.0,
    );
    assert!(s.ct.stop().success());
    let s = Stepped::start_at(dir.path(), up.addr, &o, -1);
    wait_until(
        "the retry after a restart with the clock a day back",
        Duration::from_secs(60),
        || s.ct.metric("clicktap_delivery_delivered_total", "") >= 1.0,
    );
    assert_eq!(rx.requests().len(), 2, "one attempt and its retry");
}

#[test]
fn a_filling_batch_goes_after_its_max_wait_when_the_clock_steps() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&hook(
        &rx.url("/rb"),
        "format = \"rebrandly\"\nsecret = \"3b1c9f2e-6a4d-4c8e-9f1a-2b3c4d5e6f70\"\n\
         [webhooks.batch]\nmax_events = 100\nmax_wait = \"10s\"",
    ));
    let s = Stepped::start(dir.path(), up.addr, &o);
    let events = || -> usize {
        rx.requests()
            .iter()
            .map(|r| body_json(r)["data"].as_array().map_or(0, Vec::len))
            .sum()
    };

    s.ct.click("/r/a", "");
    s.ct.click("/r/b", "");
    s.ct.wait_settled(2);
    // By the wall clock, the two would now be waiting for a day to pass.
    s.step_to(-1);
    assert_eq!(
        events(),
        0,
        "the batch went before the step; too slow a machine"
    );
    wait_until(
        "the batch of two after the clock stepped back a day",
        Duration::from_secs(60),
        || events() >= 2,
    );

    s.ct.click("/r/c", "");
    s.ct.wait_settled(3);
    s.step_to(0);
    wait_until(
        "the batch after the clock stepped forward a day",
        Duration::from_secs(60),
        || events() >= 3,
    );
    assert_eq!(events(), 3);
}

#[test]
fn a_batch_captured_a_day_ahead_does_not_hold_retention_or_refuse_clicks() {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .queue("retention = \"20s\"")
        .queue("max_events = 4")
        .queue("when_full = \"drop_newest\"");
    let s = Stepped::start(dir.path(), up.addr, &o);
    let depth = || s.ct.metric("clicktap_queue_depth", "");

    s.ct.click("/r/before", "");
    s.ct.wait_settled(1);
    s.step_to(1);
    s.ct.click("/r/ahead", "");
    s.ct.wait_settled(2);
    s.step_to(0);
    s.ct.click("/r/after-1", "");
    s.ct.click("/r/after-2", "");
    s.ct.wait_settled(4);
    assert_eq!(depth(), 4.0, "the queue is full");
    s.ct.click("/r/refused", "");
    s.ct.wait_settled(5);
    assert_eq!(
        s.ct.metric("clicktap_queue_dropped_total", "reason=\"full\""),
        1.0
    );

    // Retention runs every 10 s and keeps events 20 s: every event goes, the one
    // captured a day ahead and those behind it included.
    wait_until(
        "retention to empty the queue",
        Duration::from_secs(60),
        || depth() == 0.0,
    );
    for i in 0..4 {
        s.ct.click(&format!("/r/new-{i}"), "");
    }
    s.ct.wait_settled(9);
    assert_eq!(
        s.ct.metric("clicktap_queue_dropped_total", "reason=\"full\""),
        1.0,
        "no new click refused"
    );
    assert_eq!(s.ct.metric("clicktap_queue_appended_total", ""), 8.0);
}

/// `disable_after` is an hour of failing, not an hour by the wall clock: a step of a
/// day forward between two failures does not disable the webhook.
#[test]
fn a_step_forward_does_not_disable_a_failing_webhook() {
    let up = upstream::start();
    let rx = receiver::always(500);
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&hook(
        &rx.url("/w"),
        "disable_after = \"1h\"\n[webhooks.retry]\nmax_attempts = 100\nschedule = [\"500ms\"]\njitter = 0.0",
    ));
    let s = Stepped::start(dir.path(), up.addr, &o);
    let state = || {
        s.ct.metric("clicktap_delivery_webhook_state", "webhook=\"w\"")
    };
    s.ct.click("/r/a", "");
    wait_until("the webhook alerting", Duration::from_secs(30), || {
        state() == 1.0
    });
    s.step_to(1);
    let before = rx.requests().len();
    wait_until(
        "two more failed attempts after the step",
        Duration::from_secs(30),
        || rx.requests().len() >= before + 2,
    );
    assert_eq!(state(), 1.0, "still alerting, not disabled");
}

/// After a step back, events captured later carry earlier times: a replay of a time
/// range still finds them.
#[test]
fn a_replay_by_time_finds_events_captured_after_the_clock_stepped_back() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&hook(&rx.url("/w"), ""));
    let s = Stepped::start(dir.path(), up.addr, &o);
    // Two or more before the step: a bisection on capture times then misses it.
    for i in 0..3 {
        s.ct.click(&format!("/r/before-{i}"), "");
    }
    wait_until(
        "the first clicks delivered",
        Duration::from_secs(30),
        || rx.requests().len() >= 3,
    );
    s.step_to(-1);
    s.ct.click("/r/after", "");
    wait_until(
        "the click after the step delivered",
        Duration::from_secs(30),
        || rx.requests().len() >= 4,
    );
    // The last click's capture time, as clicktap's clock read it: a day ago.
    let day_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 86_400_000;
    let answer = common::http_post(
        s.ct.admin,
        &format!(
            "/api/v1/webhooks/w/replay?since={}&until={}",
            day_ago - 600_000,
            day_ago + 600_000
        ),
    );
    let v: serde_json::Value = serde_json::from_str(&answer).expect(&answer);
    assert_eq!(v["replayed"], 1, "{answer}");
    wait_until("the replayed click", Duration::from_secs(30), || {
        rx.requests().len() >= 5
    });
    let path = |i: usize| body_json(&rx.requests()[i])["link"]["path"].clone();
    assert_eq!(path(3), "/r/after");
    assert_eq!(path(4), path(3), "the click captured after the step, again");
}

/// A token endpoint that says nothing of a token's lifetime: the token is kept at most
/// a day, so that a revoked or rotated credential is not used forever. Both clocks step
/// forward a day and an hour; the next delivery fetches a new token.
#[test]
fn an_oauth_token_without_expires_in_is_fetched_again_after_a_day() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let up = upstream::start();
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    let tokens = receiver::scripted(move |_, _| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            reply(
                200,
                &[("Content-Type", "application/json")],
                format!(r#"{{"access_token":"tok-{n}","token_type":"bearer"}}"#),
            )
        }
    });
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&format!(
        "[[webhooks]]\nid = \"w\"\nurl = \"{}\"\n[webhooks.auth]\n\
         type = \"oauth2_client_credentials\"\ntoken_url = \"{}\"\n\
         client_id = \"cid\"\nclient_secret = \"csecret\"\n",
        rx.url("/w"),
        tokens.url("/token")
    ));
    let s = Stepped::start_clocks(dir.path(), up.addr, &o, 0, true);
    let delivered = |n: f64| {
        wait_until("delivery", Duration::from_secs(30), || {
            s.ct.metric("clicktap_delivery_delivered_total", "") >= n
        })
    };
    s.ct.click("/r/a", "");
    delivered(1.0);
    s.ct.click("/r/b", "");
    delivered(2.0);
    assert_eq!(
        issued.load(Ordering::SeqCst),
        1,
        "the token is kept while fresh"
    );

    std::fs::write(&s.offset_file, "+25h\n").unwrap();
    wait_until(
        "clicktap's clocks to stand a day and an hour ahead",
        Duration::from_secs(20),
        || s.offset_days() == 1,
    );
    s.ct.click("/r/c", "");
    delivered(3.0);
    assert_eq!(
        issued.load(Ordering::SeqCst),
        2,
        "a token without expires_in is fetched again after a day"
    );
    let auth: Vec<String> = rx
        .requests()
        .iter()
        .filter_map(|r| {
            let v = r.headers.get("authorization")?;
            Some(v.to_str().ok()?.to_string())
        })
        .collect();
    assert_eq!(
        auth.last().map(String::as_str),
        Some("Bearer tok-2"),
        "{auth:?}"
    );
}
