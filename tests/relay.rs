//! `clicktap relay` against real nats-server 2.9.10 processes (JetStream, stores in
//! temporary directories, loopback only): sidecars (`clicktap run` with a NATS sink)
//! publish every click, relays deliver the webhooks from the stream to real receivers,
//! splitting the work; a relay killed, a receiver failing, a server of a three-server
//! cluster killed, NATS stopped and started again, and a consumer removed lose no click.

mod common;
#[path = "common/nats.rs"]
mod nats;

use common::receiver::{self, native_ids};
use common::relay::Relay;
use common::server::{Seen, TestServer, reply};
use common::{Clicktap, Options, upstream, wait_until};
use nats::Nats;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What every test on one NATS server starts with: its directory, the server, its URL
/// list and the shortener.
struct Fleet {
    dir: tempfile::TempDir,
    nats: Nats,
    urls: Vec<String>,
    up: TestServer,
}

impl Fleet {
    fn start() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let nats = Nats::start(dir.path());
        let urls = vec![nats.url()];
        Fleet {
            dir,
            nats,
            urls,
            up: upstream::start(),
        }
    }
}

/// A `[[sinks]]` table publishing into the stream CLICKS on `urls`.
fn sink(urls: &[String], replicas: usize) -> String {
    format!(
        "[[sinks]]\nid = \"fleet\"\ntype = \"nats\"\nurls = {urls:?}\nsubject = \"clicks.{{link.host}}\"\n\
         connect_timeout = \"1s\"\npublish_timeout = \"2s\"\nmax_backoff = \"500ms\"\n\
         [sinks.stream]\nname = \"CLICKS\"\nsubjects = [\"clicks.>\"]\nreplicas = {replicas}\n"
    )
}

/// A `[relay]` table on `urls` with `extra` lines (which replace the defaults of the
/// same keys), then `webhooks`.
fn relay(urls: &[String], extra: &str, webhooks: &str) -> String {
    let defaults = [
        "connect_timeout = \"1s\"",
        "request_timeout = \"2s\"",
        "max_backoff = \"500ms\"",
        "stop_timeout = \"2s\"",
        "ack_wait = \"3s\"",
    ];
    let key = |l: &str| l.split('=').next().unwrap_or("").trim().to_string();
    let own: Vec<String> = extra.lines().map(key).collect();
    let lines: Vec<&str> = defaults
        .into_iter()
        .filter(|d| !own.contains(&key(d)))
        .collect();
    format!(
        "[relay]\nurls = {urls:?}\nstream = \"CLICKS\"\n{}\n{extra}\n{webhooks}",
        lines.join("\n")
    )
}

/// A native webhook to `rx` with `extra` lines.
fn hook(id: &str, rx: &TestServer, extra: &str) -> String {
    format!(
        "[[webhooks]]\nid = \"{id}\"\nurl = \"http://{}/hook\"\ntimeout = \"1s\"\nconcurrency = 4\n\
         retry.jitter = 0.0\n{extra}\n",
        rx.addr
    )
}

/// A sidecar in `dir/name` publishing into the stream, once its sink publishes.
fn sidecar(dir: &Path, name: &str, up: std::net::SocketAddr, sink: &str) -> Clicktap {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let ct = Clicktap::start(&d, up, &Options::default().tail(sink));
    wait_until("the sink publishing", Duration::from_secs(30), || {
        let s: serde_json::Value = serde_json::from_str(&ct.admin_get("/api/v1/status")).unwrap();
        s["sinks"][0]["state"] == "publishing"
    });
    ct
}

/// The ids of the events a sidecar stored.
fn stored_ids(ct: &Clicktap) -> HashSet<String> {
    ct.events(1_000_000)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// How many times the receiver got each event id.
fn delivered(rx: &TestServer) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for s in rx.requests() {
        for id in native_ids(&s) {
            *out.entry(id).or_default() += 1;
        }
    }
    out
}

