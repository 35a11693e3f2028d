//! `[[sinks]]` with `type = "nats"` against a real nats-server 2.9.10 (JetStream, store
//! in a temporary directory, loopback): every event reaches the stream once per event
//! id, across NATS going away and clicktap being killed, and a stream that does not
//! match the config is refused, naming the setting.

mod common;
#[path = "common/nats.rs"]
mod nats;

use common::clicktap::check_text;
use common::load::Load;
use common::{Clicktap, Options, events_cli, upstream, wait_until};
use nats::{Nats, id_counts};
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn sink(nats: &Nats, stream_extra: &str) -> String {
    format!(
        "[[sinks]]\nid = \"fleet\"\ntype = \"nats\"\nurls = [\"{}\"]\nsubject = \"clicks.{{link.host}}\"\n\
         connect_timeout = \"1s\"\npublish_timeout = \"2s\"\nmax_backoff = \"500ms\"\n\
         [sinks.stream]\nname = \"CLICKS\"\nsubjects = [\"clicks.>\"]\nmax_age = \"7d\"\n{stream_extra}",
        nats.url()
    )
}

fn status_sink(ct: &Clicktap) -> serde_json::Value {
    let s: serde_json::Value = serde_json::from_str(&ct.admin_get("/api/v1/status")).unwrap();
    s["sinks"][0].clone()
}

/// The ids of the events clicktap stored (read after it stopped).
fn stored_ids(ct: &Clicktap) -> HashSet<String> {
    events_cli(&ct.config, 1_000_000)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_click_reaches_the_stream_once_with_its_id_as_msg_id() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let up = upstream::start();
    // A server that is down among the urls: the sink tries the next.
    let dead = format!("nats://127.0.0.1:{}", common::free_port());
    let o = Options::default()
        .tail(&sink(&nats, "").replace("urls = [", &format!("urls = [\"{dead}\", ")));
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    wait_until("the sink publishing", Duration::from_secs(20), || {
        status_sink(&ct)["state"] == "publishing"
    });
    assert!(std::fs::read_to_string(&ct.config).unwrap().contains(&dead));
    // Created as configured.
    let config = nats.stream_config("CLICKS");
    assert_eq!(config.subjects, vec!["clicks.>".to_string()]);
    assert_eq!(config.max_age, Duration::from_secs(7 * 86_400));
    for i in 0..200 {
        assert_eq!(ct.click(&format!("GET /r/{i}"), ""), 302);
    }
    wait_until("200 events in the stream", Duration::from_secs(30), || {
        nats.count("CLICKS") >= 200
    });
    wait_until("the sink's lag at 0", Duration::from_secs(10), || {
        status_sink(&ct)["lag"] == 0
    });
    assert!(
        ct.metric(
            "clicktap_sink_events_total",
            "outcome=\"acked\",sink=\"fleet\""
        ) >= 200.0
    );
    assert!(ct.stop().success(), "{}", ct.log_text());
    let read = nats.read_all("CLICKS");
    assert_eq!(read.len(), 200, "one message per click");
    for r in &read {
        assert_eq!(r.subject, "clicks.sho_rt");
        assert_eq!(
            r.msg_id.as_deref(),
            r.event["id"].as_str(),
            "Nats-Msg-Id is the event id"
        );
    }
    let counts = id_counts(&read);
    assert!(counts.values().all(|n| *n == 1));
    let ids: HashSet<String> = counts.into_keys().collect();
    assert_eq!(
        ids,
        stored_ids(&ct),
        "the stream holds exactly the stored events"
    );
}

