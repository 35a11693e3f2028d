//! The operator's console: what the delivery log keeps of each request as it was sent
//! (secrets never among it), test sends and replays marked in it, a webhook's failed
//! and dead messages listed by cursor and resent, and the way from an event to its
//! deliveries and back, through the real binary, its API and its command line.

mod common;

use common::receiver::{self, switchable};
use common::{Clicktap, Options, upstream, wait_until};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A request to the admin API with the token: the status and the body as text.
fn call_text(ct: &Clicktap, method: &str, path: &str, body: &str) -> (u16, String) {
    let auth = format!("Bearer {}", common::clicktap::TOKEN);
    let (status, _, body) = common::admin_exchange(
        ct.admin,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    (status, body)
}

fn call(ct: &Clicktap, method: &str, path: &str, body: &str) -> (u16, Value) {
    let (status, text) = call_text(ct, method, path, body);
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}")),
    )
}

fn get(ct: &Clicktap, path: &str) -> Value {
    let (status, v) = call(ct, "GET", path, "");
    assert_eq!(status, 200, "GET {path}: {v}");
    v
}

fn hex_sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn header(s: &common::server::Seen, name: &str) -> String {
    s.headers[name].to_str().unwrap().to_string()
}

/// Waits until `webhook`'s delivery log has `n` entries for the filters in `query`.
fn wait_log(ct: &Clicktap, webhook: &str, query: &str, n: usize) -> Vec<Value> {
    let path = format!("/api/v1/webhooks/{webhook}/deliveries?{query}");
    let mut last = Value::Null;
    wait_until(
        &format!("{n} entries of {path}"),
        Duration::from_secs(15),
        || {
            last = get(ct, &path);
            last["deliveries"].as_array().is_some_and(|d| d.len() >= n)
        },
    );
    last["deliveries"].as_array().unwrap().clone()
}