/// Waits until the receiver got every one of `ids` at least once.
fn wait_delivered(
    rx: &TestServer,
    ids: &HashSet<String>,
    within: Duration,
    logs: &dyn Fn() -> String,
) {
    let deadline = Instant::now() + within;
    loop {
        let got = delivered(rx);
        let missing: Vec<&String> = ids.iter().filter(|i| !got.contains_key(*i)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} clicks not delivered within {within:?}:\n{}",
            missing.len(),
            ids.len(),
            logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn clicks(ct: &Clicktap, prefix: &str, n: usize) {
    for i in 0..n {
        assert_eq!(ct.click(&format!("GET /r/{prefix}{i}"), ""), 302);
    }
}

fn logs(relays: &[&Relay]) -> String {
    relays
        .iter()
        .map(|r| format!("--- {}\n{}", r.log.display(), r.log_text()))
        .collect()
}

#[test]
fn two_sidecars_and_two_relays_deliver_every_click_and_split_the_work() {
    let Fleet {
        dir,
        nats: _nats,
        urls,
        up,
    } = Fleet::start();
    let rx = receiver::ok();
    let a = sidecar(dir.path(), "a", up.addr, &sink(&urls, 1));
    let b = sidecar(dir.path(), "b", up.addr, &sink(&urls, 1));
    let body = relay(&urls, "", &hook("all", &rx, ""));
    let r1 = Relay::start(dir.path(), "r1", &body);
    let r2 = Relay::start(dir.path(), "r2", &body);
    for i in 0..100 {
        assert_eq!(a.click(&format!("GET /r/a{i}"), ""), 302);
        assert_eq!(b.click(&format!("GET /r/b{i}"), ""), 302);
    }
    a.wait_settled(100);
    b.wait_settled(100);
    let mut ids = stored_ids(&a);
    ids.extend(stored_ids(&b));
    assert_eq!(ids.len(), 200, "every click of both sidecars stored");
    wait_delivered(&rx, &ids, Duration::from_secs(60), &|| logs(&[&r1, &r2]));
    let got = delivered(&rx);
    assert_eq!(
        got.keys().cloned().collect::<HashSet<_>>(),
        ids,
        "only the clicks of the sidecars"
    );
    // The sidecars, with a sink and no webhook, delivered nothing themselves.
    for ct in [&a, &b] {
        assert_eq!(ct.metric("clicktap_delivery_attempts_total", ""), 0.0);
    }
    let (d1, d2) = (r1.settled("delivered"), r2.settled("delivered"));
    assert!(
        d1 >= 1.0 && d2 >= 1.0,
        "both relays delivered: {d1} and {d2}"
    );
    assert!(d1 + d2 >= 200.0, "{d1} + {d2}");
    // The same consumer for both, named after the webhook.
    assert!(
        r1.log_text().contains("consumer=clicktap-all"),
        "{}",
        r1.log_text()
    );
    // Sent as a sidecar sends: with the idempotency key receivers deduplicate by.
    for s in rx.requests() {
        assert!(s.headers.get("idempotency-key").is_some());
    }
}

#[test]
fn a_relay_killed_mid_stream_hands_its_messages_to_the_other_after_ack_wait() {
    let Fleet {
        dir,
        nats: _nats,
        urls,
        up,
    } = Fleet::start();
    // Slow enough that a relay always has attempts in flight.
    let (rx, arrivals) = slow_recorded(Duration::from_millis(300));
    let a = sidecar(dir.path(), "a", up.addr, &sink(&urls, 1));
    let body = relay(&urls, "ack_wait = \"2s\"", &hook("all", &rx, ""));
    let mut r1 = Relay::start(dir.path(), "r1", &body);
    let r2 = Relay::start(dir.path(), "r2", &body);
    clicks(&a, "k", 80);
    a.wait_settled(80);
    let ids = stored_ids(&a);
    assert_eq!(ids.len(), 80);
    wait_until("the relays under way", Duration::from_secs(30), || {
        r1.settled("delivered") >= 5.0
    });
    // Killed with attempts in flight: the receiver has their requests, the stream has
    // no settling of them.
    r1.kill9();
    let killed = Instant::now();
    wait_delivered(&rx, &ids, Duration::from_secs(60), &|| logs(&[&r2]));
    // The attempts in flight at the kill were sent again by the other relay, after
    // ack_wait (2s), not after the retry schedule's first step (5s by default).
    let arrivals = arrivals.lock().unwrap().clone();
    let again: Vec<Duration> = arrivals
        .iter()
        .enumerate()
        .filter(|(i, (_, id))| arrivals[..*i].iter().any(|(_, seen)| seen == id))
        .map(|(_, (at, _))| at.saturating_duration_since(killed))
        .collect();
    assert!(!again.is_empty(), "no attempt was in flight at the kill");
    for d in &again {
        assert!(
            *d >= Duration::from_millis(1500) && *d < Duration::from_millis(4800),
            "sent again {d:?} after the kill: {again:?}"
        );
    }
    assert_eq!(r2.settled("dead"), 0.0);
}

/// When each event id came to a receiver, in order.
type Arrivals = Arc<Mutex<Vec<(Instant, String)>>>;

/// A receiver that answers 200 after `delay` and records when each event id came.
fn slow_recorded(delay: Duration) -> (TestServer, Arrivals) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let a = arrivals.clone();
    let rx = receiver::scripted(move |_, s: Seen| {
        for id in native_ids(&s) {
            a.lock().unwrap().push((Instant::now(), id));
        }
        async move {
            tokio::time::sleep(delay).await;
            reply(200, &[], "ok")
        }
    });
    (rx, arrivals)
}

/// A receiver that records when each request came and answers `fail` to the first
/// `failures` of them, 200 after.
fn recovering(fail: u16, failures: usize) -> (TestServer, Arc<Mutex<Vec<Instant>>>) {
    let times = Arc::new(Mutex::new(Vec::new()));
    let t = times.clone();
    let rx = receiver::scripted(move |n, _: Seen| {
        t.lock().unwrap().push(Instant::now());
        async move {
            if n < failures {
                reply(fail, &[], "down")
            } else {
                reply(200, &[], "ok")
            }
        }
    });
    (rx, times)
}

#[test]
fn a_failing_receiver_is_retried_on_the_schedule_and_one_that_always_fails_gets_a_dead_letter() {
    let Fleet {
        dir,
        nats,
        urls,
        up,
    } = Fleet::start();
    let (flaky, times) = recovering(500, 2);
    let down = receiver::always(500);
    let a = sidecar(dir.path(), "a", up.addr, &sink(&urls, 1));
    let hooks = format!(
        "{}{}",
        hook(
            "flaky",
            &flaky,
            "retry.max_attempts = 4\nretry.schedule = [\"500ms\", \"1s\", \"1s\"]"
        ),
        hook(
            "down",
            &down,
            "retry.max_attempts = 2\nretry.schedule = [\"300ms\"]"
        )
    );
    let r = Relay::start(dir.path(), "r", &relay(&urls, "", &hooks));
    clicks(&a, "f", 1);
    a.wait_settled(1);
    let ids = stored_ids(&a);
    // Two failures, then the receiver recovers: the third attempt is delivered.
    let flaky_delivered = || {
        r.metric(
            "clicktap_relay_messages_total",
            "outcome=\"delivered\",webhook=\"flaky\"",
        )
    };
    wait_until(
        "the third attempt delivered",
        Duration::from_secs(20),
        || flaky_delivered() >= 1.0,
    );
    assert_eq!(
        native_ids(&flaky.requests()[2]),
        Vec::from_iter(ids.clone())
    );
    let t = times.lock().unwrap().clone();
    assert_eq!(t.len(), 3, "three attempts: {t:?}");
    let gaps: Vec<Duration> = t.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps[0] >= Duration::from_millis(450),
        "first retry after 500ms: {gaps:?}"
    );
    assert!(
        gaps[1] >= Duration::from_millis(950),
        "second retry after 1s: {gaps:?}"
    );
    assert!(
        gaps[1] < Duration::from_secs(3),
        "not left to ack_wait: {gaps:?}"
    );
    assert_eq!(
        r.metric(
            "clicktap_relay_messages_total",
            "outcome=\"retried\",webhook=\"flaky\""
        ),
        2.0
    );
    assert_eq!(flaky_delivered(), 1.0);

    // The receiver that always fails: two attempts, then a dead letter with its reason.
    wait_until("the dead letter", Duration::from_secs(20), || {
        nats.count("CLICKS_DEAD") >= 1
    });
    assert_eq!(down.requests().len(), 2, "max_attempts = 2");
    let dead = nats.read_all("CLICKS_DEAD");
    assert_eq!(dead.len(), 1, "{dead:?}");
    let down_dead: Vec<_> = dead
        .iter()
        .filter(|d| d.subject == "CLICKS_DEAD.down")
        .collect();
    assert_eq!(down_dead.len(), 1, "{dead:?}");
    let letter = &down_dead[0].event;
    assert_eq!(letter["webhook"], "down");
    assert_eq!(letter["attempts"], 2);
    assert_eq!(letter["stream"], "CLICKS");
    assert!(
        letter["reason"].as_str().unwrap().contains("answered 500"),
        "{letter}"
    );
    assert!(
        ids.contains(letter["event"]["id"].as_str().unwrap()),
        "{letter}"
    );
    assert_eq!(
        r.metric(
            "clicktap_relay_messages_total",
            "outcome=\"dead\",webhook=\"down\""
        ),
        1.0
    );
    assert!(r.log_text().contains("dead letter"), "{}", r.log_text());
    assert_eq!(r.settled("unsettled"), 0.0, "every message settled");
}