#[test]
fn nats_down_for_a_while_then_back_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = Nats::start(dir.path());
    let up = upstream::start();
    let mut ct = Clicktap::start(
        dir.path(),
        up.addr,
        &Options::default().tail(&sink(&nats, "")),
    );
    wait_until("the sink publishing", Duration::from_secs(20), || {
        status_sink(&ct)["state"] == "publishing"
    });
    for i in 0..50 {
        assert_eq!(ct.click(&format!("GET /r/a{i}"), ""), 302);
    }
    wait_until("50 events in the stream", Duration::from_secs(30), || {
        nats.count("CLICKS") >= 50
    });
    nats.stop();
    for i in 0..100 {
        assert_eq!(ct.click(&format!("GET /r/b{i}"), ""), 302);
    }
    wait_until(
        "the sink noticing NATS is down",
        Duration::from_secs(30),
        || {
            let s = status_sink(&ct);
            s["state"] == "connecting" && s["lag"].as_u64().unwrap_or(0) > 0
        },
    );
    assert!(ct.metric("clicktap_sink_lag_events", "sink=\"fleet\"") > 0.0);
    nats.restart();
    wait_until("the sink catching up", Duration::from_secs(60), || {
        let s = status_sink(&ct);
        s["state"] == "publishing" && s["lag"] == 0
    });
    assert!(ct.stop().success(), "{}", ct.log_text());
    let read = nats.read_all("CLICKS");
    let counts = id_counts(&read);
    assert_eq!(read.len(), counts.len(), "no event stored twice");
    let ids: HashSet<String> = counts.into_keys().collect();
    let stored = stored_ids(&ct);
    assert_eq!(stored.len(), 150);
    assert_eq!(ids, stored, "every click of the outage reached the stream");
}

#[test]
fn sigkill_mid_stream_loses_no_stored_event_and_stores_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let up = upstream::start();
    let mut ct = Clicktap::start(
        dir.path(),
        up.addr,
        &Options::default().tail(&sink(&nats, "")),
    );
    let load = Load::start(ct.proxy);
    for round in 0..3 {
        load.wait_served(100, "clicks served");
        wait_until(
            "events reaching the stream",
            Duration::from_secs(30),
            || nats.count("CLICKS") > 50 * (round + 1),
        );
        ct.kill9();
        load.next_process();
        ct = Clicktap::start_with(ct.config.clone(), ct.proxy, ct.admin, dir.path());
    }
    load.wait_served(100, "clicks served after the last restart");
    load.finish();
    wait_until("the sink caught up", Duration::from_secs(60), || {
        let s = status_sink(&ct);
        s["state"] == "publishing" && s["lag"] == 0
    });
    assert!(ct.stop().success(), "{}", ct.log_text());
    let stored = stored_ids(&ct);
    let read = nats.read_all("CLICKS");
    let counts = id_counts(&read);
    assert_eq!(
        read.len(),
        counts.len(),
        "an event re-sent after a kill is removed by its Nats-Msg-Id"
    );
    let ids: HashSet<String> = counts.into_keys().collect();
    let missing: Vec<_> = stored.difference(&ids).collect();
    assert!(
        missing.is_empty(),
        "stored events not in the stream: {missing:?}"
    );
    // Events captured in a kill's crash window may have been published before the
    // queue lost them: the stream may hold more than the queue kept, never less.
    assert!(ids.len() >= stored.len());
}

#[test]
fn a_stream_that_does_not_match_the_config_is_refused_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    nats.create_stream(async_nats::jetstream::stream::Config {
        name: "CLICKS".into(),
        subjects: vec!["clicks.>".into()],
        max_age: Duration::from_secs(3600),
        ..Default::default()
    });
    let up = upstream::start();
    let mut ct = Clicktap::start(
        dir.path(),
        up.addr,
        &Options::default().tail(&sink(&nats, "")),
    );
    wait_until("the sink refused", Duration::from_secs(20), || {
        status_sink(&ct)["state"] == "refused"
    });
    let error = status_sink(&ct)["last_error"].as_str().unwrap().to_string();
    assert!(
        error.contains("sinks[0].stream.max_age")
            && error.contains("1h")
            && error.contains("7days"),
        "{error}"
    );
    assert!(ct.log_text().contains("sinks[0].stream.max_age"));
    assert_eq!(ct.metric("clicktap_sink_state", "sink=\"fleet\""), 2.0);
    let (code, out, err) = ct.cli(&["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("fleet") && out.contains("refused") && out.contains("max_age"),
        "{out}"
    );
    for i in 0..5 {
        assert_eq!(ct.click(&format!("GET /r/{i}"), ""), 302);
    }
    wait_until(
        "the events waiting in the queue",
        Duration::from_secs(10),
        || status_sink(&ct)["lag"] == 5,
    );
    assert_eq!(
        nats.count("CLICKS"),
        0,
        "nothing published into a stream that does not match"
    );
    // The stream was left as it was.
    assert_eq!(
        nats.stream_config("CLICKS").max_age,
        Duration::from_secs(3600)
    );
    assert!(ct.stop().success(), "{}", ct.log_text());
}