#[test]
fn the_delivery_log_keeps_what_was_sent_and_never_a_secret() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&format!(
        r#"[[webhooks]]
id = "signed"
url = "{}"
secret = "{SECRET}"
headers = {{ "X-Api-Key" = "hdr-s3cret-2", "X-Team" = "growth" }}
[webhooks.auth]
type = "bearer"
token = "bearer-s3cret-1"

[[webhooks]]
id = "query"
url = "{}"
[webhooks.auth]
type = "query"
param = "api_key"
value = "query-s3cret-3"
"#,
        rx.url("/signed"),
        rx.url("/query?x=1")
    ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/sent", ""), 302);
    let seen = rx.wait_for(2, Duration::from_secs(10));
    assert_eq!(seen.len(), 2);
    let signed = seen.iter().find(|s| s.uri.path() == "/signed").unwrap();
    let query = seen.iter().find(|s| s.uri.path() == "/query").unwrap();
    wait_log(&ct, "signed", "", 1);
    wait_log(&ct, "query", "", 1);

    // Nothing secret anywhere in the API's answer, nor in the command line's.
    let (status, raw) = call_text(&ct, "GET", "/api/v1/deliveries", "");
    assert_eq!(status, 200);
    let received_signature = header(signed, "webhook-signature");
    let signature_value = received_signature.split_once(',').unwrap().1.to_string();
    let secrets = [
        "bearer-s3cret-1",
        "hdr-s3cret-2",
        "query-s3cret-3",
        SECRET,
        &SECRET[6..],
        &signature_value,
    ];
    for secret in secrets {
        assert!(!raw.contains(secret), "{secret} in {raw}");
    }
    let (code, out, err) = ct.cli(&["webhooks", "deliveries", "signed", "--json"]);
    assert_eq!(code, 0, "{err}");
    for secret in secrets {
        assert!(!out.contains(secret), "{secret} in {out}");
    }

    let log: Value = serde_json::from_str(&raw).unwrap();
    let entry = |id: &str| {
        log["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["webhook"] == id)
            .unwrap()
            .clone()
    };
    let s = entry("signed");
    let sent = &s["sent"];
    assert_eq!(sent["method"], "POST");
    assert_eq!(sent["headers"]["authorization"], "Bearer [redacted]");
    assert_eq!(sent["headers"]["webhook-signature"], "v1,[redacted]");
    assert_eq!(sent["headers"]["x-api-key"], "[redacted]");
    assert_eq!(sent["headers"]["x-team"], "growth");
    // What the receiver got is what the log says was sent.
    assert_eq!(sent["headers"]["webhook-id"], header(signed, "webhook-id"));
    assert_eq!(
        sent["headers"]["webhook-timestamp"],
        header(signed, "webhook-timestamp")
    );
    assert_eq!(
        sent["headers"]["content-type"],
        header(signed, "content-type")
    );
    assert_eq!(s["message_id"], header(signed, "webhook-id"));
    assert_eq!(
        sent["headers"]["idempotency-key"],
        header(signed, "webhook-id")
    );
    // Every header the receiver got is in the log, as it came or redacted.
    for (name, value) in &signed.headers {
        let logged = sent["headers"][name.as_str()].as_str();
        let value = value.to_str().unwrap();
        assert!(
            logged.is_some_and(|l| l == value || l.contains("[redacted]")),
            "{name}: {value} was sent, the log has {logged:?}"
        );
    }
    assert_eq!(sent["body"], String::from_utf8_lossy(&signed.body).as_ref());
    assert_eq!(sent["body_bytes"], signed.body.len());
    assert_eq!(sent["body_sha256"], hex_sha256(&signed.body));
    assert_eq!(s["test"], false);
    assert_eq!(s["replay"], false);

    // A webhook without a secret sent no signature, and its log shows none; the key in
    // its query shows its name only.
    let q = entry("query");
    assert!(
        q["sent"]["headers"].get("webhook-signature").is_none(),
        "{q}"
    );
    assert!(query.headers.get("webhook-signature").is_none());
    assert_eq!(query.uri.query(), Some("x=1&api_key=query-s3cret-3"));
    let url = q["sent"]["url"].as_str().unwrap();
    assert!(
        url.ends_with("/query?x=[redacted]&api_key=[redacted]"),
        "{url}"
    );
    assert_eq!(q["sent"]["body_sha256"], hex_sha256(&query.body));
}

#[test]
fn bodies_are_kept_up_to_log_body_max_bytes_and_the_log_counts_them() {
    // The key is checked like every bound.
    let (code, err) = common::clicktap::check_text("[delivery]\nlog_body_max_bytes = 70000\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("delivery.log_body_max_bytes"), "{err}");

    let up = upstream::start();
    let rx = receiver::ok();
    let stored_bytes = |keep: &str| -> (f64, Vec<Value>) {
        let dir = tempfile::tempdir().unwrap();
        let o = Options::default()
            .delivery(&format!("log_body_max_bytes = {keep}"))
            .tail(&format!(
                "[[webhooks]]\nid = \"main\"\nurl = \"{}\"\n",
                rx.url("/")
            ));
        let ct = Clicktap::start(dir.path(), up.addr, &o);
        for i in 0..20 {
            assert_eq!(ct.click(&format!("/r/body-{i}"), ""), 302);
        }
        let log = wait_log(&ct, "main", "limit=100", 20);
        (ct.metric("clicktap_delivery_log_bytes", ""), log)
    };
    let (none, log) = stored_bytes("0");
    for d in &log {
        assert_eq!(d["sent"]["body"], Value::Null, "0 keeps no body: {d}");
        assert!(d["sent"]["body_bytes"].as_u64().unwrap() > 100);
        assert_eq!(d["sent"]["body_sha256"].as_str().unwrap().len(), 64);
    }
    let (small, log) = stored_bytes("100");
    assert!(
        log.iter().all(|d| d["sent"]["body"].is_null()),
        "over 100 bytes"
    );
    let (kept, log) = stored_bytes("4096");
    for d in &log {
        let body = d["sent"]["body"].as_str().unwrap();
        assert_eq!(hex_sha256(body.as_bytes()), d["sent"]["body_sha256"]);
    }
    assert!(
        kept > none && kept > small,
        "the log's bytes count the kept bodies: {kept} with, {none} and {small} without"
    );
}

#[test]
fn a_test_send_is_in_the_delivery_log_marked_as_a_test() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&format!(
        "[[webhooks]]\nid = \"main\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\n",
        rx.url("/")
    ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let (code, out, err) = ct.cli(&["webhooks", "test", "main", "--json"]);
    assert_eq!(code, 0, "{err}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["sent"]["headers"]["x-clicktap-test"], "true");
    assert!(!out.contains(&SECRET[6..]));

    let tests = wait_log(&ct, "main", "test=true", 1);
    assert_eq!(tests.len(), 1);
    let t = &tests[0];
    assert_eq!(t["test"], true);
    assert_eq!(t["seq"], 0);
    assert_eq!(t["event_id"], answer["event_id"]);
    assert_eq!(t["message_id"], answer["message_id"]);
    assert_eq!(t["sent"]["headers"]["webhook-signature"], "v1,[redacted]");
    let seen = rx.requests();
    assert_eq!(t["sent"]["body_sha256"], hex_sha256(&seen[0].body));

    // A click afterwards is not a test; the filter tells them apart.
    assert_eq!(ct.click("/r/real", ""), 302);
    let real = wait_log(&ct, "main", "test=false", 1);
    assert_eq!(real.len(), 1);
    assert_eq!(real[0]["test"], false);
    let (code, out, err) = ct.cli(&["webhooks", "deliveries", "main", "--test"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.contains(" test ")).count(),
        1,
        "{out}"
    );
}

#[test]
fn a_replay_is_recorded_as_a_replay_of_the_original_message() {
    let up = upstream::start();
    let (rx, accept) = switchable(500);
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&format!(
        "[[webhooks]]\nid = \"main\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\n[webhooks.retry]\nmax_attempts = 1\n",
        rx.url("/")
    ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/again", ""), 302);
    let first = wait_log(&ct, "main", "", 1);
    let original = first[0]["message_id"].as_str().unwrap().to_string();
    assert_eq!(first[0]["replay"], false);
    assert_eq!(first[0]["replay_of"], Value::Null);
    let seq = first[0]["seq"].as_u64().unwrap();
    wait_until("a dead letter", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_dead_total", "") == 1.0
    });

    // A dead letter resent: the same message id, marked as a replay of it.
    accept.store(true, Ordering::SeqCst);
    let (status, v) = call(
        &ct,
        "POST",
        &format!("/api/v1/webhooks/main/messages/{seq}/resend"),
        "",
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["resent"], 1);
    let replays = wait_log(&ct, "main", "replay=true", 1);
    let r = &replays[0];
    assert_eq!(r["replay"], true);
    assert_eq!(r["replay_of"], original.as_str());
    assert_eq!(r["message_id"], original.as_str());
    assert_eq!(r["seq"], seq);
    assert_eq!(r["attempt"], 1);
    assert_eq!(r["status"], 200);
    let seen = rx.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        header(&seen[0], "webhook-id"),
        header(&seen[1], "webhook-id")
    );

    // A time range replayed (of an event delivered already): marked too.
    let (code, _, err) = ct.cli(&[
        "webhooks",
        "replay",
        "main",
        "--since",
        "0",
        "--until",
        "99999999999999",
    ]);
    assert_eq!(code, 0, "{err}");
    let replays = wait_log(&ct, "main", "replay=true", 2);
    assert!(replays.iter().all(|r| r["replay_of"] == original.as_str()));
    let (code, out, _) = ct.cli(&["webhooks", "deliveries", "main"]);
    assert_eq!(code, 0);
    assert_eq!(out.matches("(replay)").count(), 2, "{out}");
    // The event's whole story, from its seq: the first attempt and two replays.
    let story = get(&ct, &format!("/api/v1/deliveries?seq={seq}"));
    assert_eq!(story["deliveries"].as_array().unwrap().len(), 3, "{story}");
}

fn messages(ct: &Clicktap, webhook: &str, query: &str) -> Value {
    get(ct, &format!("/api/v1/webhooks/{webhook}/messages?{query}"))
}

#[test]
fn failed_and_dead_messages_are_listed_by_cursor_filtered_and_resent() {
    let up = upstream::start();
    let (dead_rx, dead_ok) = switchable(500);
    let (failing_rx, failing_ok) = switchable(500);
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&format!(
        "[[webhooks]]\nid = \"dead\"\nurl = \"{}\"\n[webhooks.retry]\nmax_attempts = 1\n\n\
         [[webhooks]]\nid = \"failing\"\nurl = \"{}\"\n[webhooks.retry]\nmax_attempts = 5\nschedule = [\"1h\"]\njitter = 0.0\n",
        dead_rx.url("/"),
        failing_rx.url("/")
    ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..5 {
        assert_eq!(ct.click(&format!("/r/m-{i}"), ""), 302);
    }
    wait_until("5 dead letters", Duration::from_secs(15), || {
        ct.metric("clicktap_delivery_dead_total", "") == 5.0
    });
    wait_until("5 retries", Duration::from_secs(15), || {
        ct.metric("clicktap_delivery_retried_total", "webhook=\"failing\"") == 5.0
    });
    let events = ct.events(10);
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();

    // Paged by cursor, in sequence order.
    let mut all = Vec::new();
    let mut cursor = String::new();
    for page in 0.. {
        assert!(page < 5, "too many pages");
        let v = messages(&ct, "dead", &format!("status=dead&limit=2&cursor={cursor}"));
        all.extend(v["messages"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(all.len(), 5);
    let seqs: Vec<u64> = all.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    for m in &all {
        assert_eq!(m["status"], "dead");
        assert!(ids.contains(m["event_id"].as_str().unwrap()), "{m}");
        assert!(m["message_id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!(m["event_type"], "link.clicked");
        assert!(
            m["link"].as_str().unwrap().starts_with("sho.rt/r/m-"),
            "{m}"
        );
        assert!(m["last_error"].as_str().unwrap().contains("500"), "{m}");
    }
    let failed = messages(&ct, "failing", "");
    let failed = failed["messages"].as_array().unwrap();
    assert_eq!(failed.len(), 5);
    assert!(
        failed
            .iter()
            .all(|m| m["status"] == "failed" && m["attempts"] == 1)
    );
    assert_eq!(
        messages(&ct, "failing", "status=dead")["messages"],
        Value::Array(vec![])
    );

    // Filters: capture time, event type, message id.
    let future = "2999-01-01T00:00:00Z";
    assert_eq!(
        messages(&ct, "dead", &format!("since={future}"))["messages"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        messages(&ct, "dead", &format!("until={future}"))["messages"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        messages(&ct, "dead", "type=page.viewed")["messages"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let one = all[2]["message_id"].as_str().unwrap();
    let v = messages(&ct, "dead", &format!("message_id={one}"));
    assert_eq!(v["messages"].as_array().unwrap().len(), 1);
    assert_eq!(v["messages"][0]["seq"], all[2]["seq"]);

    // The command line: a table, --json, and a no from clicktap is exit 2.
    let (code, out, err) = ct.cli(&["webhooks", "messages", "dead", "--limit", "2"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("more with --cursor"), "{out}");
    let (code, out, err) = ct.cli(&["webhooks", "messages", "dead", "--all", "--json"]);
    assert_eq!(code, 0, "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["messages"].as_array().unwrap().len(), 5);
    let (code, _, err) = ct.cli(&["webhooks", "messages", "dead", "--status", "bogus"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = ct.cli(&["webhooks", "messages", "nope"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = ct.cli(&["webhooks", "resend", "failing", "--seq", "999999"]);
    assert_eq!(code, 2, "{err}");

    // Resent: one by its seq, then a filtered set; each a replay of its message.
    failing_ok.store(true, Ordering::SeqCst);
    let seq = failed[0]["seq"].as_u64().unwrap().to_string();
    let (code, out, err) = ct.cli(&["webhooks", "resend", "failing", "--seq", &seq]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 messages"), "{out}");
    wait_until("one resent and delivered", Duration::from_secs(10), || {
        messages(&ct, "failing", "")["messages"]
            .as_array()
            .unwrap()
            .len()
            == 4
    });
    let (code, out, err) = ct.cli(&[
        "webhooks", "resend", "failing", "--status", "failed", "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["resent"], 4);
    wait_until("all resent and delivered", Duration::from_secs(10), || {
        messages(&ct, "failing", "")["messages"]
            .as_array()
            .unwrap()
            .is_empty()
    });
    let replays = wait_log(&ct, "failing", "replay=true", 5);
    let originals: HashSet<&str> = failed
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    for r in &replays {
        assert!(originals.contains(r["replay_of"].as_str().unwrap()), "{r}");
        assert_eq!(r["replay_of"], r["message_id"]);
    }

    // Dead letters resent through the API with a JSON body of filters.
    dead_ok.store(true, Ordering::SeqCst);
    let (status, v) = call(
        &ct,
        "POST",
        "/api/v1/webhooks/dead/messages/resend",
        r#"{"status": "dead", "type": "link.clicked"}"#,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["resent"], 5);
    wait_until(
        "every click delivered to both",
        Duration::from_secs(10),
        || ct.metric("clicktap_delivery_delivered_total", "") == 10.0,
    );
    assert!(
        messages(&ct, "dead", "")["messages"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // No click lost or skipped: both webhooks are at the head, each event delivered once.
    let hooks = get(&ct, "/api/v1/webhooks");
    for w in hooks["webhooks"].as_array().unwrap() {
        assert_eq!(w["lag"], 0, "{w}");
        assert_eq!(w["retries"], 0, "{w}");
        assert_eq!(w["dead_letters"], 0, "{w}");
    }
    let sent: HashSet<String> = failing_rx
        .requests()
        .iter()
        .flat_map(receiver::native_ids)
        .collect();
    assert_eq!(sent, ids.iter().map(|s| s.to_string()).collect());
}

#[test]
fn events_show_their_seq_and_message_ids_and_filter_by_time_link_type_and_kind() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&format!(
        "[[webhooks]]\nid = \"main\"\nurl = \"{}\"\n",
        rx.url("/")
    ));
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/a", common::BROWSER), 302);
    assert_eq!(ct.click("/r/b", common::BROWSER), 302);
    assert_eq!(ct.click("HEAD /r/c", common::BROWSER), 302);
    ct.wait_events(3);
    wait_until("/r/a delivered", Duration::from_secs(10), || {
        rx.requests()
            .iter()
            .any(|s| receiver::link_path(s) == "/r/a")
    });
    let seen = rx.requests();
    wait_log(&ct, "main", "", 2);

    let lines = |args: &[&str]| -> Vec<Value> {
        let mut all = vec!["events"];
        all.extend_from_slice(args);
        let (code, out, err) = ct.cli(&all);
        assert_eq!(code, 0, "{args:?}: {err}");
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let every = lines(&["--json"]);
    assert_eq!(every.len(), 3);
    for e in &every {
        assert!(e["seq"].is_u64(), "{e}");
    }
    // The message id an event is sent with is the one its receiver got.
    let a = every.iter().find(|e| e["link"]["path"] == "/r/a").unwrap();
    let got_a = seen
        .iter()
        .find(|s| receiver::link_path(s) == "/r/a")
        .unwrap();
    assert_eq!(a["message_ids"]["main"], header(got_a, "idempotency-key"));
    // From the event to its deliveries and back.
    let seq = a["seq"].as_u64().unwrap();
    let story = get(&ct, &format!("/api/v1/deliveries?seq={seq}"));
    let d = &story["deliveries"][0];
    assert_eq!(d["event_id"], a["id"]);
    assert_eq!(d["message_id"], a["message_ids"]["main"]);
    let back = get(&ct, &format!("/api/v1/events/{}?meta=true", d["seq"]));
    assert_eq!(back["id"], a["id"]);
    assert_eq!(back["seq"], seq);

    // Filters.
    let paths = |v: Vec<Value>| -> Vec<String> {
        v.iter()
            .map(|e| e["link"]["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(paths(lines(&["--link", "sho.rt/r/a"])), ["/r/a"]);
    assert_eq!(paths(lines(&["--link", "/r/b"])), ["/r/b"]);
    assert_eq!(lines(&["--link", "/r/*"]).len(), 3);
    assert_eq!(paths(lines(&["--kind", "head"])), ["/r/c"]);
    assert_eq!(lines(&["--kind", "human"]).len(), 2);
    assert_eq!(lines(&["--type", "link.clicked"]).len(), 3);
    assert!(lines(&["--type", "page.viewed"]).is_empty());
    assert!(lines(&["--since", "2999-01-01T00:00:00Z"]).is_empty());
    assert_eq!(
        lines(&["--until", "2999-01-01T00:00:00Z", "--limit", "2"]).len(),
        2
    );
    let (code, _, err) = ct.cli(&["events", "--type", "nope"]);
    assert_eq!(code, 2, "{err}");
    let (code, out, err) = ct.cli(&["events", "--table", "--kind", "human"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("seq"), "{out}");
    assert!(out.contains(&format!(
        "main={}",
        a["message_ids"]["main"].as_str().unwrap()
    )));
    // The API gives the same.
    let (status, text) = call_text(&ct, "GET", "/api/v1/events?meta=true&kind=head", "");
    assert_eq!(status, 200);
    let head: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(head.len(), 1);
    assert_eq!(head[0]["kind"], "head");
    assert!(head[0]["seq"].is_u64());
    let (status, _) = call_text(&ct, "GET", "/api/v1/events?type=nope", "");
    assert_eq!(status, 400);

    // Stopped, the command line reads the queue itself, the same way; what needs the
    // running clicktap says it cannot reach it (exit 1).
    ct.stop();
    let (code, _, err) = ct.cli(&["webhooks", "messages", "main"]);
    assert_eq!(code, 1, "{err}");
    let offline = common::events_cli(&ct.config, 10);
    assert_eq!(offline.len(), 3);
    let (code, out, err) = ct.cli(&["events", "--link", "/r/a"]);
    assert_eq!(code, 0, "{err}");
    let line: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(line["seq"], seq);
    assert_eq!(line["message_ids"]["main"], a["message_ids"]["main"]);
}