/// `clicktap relay --replay-dead <webhook>` on a relay's file: exit code and output.
fn replay_dead(r: &Relay, webhook: &str) -> (i32, String) {
    let out = std::process::Command::new(common::clicktap::bin())
        .args(["relay", "--config"])
        .arg(&r.config)
        .args(["--replay-dead", webhook])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn dead_letters_are_replayed_to_a_receiver_back_and_removed_once_delivered() {
    let Fleet {
        dir,
        nats,
        urls,
        up,
    } = Fleet::start();
    let (rx, accept) = receiver::switchable(500);
    let a = sidecar(dir.path(), "a", up.addr, &sink(&urls, 1));
    let r = Relay::start(
        dir.path(),
        "r",
        &relay(&urls, "", &hook("later", &rx, "retry.max_attempts = 1")),
    );
    clicks(&a, "l", 3);
    a.wait_settled(3);
    let ids = stored_ids(&a);
    wait_until("three dead letters", Duration::from_secs(20), || {
        nats.count("CLICKS_DEAD") >= 3
    });
    // Still failing: each one is tried, and kept.
    let (code, out) = replay_dead(&r, "later");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("0 delivered") && out.contains("3 failed again (kept)"),
        "{out}"
    );
    assert_eq!(nats.count("CLICKS_DEAD"), 3);
    // Back: delivered, as a relay sends them (the same events, byte for byte), removed.
    accept.store(true, std::sync::atomic::Ordering::SeqCst);
    let before = rx.requests().len();
    let (code, out) = replay_dead(&r, "later");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 delivered"), "{out}");
    assert_eq!(nats.count("CLICKS_DEAD"), 0);
    let replayed: HashSet<String> = rx.requests()[before..]
        .iter()
        .flat_map(native_ids)
        .collect();
    assert_eq!(replayed, ids);
    let reqs = rx.requests();
    for again in &reqs[before..] {
        let first = reqs[..before]
            .iter()
            .find(|s| native_ids(s) == native_ids(again))
            .unwrap();
        assert_eq!(
            first.body, again.body,
            "the event as the relay first sent it"
        );
    }
    // A webhook the file does not have: a configuration problem.
    let (code, out) = replay_dead(&r, "nope");
    assert_eq!(code, 2, "{out}");
}