#[test]
fn check_rejects_bad_sink_keys_naming_key_and_value() {
    let text = "[[sinks]]\nid = \"fleet\"\ntype = \"nats\"\nurls = [\"nats://u:p@127.0.0.1:4222\"]\n\
                subject = \"clicks.{link.hots}\"\ntoken = \"t0ken-secret-value\"\nnkey_seed = \"SUsecretseedvalue000\"\n\
                [sinks.stream]\nname = \"CLICKS\"\nsubjects = [\"other.>\"]\nretention = \"forever\"\n";
    let (code, err) = check_text(text);
    assert_eq!(code, 2, "{err}");
    for needle in [
        "sinks[0].subject",
        "link.hots",
        "sinks[0].urls[0]",
        "sinks[0]: sets token and nkey_seed",
        "sinks[0].stream.retention",
        "\"forever\"",
    ] {
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
    }
    assert!(!err.contains("t0ken-secret-value") && !err.contains("SUsecretseedvalue000"));
    assert!(
        !err.contains("u:p@"),
        "a URL's password is not quoted: {err}"
    );
    // A subject the stream would not store.
    let text = "[[sinks]]\nid = \"fleet\"\ntype = \"nats\"\nurls = [\"nats://127.0.0.1:4222\"]\n\
                subject = \"clicks.{link.host}\"\n[sinks.stream]\nname = \"CLICKS\"\nsubjects = [\"views.>\"]\n";
    let (code, err) = check_text(text);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("sinks[0].subject") && err.contains("not among the stream's subjects"),
        "{err}"
    );
}

#[test]
fn credentials_log_in_and_never_show() {
    const PASSWORD: &str = "n4ts-pa55word-never-shown";
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start_with_auth(dir.path(), Some(("clicktap", PASSWORD)));
    let up = upstream::start();
    let o = Options::default().tail(&sink(&nats, "").replace(
        "[sinks.stream]",
        &format!("user = \"clicktap\"\npassword = \"{PASSWORD}\"\n[sinks.stream]"),
    ));
    // Every crate's every line, the NATS client's protocol trace among them.
    let mut ct = Clicktap::start_env(dir.path(), up.addr, &o, &[("RUST_LOG", "trace")]);
    for i in 0..10 {
        assert_eq!(ct.click(&format!("GET /r/{i}"), ""), 302);
    }
    wait_until("10 events in the stream", Duration::from_secs(30), || {
        nats.count("CLICKS") >= 10
    });
    let status = ct.admin_get("/api/v1/status");
    let metrics = ct.admin_get("/metrics");
    assert!(ct.stop().success(), "{}", ct.log_text());
    assert!(
        ct.log_text().contains("write operation: CONNECT"),
        "the NATS client's trace, where a login would show, is in the log"
    );
    for (what, text) in [
        ("log", ct.log_text()),
        ("status", status),
        ("metrics", metrics),
    ] {
        assert!(!text.contains(PASSWORD), "the password in the {what}");
    }
}