#[test]
fn a_dead_letter_stream_that_cannot_take_dead_letters_stops_the_relay_saying_why() {
    let Fleet {
        dir,
        nats,
        urls,
        up,
    } = Fleet::start();
    let rx = receiver::ok();
    let _a = sidecar(dir.path(), "a", up.addr, &sink(&urls, 1));
    nats.create_stream(async_nats::jetstream::stream::Config {
        name: "CLICKS_DEAD".into(),
        subjects: vec!["elsewhere.>".into()],
        ..Default::default()
    });
    let mut r = Relay::spawn(dir.path(), "r", &relay(&urls, "", &hook("all", &rx, "")));
    wait_until("the refusal logged", Duration::from_secs(20), || {
        r.log_text()
            .contains("does not take the subject \"CLICKS_DEAD.webhook\"")
    });
    assert_eq!(r.readyz(), 503);
    let s = r.status();
    assert!(
        s["webhooks"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("add \"CLICKS_DEAD.>\""),
        "{s}"
    );
    assert!(r.stop().success());
}

/// `clicktap relay --reactivate <webhook>` on a relay's file: exit code and output.
fn reactivate(r: &Relay, webhook: &str) -> (i32, String) {
    let out = std::process::Command::new(common::clicktap::bin())
        .args(["relay", "--config"])
        .arg(&r.config)
        .args(["--reactivate", webhook])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn a_410_disables_the_webhook_for_every_relay_until_it_is_reactivated() {
    let Fleet {
        dir,
        nats: _nats,
        urls,
        up,
    } = Fleet::start();
    // 410 to the first request, 200 after.
    let rx = receiver::scripted(|n, _: Seen| async move {
        if n == 0 {
            reply(410, &[], "gone")
        } else {
            reply(200, &[], "ok")
        }
    });
    let a = sidecar(dir.path(), "a", up.addr, &sink(&urls, 1));
    let body = relay(&urls, "ack_wait = \"2s\"", &hook("g", &rx, ""));
    let r1 = Relay::start(dir.path(), "r1", &body);
    let r2 = Relay::start(dir.path(), "r2", &body);
    clicks(&a, "g", 1);
    a.wait_settled(1);
    // Both relays see the mark, whichever got the 410.
    wait_until(
        "the webhook disabled on both relays",
        Duration::from_secs(20),
        || {
            [&r1, &r2]
                .iter()
                .all(|r| r.status()["webhooks"][0]["state"] == "disabled")
        },
    );
    let w = &r1.status()["webhooks"][0];
    assert!(
        w["disabled_reason"].as_str().unwrap().contains("410"),
        "{w}"
    );
    assert_eq!(r1.metric("clicktap_relay_state", "webhook=\"g\""), 2.0);
    // Clicks meanwhile wait in the stream: none is sent, none is a dead letter.
    let sent = rx.requests().len();
    clicks(&a, "h", 3);
    a.wait_settled(4);
    let deadline = Instant::now() + Duration::from_secs(20);
    while r1.status()["webhooks"][0]["pending"].as_u64().unwrap_or(0) < 3 {
        assert!(
            Instant::now() < deadline,
            "the clicks are not waiting in the consumer: {}",
            r1.status()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(rx.requests().len(), sent, "nothing sent while disabled");
    let out = std::process::Command::new(common::clicktap::bin())
        .args(["status", "--config"])
        .arg(&r1.config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("g is disabled for every relay: answered 410 Gone"),
        "{text}"
    );
    // Reactivated: every click delivered, the one answered 410 included.
    let (code, out) = reactivate(&r1, "g");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("g: reactivated"), "{out}");
    let ids = stored_ids(&a);
    wait_until("every click delivered", Duration::from_secs(30), || {
        r1.settled("delivered") + r2.settled("delivered") >= 4.0
    });
    let got = delivered(&rx);
    assert_eq!(got.keys().cloned().collect::<HashSet<_>>(), ids);
    assert_eq!(r1.settled("dead") + r2.settled("dead"), 0.0);
    wait_until(
        "both relays consuming again",
        Duration::from_secs(20),
        || {
            [&r1, &r2]
                .iter()
                .all(|r| r.status()["webhooks"][0]["state"] == "consuming")
        },
    );
    let (code, out) = reactivate(&r1, "g");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("g: was not disabled"), "{out}");
}

#[test]
fn a_message_the_server_gave_up_on_becomes_a_dead_letter_from_the_advisory() {
    let Fleet {
        dir,
        nats,
        urls,
        up,
    } = Fleet::start();
    let rx = receiver::ok();
    let a = sidecar(dir.path(), "a", up.addr, &sink(&urls, 1));
    let r = Relay::start(dir.path(), "r", &relay(&urls, "", &hook("all", &rx, "")));
    clicks(&a, "m", 1);
    a.wait_settled(1);
    let ids = stored_ids(&a);
    wait_delivered(&rx, &ids, Duration::from_secs(20), &|| r.log_text());
    // The advisory nats-server publishes when a message reached max_deliver unsettled
    // (relays dying on every delivery is what it takes; the server's own words here).
    nats.publish(
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.CLICKS.clicktap-all",
        &serde_json::json!({
            "type": "io.nats.jetstream.advisory.v1.max_deliver",
            "id": "test",
            "timestamp": "2026-12-07T00:00:00Z",
            "stream": "CLICKS",
            "consumer": "clicktap-all",
            "stream_seq": 1,
            "deliveries": 7
        })
        .to_string(),
    );
    wait_until("the dead letter", Duration::from_secs(20), || {
        nats.count("CLICKS_DEAD") >= 1
    });
    let dead = nats.read_all("CLICKS_DEAD");
    let letter = &dead[0].event;
    assert_eq!(letter["stream_seq"], 1);
    assert_eq!(letter["attempts"], 7);
    assert!(
        letter["reason"]
            .as_str()
            .unwrap()
            .contains("not settled after 7 deliveries"),
        "{letter}"
    );
    assert!(ids.contains(letter["event"]["id"].as_str().unwrap()));
    assert_eq!(
        r.metric("clicktap_relay_messages_total", "outcome=\"max_deliver\""),
        1.0
    );
}

#[test]
fn a_relay_logs_in_as_sinks_do_and_never_shows_the_password() {
    const PASSWORD: &str = "r3lay-pa55word-never-shown";
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start_with_auth(dir.path(), Some(("clicktap", PASSWORD)));
    let urls = vec![nats.url()];
    let up = upstream::start();
    let rx = receiver::ok();
    let login = format!("user = \"clicktap\"\npassword = \"{PASSWORD}\"");
    let a = sidecar(
        dir.path(),
        "a",
        up.addr,
        &sink(&urls, 1).replace("[sinks.stream]", &format!("{login}\n[sinks.stream]")),
    );
    // Every crate's every line, the NATS client's protocol trace among them.
    let mut r = Relay::spawn_env(
        dir.path(),
        "r",
        &relay(&urls, &login, &hook("all", &rx, "")),
        &[("RUST_LOG", "trace")],
    );
    r.wait_ready();
    clicks(&a, "p", 5);
    a.wait_settled(5);
    wait_delivered(&rx, &stored_ids(&a), Duration::from_secs(30), &|| {
        r.log_text()
    });
    // A wrong password: not consuming, and saying why.
    let wrong = Relay::spawn(
        dir.path(),
        "wrong",
        &relay(
            &urls,
            "user = \"clicktap\"\npassword = \"not-the-password\"",
            &hook("other", &rx, ""),
        ),
    );
    wait_until("the refusal in the status", Duration::from_secs(20), || {
        wrong.readyz() != 0
            && wrong.status()["webhooks"][0]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("authorization"))
    });
    assert_eq!(wrong.readyz(), 503);
    let status = r.status().to_string();
    let metrics = r.metrics();
    assert!(r.stop().success(), "{}", r.log_text());
    assert!(
        r.log_text().contains("CONNECT"),
        "the NATS client's trace, where a login would show, is in the log"
    );
    for (what, text) in [
        ("log", r.log_text()),
        ("status", status),
        ("metrics", metrics),
        ("the other relay's status", wrong.status().to_string()),
    ] {
        assert!(!text.contains(PASSWORD), "the password in the {what}");
    }
}

#[test]
fn a_server_of_a_three_server_cluster_killed_mid_stream_loses_no_click() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Nats::start_cluster(dir.path(), 3);
    let urls: Vec<String> = cluster.iter().map(Nats::url).collect();
    let up = upstream::start();
    let rx = receiver::slow(Duration::from_millis(20));
    let a = sidecar(dir.path(), "a", up.addr, &sink(&urls, 3));
    assert_eq!(cluster[0].stream_config("CLICKS").num_replicas, 3);
    let body = relay(&urls, "dead_letter_replicas = 3", &hook("all", &rx, ""));
    let r1 = Relay::start(dir.path(), "r1", &body);
    let r2 = Relay::start(dir.path(), "r2", &body);
    clicks(&a, "c", 60);
    wait_until("deliveries under way", Duration::from_secs(30), || {
        rx.requests().len() >= 10
    });
    // The server leading the stream, so that the stream itself fails over.
    let leader = cluster[0]
        .stream_leader("CLICKS")
        .expect("the stream has a leader");
    let n: usize = leader.trim_start_matches('n').parse().unwrap();
    cluster[n].kill();
    clicks(&a, "d", 60);
    a.wait_settled(120);
    let ids = stored_ids(&a);
    assert_eq!(ids.len(), 120);
    wait_delivered(&rx, &ids, Duration::from_secs(90), &|| logs(&[&r1, &r2]));
}

#[test]
fn nats_stopped_then_started_again_sidecars_catch_up_and_relays_resume() {
    let Fleet {
        dir,
        mut nats,
        urls,
        up,
    } = Fleet::start();
    let rx = receiver::ok();
    let a = sidecar(dir.path(), "a", up.addr, &sink(&urls, 1));
    let mut r = Relay::start(dir.path(), "r", &relay(&urls, "", &hook("all", &rx, "")));
    clicks(&a, "x", 20);
    a.wait_settled(20);
    wait_delivered(&rx, &stored_ids(&a), Duration::from_secs(30), &|| {
        r.log_text()
    });
    nats.stop();
    wait_until("the relay noticing", Duration::from_secs(30), || {
        r.readyz() == 503
    });
    clicks(&a, "y", 20);
    a.wait_settled(40);
    nats.restart();
    let ids = stored_ids(&a);
    assert_eq!(ids.len(), 40);
    wait_delivered(&rx, &ids, Duration::from_secs(60), &|| r.log_text());
    r.wait_ready();
}

#[test]
fn a_consumer_removed_under_a_running_relay_is_created_again() {
    let Fleet {
        dir,
        nats,
        urls,
        up,
    } = Fleet::start();
    let rx = receiver::ok();
    let a = sidecar(dir.path(), "a", up.addr, &sink(&urls, 1));
    let r = Relay::start(dir.path(), "r", &relay(&urls, "", &hook("all", &rx, "")));
    clicks(&a, "p", 10);
    a.wait_settled(10);
    wait_delivered(&rx, &stored_ids(&a), Duration::from_secs(30), &|| {
        r.log_text()
    });
    nats.delete_consumer("CLICKS", "clicktap-all");
    wait_until(
        "the consumer created again",
        Duration::from_secs(30),
        || r.metric("clicktap_relay_consumer_recreated_total", "webhook=\"all\"") >= 1.0,
    );
    clicks(&a, "q", 10);
    a.wait_settled(20);
    wait_delivered(&rx, &stored_ids(&a), Duration::from_secs(30), &|| {
        r.log_text()
    });
}