#[test]
fn a_wrong_password_leaves_the_events_in_the_queue_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start_with_auth(dir.path(), Some(("clicktap", "right-password-0123")));
    let up = upstream::start();
    let o = Options::default().tail(&sink(&nats, "").replace(
        "[sinks.stream]",
        "user = \"clicktap\"\npassword = \"wrong-password-0123\"\n[sinks.stream]",
    ));
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..3 {
        assert_eq!(ct.click(&format!("GET /r/{i}"), ""), 302);
    }
    wait_until("the sink saying why", Duration::from_secs(20), || {
        let s = status_sink(&ct);
        s["state"] == "connecting"
            && s["lag"] == 3
            && s["last_error"]
                .as_str()
                .is_some_and(|e| e.to_lowercase().contains("auth"))
    });
    assert_eq!(nats.count("CLICKS"), 0);
    let text = ct.log_text() + &ct.admin_get("/api/v1/status");
    assert!(!text.contains("wrong-password-0123"));
    assert!(ct.stop().success(), "{}", ct.log_text());
}

#[test]
fn a_stop_is_bounded_while_nats_hangs_and_the_unacked_events_are_sent_again_once() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let up = upstream::start();
    // publish_timeout 2s + stop_timeout 1s + 2s: the documented bound of the sinks' stop.
    let o = Options::default()
        .tail(&sink(&nats, "").replace("[sinks.stream]", "stop_timeout = \"1s\"\n[sinks.stream]"));
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..20 {
        assert_eq!(ct.click(&format!("GET /r/a{i}"), ""), 302);
    }
    wait_until("20 events in the stream", Duration::from_secs(30), || {
        nats.count("CLICKS") >= 20
    });
    nats.pause();
    for i in 0..20 {
        assert_eq!(ct.click(&format!("GET /r/b{i}"), ""), 302);
    }
    wait_until(
        "the events published to a server that does not answer",
        Duration::from_secs(10),
        || {
            ct.metric(
                "clicktap_sink_events_total",
                "outcome=\"published\",sink=\"fleet\"",
            ) >= 40.0
        },
    );
    let asked = Instant::now();
    assert!(ct.stop().success(), "{}", ct.log_text());
    let took = asked.elapsed();
    nats.resume();
    assert!(took < Duration::from_secs(8), "the stop took {took:?}");
    // Nothing was acknowledged while the server hung: the next start publishes it.
    let ct = Clicktap::start_with(ct.config.clone(), ct.proxy, ct.admin, dir.path());
    wait_until("the sink caught up", Duration::from_secs(30), || {
        let s = status_sink(&ct);
        s["state"] == "publishing" && s["lag"] == 0
    });
    // The hung server read the publishes from its socket once it went on, and stored
    // them: sent again, they were acknowledged as duplicates and stored once.
    let duplicates = ct.metric(
        "clicktap_sink_events_total",
        "outcome=\"duplicate\",sink=\"fleet\"",
    );
    assert!(
        duplicates > 0.0,
        "publishes that timed out although the server stored them were sent again"
    );
    let mut ct = ct;
    assert!(ct.stop().success(), "{}", ct.log_text());
    let read = nats.read_all("CLICKS");
    let counts = id_counts(&read);
    assert_eq!(read.len(), counts.len(), "no event stored twice");
    let ids: HashSet<String> = counts.into_keys().collect();
    assert_eq!(ids, stored_ids(&ct));
    assert_eq!(ids.len(), 40);
}