#[test]
fn the_consumer_follows_the_webhook_and_a_changed_file_updates_it() {
    let Fleet {
        dir,
        nats,
        urls,
        up,
    } = Fleet::start();
    let rx = receiver::ok();
    let _a = sidecar(dir.path(), "a", up.addr, &sink(&urls, 1));
    let schedule = "retry.max_attempts = 3\nretry.schedule = [\"1s\", \"8s\"]";
    let mut r = Relay::start(
        dir.path(),
        "r",
        &relay(&urls, "", &hook("all", &rx, schedule)),
    );
    let c = nats.consumer_config("CLICKS", "clicktap-all");
    assert_eq!(
        c.ack_policy,
        async_nats::jetstream::consumer::AckPolicy::Explicit
    );
    assert_eq!(c.ack_wait, Duration::from_secs(3));
    assert_eq!(c.max_deliver, 3 + 2);
    assert_eq!(
        c.backoff,
        [3, 3, 8].map(Duration::from_secs).to_vec(),
        "ack_wait first, then the schedule, none below ack_wait"
    );
    assert!(r.stop().success());
    // The same relay started with another schedule and ack_wait: the consumer follows.
    let schedule = "retry.max_attempts = 4\nretry.schedule = [\"10s\"]";
    let _r = Relay::start(
        dir.path(),
        "r",
        &relay(&urls, "ack_wait = \"4s\"", &hook("all", &rx, schedule)),
    );
    let c = nats.consumer_config("CLICKS", "clicktap-all");
    assert_eq!(c.ack_wait, Duration::from_secs(4));
    assert_eq!(c.max_deliver, 4 + 2);
    assert_eq!(c.backoff, [4, 10, 10, 10].map(Duration::from_secs).to_vec());
}

#[test]
fn an_attempt_held_longer_than_ack_wait_by_the_rate_limit_is_sent_once() {
    let Fleet {
        dir,
        nats: _nats,
        urls,
        up,
    } = Fleet::start();
    let rx = receiver::ok();
    let a = sidecar(dir.path(), "a", up.addr, &sink(&urls, 1));
    // One request a second, four taken at once: the last waits about 3s for its turn,
    // past ack_wait (2s).
    let r = Relay::start(
        dir.path(),
        "r",
        &relay(
            &urls,
            "ack_wait = \"2s\"",
            &hook("slow", &rx, "rate_limit = 1.0"),
        ),
    );
    clicks(&a, "s", 4);
    a.wait_settled(4);
    let ids = stored_ids(&a);
    wait_until("four delivered", Duration::from_secs(30), || {
        r.settled("delivered") >= 4.0
    });
    let got = delivered(&rx);
    assert_eq!(got.keys().cloned().collect::<HashSet<_>>(), ids);
    assert!(got.values().all(|n| *n == 1), "each sent once: {got:?}");
    assert_eq!(r.settled("received"), 4.0, "none handed out again");
}

#[test]
fn a_relay_answers_health_and_metrics_and_stops_on_sigterm() {
    let Fleet {
        dir,
        nats: _nats,
        urls,
        up,
    } = Fleet::start();
    let rx = receiver::ok();
    let a = sidecar(dir.path(), "a", up.addr, &sink(&urls, 1));
    let mut r = Relay::start(dir.path(), "r", &relay(&urls, "", &hook("all", &rx, "")));
    assert_eq!(
        common::http_get(r.admin, "/healthz", &[]),
        (200, "ok\n".into())
    );
    let m = r.metrics();
    for name in [
        "clicktap_relay_state",
        "clicktap_relay_consumer_recreated_total",
    ] {
        assert!(m.contains(name), "{name} missing:\n{m}");
    }
    assert_eq!(common::http_get(r.admin, "/nope", &[]).0, 404);
    // Status: the token needed; each webhook's consumer, state and counts.
    assert_eq!(common::http_get(r.admin, "/api/v1/status", &[]).0, 401);
    clicks(&a, "h", 5);
    a.wait_settled(5);
    wait_until("five delivered", Duration::from_secs(20), || {
        r.settled("delivered") >= 5.0
    });
    wait_until("the consumer seen settled", Duration::from_secs(20), || {
        let w = &r.status()["webhooks"][0];
        w["pending"] == 0 && w["ack_pending"] == 0
    });
    let s = r.status();
    assert_eq!(s["role"], "relay");
    assert_eq!(s["stream"], "CLICKS");
    assert_eq!(s["dead_letter_stream"], "CLICKS_DEAD");
    let w = &s["webhooks"][0];
    assert_eq!(w["id"], "all");
    assert_eq!(w["consumer"], "clicktap-all");
    assert_eq!(w["state"], "consuming");
    assert_eq!(
        r.metric("clicktap_relay_pending_messages", "webhook=\"all\""),
        0.0
    );
    let out = std::process::Command::new(common::clicktap::bin())
        .args(["status", "--config"])
        .arg(&r.config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("clicktap relay "), "{text}");
    assert!(
        text.contains("stream   CLICKS, dead letters in CLICKS_DEAD"),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.starts_with("all "))
        .expect("a row for the webhook");
    assert!(
        row.contains("clicktap-all") && row.contains("consuming"),
        "{text}"
    );
    // SIGHUP does not end it (its default would, like a crash).
    r.signal("-HUP", "SIGHUP");
    assert_eq!(r.readyz(), 200);
    let started = Instant::now();
    assert!(r.stop().success(), "{}", r.log_text());
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Not a check: how fast relays drain a backlog of the stream, for the sizing notes
/// (`cargo test --test relay drain_rate -- --ignored --nocapture`).
#[test]
#[ignore]
fn drain_rate() {
    let Fleet {
        dir,
        nats,
        urls,
        up,
    } = Fleet::start();
    let a = sidecar(dir.path(), "a", up.addr, &sink(&urls, 1));
    let n = 3000;
    clicks(&a, "z", n);
    a.wait_settled(n);
    wait_until("the backlog in the stream", Duration::from_secs(60), || {
        nats.count("CLICKS") >= n as u64
    });
    println!(
        "stream: {} bytes per stored event",
        nats.bytes("CLICKS") / nats.count("CLICKS")
    );
    for (relays, concurrency) in [(1, 4), (1, 16), (2, 16)] {
        let rx = receiver::ok();
        let id = format!("r{relays}c{concurrency}");
        let body = relay(
            &urls,
            "",
            &hook(&id, &rx, "").replace("concurrency = 4", &format!("concurrency = {concurrency}")),
        );
        let started = Instant::now();
        let rs: Vec<Relay> = (0..relays)
            .map(|i| Relay::spawn(dir.path(), &format!("{id}-{i}"), &body))
            .collect();
        wait_until("the backlog delivered", Duration::from_secs(300), || {
            rs.iter()
                .map(|r| {
                    if r.readyz() == 200 {
                        r.settled("delivered")
                    } else {
                        0.0
                    }
                })
                .sum::<f64>()
                >= n as f64
        });
        let took = started.elapsed();
        println!(
            "{relays} relay(s), concurrency {concurrency}: {n} events in {took:.1?}, {:.0}/s",
            n as f64 / took.as_secs_f64()
        );
    }
}