#[test]
fn a_disabled_sink_keeps_its_events_until_it_is_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let up = upstream::start();
    let o = Options::default()
        .tail(&sink(&nats, "").replace("[sinks.stream]", "enabled = false\n[sinks.stream]"));
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..7 {
        assert_eq!(ct.click(&format!("GET /r/{i}"), ""), 302);
    }
    wait_until(
        "the events waiting for the sink",
        Duration::from_secs(10),
        || {
            let s = status_sink(&ct);
            s["state"] == "stopped" && s["lag"] == 7
        },
    );
    assert!(ct.stop().success(), "{}", ct.log_text());
    assert_eq!(nats.count("CLICKS"), 0, "a disabled sink publishes nothing");
    let text = std::fs::read_to_string(&ct.config)
        .unwrap()
        .replace("enabled = false\n", "");
    std::fs::write(&ct.config, text).unwrap();
    let mut ct = Clicktap::start_with(ct.config.clone(), ct.proxy, ct.admin, dir.path());
    wait_until(
        "the waiting events published",
        Duration::from_secs(30),
        || nats.count("CLICKS") >= 7,
    );
    assert!(ct.stop().success(), "{}", ct.log_text());
    assert_eq!(nats.count("CLICKS"), 7);
}

#[test]
fn tls_to_a_server_that_requires_it() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start_tls(dir.path());
    let up = upstream::start();
    let ca = nats.tls_ca().unwrap().display().to_string();
    let o = Options::default().tail(&format!(
        "{}[sinks.tls]\nrequired = true\nca = {ca:?}\n",
        sink(&nats, "")
    ));
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..5 {
        assert_eq!(ct.click(&format!("GET /r/{i}"), ""), 302);
    }
    wait_until("5 events in the stream", Duration::from_secs(30), || {
        nats.count("CLICKS") >= 5
    });
    assert!(ct.stop().success(), "{}", ct.log_text());
    assert_eq!(nats.count("CLICKS"), 5);
}

#[test]
fn tls_with_a_ca_that_did_not_sign_the_server_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start_tls(dir.path());
    let up = upstream::start();
    // The server's own certificate as the only CA: not the one that signed it.
    let wrong = nats.tls_ca().unwrap().with_file_name("upstream-cert.pem");
    let o = Options::default().tail(&format!(
        "{}[sinks.tls]\nrequired = true\nca = {:?}\n",
        sink(&nats, ""),
        wrong.display().to_string()
    ));
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("GET /r/1", ""), 302);
    wait_until(
        "the sink failing to connect",
        Duration::from_secs(20),
        || {
            let s = status_sink(&ct);
            s["state"] == "connecting" && s["lag"] == 1 && !s["last_error"].is_null()
        },
    );
    assert_eq!(nats.count("CLICKS"), 0);
    assert!(ct.stop().success(), "{}", ct.log_text());
}

/// While clicks keep coming, each is published as it is stored: the sink must not fall
/// back on its idle timer (1 s) because events arrived between its read and its wait
/// (it once did, under any steady stream: the stream then grew in one-second steps and
/// a relay's click-to-webhook latency spread over 0-1 s).
#[test]
fn a_steady_stream_of_clicks_is_published_as_it_comes_not_in_steps() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let up = upstream::start();
    let o = Options::default().tail(&sink(&nats, ""));
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    wait_until("the sink publishing", Duration::from_secs(20), || {
        status_sink(&ct)["state"] == "publishing"
    });
    let load = Load::start(ct.proxy);
    load.wait_served(50, "clicks served");
    // The longest time the stream's count stood still while clicks were served: with
    // the idle timer in the way, close to a second each time; as it should be, the
    // time of a publish and its acknowledgement (milliseconds).
    let (mut last, mut since) = (nats.count("CLICKS"), Instant::now());
    let mut longest = Duration::ZERO;
    let end = Instant::now() + Duration::from_secs(4);
    while Instant::now() < end {
        let n = nats.count("CLICKS");
        if n != last {
            longest = longest.max(since.elapsed());
            (last, since) = (n, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    longest = longest.max(since.elapsed());
    let served = load.finish();
    assert!(
        served.len() > 200,
        "the load kept coming: {} clicks",
        served.len()
    );
    assert!(
        longest < Duration::from_millis(700),
        "the stream stood still for {longest:?} while clicks were served\n{}",
        ct.log_text()
    );
    assert!(ct.stop().success(), "{}", ct.log_text());
}
