//! Operating clicktap without downtime: reloads (SIGHUP, the API, the command line),
//! a binary upgrade through Pingora's socket hand-over, GeoIP files replaced on disk,
//! and the command line's daily work, each against the real binary under real load.

mod common;

use common::receiver::{self, native_ids};
use common::{Clicktap, Options, events_cli, upstream, wait_until};
use serde_json::Value;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn webhook(id: &str, url: &str) -> String {
    format!("[[webhooks]]\nid = \"{id}\"\nurl = \"{url}\"\n")
}

/// Rewrites the webhooks of `ct`'s configuration file: everything from the first
/// `[[webhooks]]` on is replaced by `tail`.
fn set_tail(ct: &Clicktap, tail: &str) {
    let text = std::fs::read_to_string(&ct.config).unwrap();
    let head = text.split("[[webhooks]]").next().unwrap();
    std::fs::write(&ct.config, format!("{}\n{tail}", head.trim_end())).unwrap();
}

/// Clicks sent one after another on fresh connections until told to stop, by several
/// threads; every answer and every refused or failed connection counted.
struct Load {
    stop: Arc<AtomicBool>,
    served: Arc<Mutex<Vec<String>>>,
    failed: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(AtomicUsize::new(0));
        let threads = (0..threads)
            .map(|t| {
                let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
                std::thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let path = format!("/r/load-{t}-{n}");
                        match one(addr, &path) {
                            Some(302) => served.lock().unwrap().push(path),
                            _ => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            served,
            failed,
            threads,
        }
    }

    fn served(&self) -> usize {
        self.served.lock().unwrap().len()
    }

    /// Stops the load; returns the paths served.
    fn finish(self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let served = std::mem::take(&mut *self.served.lock().unwrap());
        (served, self.failed.load(Ordering::Relaxed))
    }
}

fn one(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: sho.rt\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    String::from_utf8_lossy(&out).get(9..12)?.parse().ok()
}

/// Kills process `.0` when dropped while the test is failing.
struct KillIfPanicking(u64);

impl Drop for KillIfPanicking {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

fn wait_more(load: &Load, n: usize) {
    let before = load.served();
    wait_until("more clicks served", Duration::from_secs(20), || {
        load.served() >= before + n
    });
}

fn stored_paths(ct: &Clicktap) -> HashSet<String> {
    paths(&events_cli(&ct.config, 1_000_000))
}

/// The link paths of `events`.
fn paths(events: &[Value]) -> HashSet<String> {
    events
        .iter()
        .map(|e| e["link"]["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_reload_adds_a_webhook_that_then_receives_clicks() {
    let up = upstream::start();
    let first = receiver::ok();
    let second = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook("first", &first.url("/")));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/before", ""), 302);
    first.wait_for(1, Duration::from_secs(10));

    set_tail(
        &ct,
        &format!(
            "{}\n{}",
            webhook("first", &first.url("/")),
            webhook("second", &second.url("/"))
        ),
    );
    let (code, out, err) = ct.cli(&["reload", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["webhooks"]["added"], serde_json::json!(["second"]), "{v}");
    assert_eq!(v["webhooks"]["changed"], serde_json::json!([]), "{v}");
    let file = std::fs::read(&ct.config).unwrap();
    let hash: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&file)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(v["hash"], hash);

    assert_eq!(ct.click("/r/after", ""), 302);
    let got = second.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "{}", ct.log_text());
    assert_eq!(receiver::body_json(&got[0])["link"]["path"], "/r/after");
    wait_until(
        "the first webhook got both",
        Duration::from_secs(10),
        || first.requests().len() == 2,
    );
    assert_eq!(
        ct.metric("clicktap_config_reloads_total", r#"outcome="success""#),
        1.0
    );
    let (_, status) = (0, ct.admin_get("/api/v1/status"));
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["config"]["hash"], hash);

    // Removed again: it stops, the other goes on.
    set_tail(&ct, &webhook("first", &first.url("/")));
    let (code, out, _) = ct.cli(&["reload"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("removed: second"), "{out}");
    wait_until("second gone from the list", Duration::from_secs(10), || {
        !ct.admin_get("/api/v1/webhooks").contains("\"second\"")
    });
    assert_eq!(ct.click("/r/last", ""), 302);
    wait_until("first got the last", Duration::from_secs(10), || {
        first.requests().len() == 3
    });
    assert_eq!(second.requests().len(), 1);
}

#[test]
fn a_webhook_a_reload_adds_paused_is_listed_and_once_enabled_receives_the_clicks_of_its_pause() {
    let up = upstream::start();
    let first = receiver::ok();
    let paused = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook("first", &first.url("/")));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/before", ""), 302);
    first.wait_for(1, Duration::from_secs(10));

    let both = |enabled: bool| {
        format!(
            "{}\n{}enabled = {enabled}\n",
            webhook("first", &first.url("/")),
            webhook("later", &paused.url("/"))
        )
    };
    set_tail(&ct, &both(false));
    let (code, out, err) = ct.cli(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    // Paused, it is listed everywhere an operator looks.
    let (code, out, _) = ct.cli(&["status"]);
    assert_eq!(code, 0);
    let line = out
        .lines()
        .find(|l| l.starts_with("later"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("paused"), "{out}");
    let (_, out, _) = ct.cli(&["webhooks", "list"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("later") && l.contains("paused")),
        "{out}"
    );
    let api: Value = serde_json::from_str(&ct.admin_get("/api/v1/webhooks/later")).unwrap();
    assert_eq!(api["paused"], true, "{api}");

    for i in 0..5 {
        assert_eq!(ct.click(&format!("/r/pause-{i}"), ""), 302);
    }
    first.wait_for(6, Duration::from_secs(10));
    wait_until(
        "the pause's clicks wait for it",
        Duration::from_secs(10),
        || {
            let v: Value = serde_json::from_str(&ct.admin_get("/api/v1/webhooks/later")).unwrap();
            v["lag"] == 5
        },
    );
    assert!(paused.requests().is_empty());

    set_tail(&ct, &both(true));
    let (code, out, err) = ct.cli(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    let got = paused.wait_for(5, Duration::from_secs(10));
    let got: HashSet<String> = got.iter().map(receiver::link_path).collect();
    let want: HashSet<String> = (0..5).map(|i| format!("/r/pause-{i}")).collect();
    assert_eq!(got, want, "the clicks of the pause, and only those");
    let api: Value = serde_json::from_str(&ct.admin_get("/api/v1/webhooks/later")).unwrap();
    assert_eq!(api["paused"], false, "{api}");
}

#[test]
fn a_bad_reload_is_refused_whole_and_the_running_configuration_stays() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook("keep", &rx.url("/")));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let before: Value = serde_json::from_str(&ct.admin_get("/api/v1/status")).unwrap();
    let good = std::fs::read_to_string(&ct.config).unwrap();

    // Invalid: refused with the same problems `check` prints, exit 2.
    set_tail(
        &ct,
        "[[webhooks]]\nid = \"keep\"\nurl = \"ftp://nowhere/\"\ntimeout = \"0s\"\n",
    );
    let (check_code, _, check_err) = ct.cli(&["check"]);
    assert_eq!(check_code, 2);
    let (code, _, err) = ct.cli(&["reload"]);
    assert_eq!(code, 2, "{err}");
    for line in check_err.lines().filter(|l| l.contains(": webhooks[0]")) {
        assert!(err.contains(line), "{line:?} missing from:\n{err}");
    }
    let req = "POST /api/v1/reload HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer test-admin-token-0123456789\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let raw = String::from_utf8_lossy(&common::raw_exchange(ct.admin, req.as_bytes())).into_owned();
    assert!(raw.starts_with("HTTP/1.1 422"), "{raw}");
    assert!(
        raw.contains("invalid_config") && raw.contains("webhooks[0].url"),
        "{raw}"
    );

    // Needs a new process: refused, naming the keys.
    let moved = good.replace("[enrich]", "[enrich]\nworkers = 2");
    std::fs::write(&ct.config, moved).unwrap();
    let (code, _, err) = ct.cli(&["reload"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("enrich.workers"), "{err}");

    // Still running on what it had.
    let after: Value = serde_json::from_str(&ct.admin_get("/api/v1/status")).unwrap();
    assert_eq!(after["config"]["hash"], before["config"]["hash"]);
    assert_eq!(ct.click("/r/still", ""), 302);
    rx.wait_for(1, Duration::from_secs(10));
    assert_eq!(rx.requests().len(), 1);
    assert_eq!(
        ct.metric("clicktap_config_reloads_total", r#"outcome="invalid""#),
        2.0
    );
    assert_eq!(
        ct.metric(
            "clicktap_config_reloads_total",
            r#"outcome="needs_restart""#
        ),
        1.0
    );
}

#[test]
fn sighup_under_load_answers_every_request_and_stores_every_click() {
    let up = upstream::start();
    let a = receiver::ok();
    let b = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook("a", &a.url("/")));
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    let load = Load::start(ct.proxy, 3);
    let pid = ct.child.id().to_string();
    for i in 0..3 {
        wait_more(&load, 30);
        let tail = if i % 2 == 0 {
            format!(
                "{}\n{}",
                webhook("a", &a.url("/")),
                webhook("b", &b.url("/"))
            )
        } else {
            webhook("a", &a.url("/"))
        };
        set_tail(&ct, &tail);
        let sent = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        wait_until("the reload applied", Duration::from_secs(10), || {
            ct.metric("clicktap_config_reloads_total", r#"outcome="success""#) == (i + 1) as f64
        });
        assert!(
            ct.child.try_wait().unwrap().is_none(),
            "SIGHUP ended clicktap:\n{}",
            ct.log_text()
        );
    }
    wait_more(&load, 30);
    let (served, failed) = load.finish();
    assert_eq!(failed, 0, "requests not answered with the redirect");
    ct.wait_settled(served.len());
    assert!(ct.stop().success(), "{}", ct.log_text());
    let stored = stored_paths(&ct);
    let lost: Vec<&String> = served.iter().filter(|p| !stored.contains(*p)).collect();
    assert!(
        lost.is_empty(),
        "{} clicks served but not stored: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

#[test]
fn an_upgrade_under_load_refuses_no_connection_and_loses_no_click() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook("w", &rx.url("/")));
    let mut old = Clicktap::start(dir.path(), up.addr, &o);
    let load = Load::start(old.proxy, 3);
    wait_more(&load, 50);
    let mut new = old.upgrade(dir.path());
    // The old one hands over, finishes its requests, drains, flushes and exits.
    wait_until("the old process gone", Duration::from_secs(60), || {
        matches!(old.child.try_wait(), Ok(Some(_)))
    });
    assert!(
        old.child.try_wait().unwrap().unwrap().success(),
        "{}",
        old.log_text()
    );
    wait_more(&load, 50);
    let (served, failed) = load.finish();
    eprintln!(
        "upgrade under load: {} clicks served, {failed} failed",
        served.len()
    );
    assert_eq!(
        failed, 0,
        "connections refused or failed during the upgrade"
    );
    new.wait_settled(0);
    // Everything stored is delivered, by one process or the other.
    let stored_now = new.metric("clicktap_queue_depth", "") as usize;
    let delivered = || {
        rx.requests()
            .iter()
            .flat_map(native_ids)
            .collect::<HashSet<_>>()
            .len()
    };
    // The load sends as fast as the machine lets it, thousands of clicks, which a debug
    // build on a busy machine delivers at a few hundred a second: the wait ends when
    // delivery stops making progress (an event lost stops it for good), not at a fixed time.
    let (mut seen, mut progressed) = (0, std::time::Instant::now());
    let started = std::time::Instant::now();
    while delivered() < stored_now {
        let now = delivered();
        if now > seen {
            (seen, progressed) = (now, std::time::Instant::now());
        }
        assert!(
            progressed.elapsed() < Duration::from_secs(15)
                && started.elapsed() < Duration::from_secs(300),
            "{} of {stored_now} stored events delivered, none for 15 s; status: {}\n{}",
            delivered(),
            common::http_get(
                new.admin,
                "/api/v1/status",
                &[(
                    "Authorization",
                    &format!("Bearer {}", common::clicktap::TOKEN)
                )]
            )
            .1,
            new.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(new.stop().success(), "{}", new.log_text());
    let stored = stored_paths(&new);
    let lost: Vec<&String> = served.iter().filter(|p| !stored.contains(*p)).collect();
    assert!(
        lost.is_empty(),
        "{} clicks served but not stored: {:?}\n{}",
        lost.len(),
        &lost[..lost.len().min(5)],
        new.log_text()
    );
    assert!(new.log_text().contains("queue open"), "{}", new.log_text());
}

#[test]
fn a_new_geoip_file_on_disk_is_picked_up_by_itself() {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("City.mmdb");
    std::fs::copy(common::test_city_db(), &db).unwrap();
    let o = Options::default()
        .proxy("trusted_proxies = [\"127.0.0.1\"]")
        .enrich("keep_raw_ip = true")
        .geoip(&format!("database = \"{}\"", db.display()))
        .geoip("watch_interval = \"100ms\"");
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let from = "X-Forwarded-For: 81.2.69.142\r\n";
    assert_eq!(ct.click("/r/city", from), 302);
    let first = ct.wait_events(1);
    assert_eq!(
        first[0]["geo"]["country_name"], "United Kingdom",
        "{}",
        first[0]
    );

    // geoipupdate's way: a new file renamed over the old one.
    let flat = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("geo/test/clicktap-test-flat-ipv4.mmdb");
    let tmp = dir.path().join("City.mmdb.tmp");
    std::fs::copy(&flat, &tmp).unwrap();
    std::fs::rename(&tmp, &db).unwrap();
    wait_until("the new file loaded", Duration::from_secs(10), || {
        ct.metric("clicktap_geoip_reloads_total", r#"outcome="success""#) == 1.0
    });
    assert_eq!(ct.click("/r/flat", from), 302);
    let events = ct.wait_events(2);
    let last = events.last().unwrap();
    assert_eq!(last["link"]["path"], "/r/flat");
    assert_eq!(last["geo"]["country_code"], "GB", "{last}");
    assert_eq!(
        last["geo"]["country_name"],
        Value::Null,
        "the flat file has no names: {last}"
    );

    // A file that does not open leaves the one in use.
    std::fs::write(&tmp, b"not a database").unwrap();
    std::fs::rename(&tmp, &db).unwrap();
    wait_until("the failure counted", Duration::from_secs(10), || {
        ct.metric("clicktap_geoip_reloads_total", r#"outcome="failure""#) == 1.0
    });
    assert_eq!(ct.click("/r/still", from), 302);
    let events = ct.wait_events(3);
    assert_eq!(events.last().unwrap()["geo"]["country_code"], "GB");
}

#[test]
fn the_command_line_shows_and_acts_for_people_and_scripts() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook("main", &rx.url("/")));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..3 {
        assert_eq!(ct.click(&format!("/r/cli-{i}"), ""), 302);
    }
    wait_until("delivered", Duration::from_secs(10), || {
        rx.requests().len() == 3
    });
    ct.wait_deliveries("main", 3);

    let (code, out, err) = ct.cli(&["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("clicktap ") && out.contains("main") && out.contains("healthy"),
        "{out}"
    );
    let (code, out, _) = ct.cli(&["status", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["queue"]["depth"], 3);

    let (code, out, _) = ct.cli(&["webhooks", "list"]);
    assert_eq!(code, 0);
    let header = out.lines().next().unwrap();
    assert!(
        header.starts_with("id") && header.contains("format") && header.contains("url"),
        "{out}"
    );
    assert!(out.lines().nth(1).unwrap().starts_with("main"), "{out}");

    let (code, out, _) = ct.cli(&["webhooks", "test", "main"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("delivered: 200"), "{out}");
    assert_eq!(rx.requests().len(), 4);

    let (code, out, _) = ct.cli(&["webhooks", "deliveries", "main", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    // Three clicks' attempts and the test send, marked as one.
    let log = v["deliveries"].as_array().unwrap();
    assert_eq!(log.len(), 4, "{v}");
    assert_eq!(log.iter().filter(|d| d["test"] == true).count(), 1, "{v}");

    let (code, out, err) = ct.cli(&[
        "webhooks",
        "replay",
        "main",
        "--since",
        "0",
        "--until",
        "99999999999999",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    wait_until("replayed", Duration::from_secs(10), || {
        rx.requests().len() == 7
    });

    let (code, out, _) = ct.cli(&["webhooks", "dead-letters", "main"]);
    assert_eq!(code, 0);
    assert!(out.contains("0 in all"), "{out}");
    let (code, _, err) = ct.cli(&["webhooks", "test", "nope"]);
    assert_eq!(code, 2, "clicktap said no");
    assert!(err.contains("404"), "{err}");
}

#[test]
fn sigusr2_upgrades_in_place_to_the_binary_on_disk() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&webhook("w", &rx.url("/")));
    let mut old = Clicktap::start(dir.path(), up.addr, &o);
    let old_pid = old.child.id();
    let load = Load::start(old.proxy, 2);
    wait_more(&load, 30);
    let sent = std::process::Command::new("kill")
        .args(["-USR2", &old_pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    // The old process's child takes over: the admin API answers with a new pid.
    let mut new_pid = 0u64;
    wait_until("the new process serving", Duration::from_secs(60), || {
        let (status, body) = common::http_get(
            old.admin,
            "/api/v1/status",
            &[(
                "Authorization",
                &format!("Bearer {}", common::clicktap::TOKEN),
            )],
        );
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        new_pid = v["pid"].as_u64().unwrap_or(0);
        status == 200 && new_pid != 0 && new_pid != u64::from(old_pid)
    });
    // The new process is no child of this test's: should an assertion below fail, it
    // would outlive the test.
    let _reaper = KillIfPanicking(new_pid);
    wait_until("the old process gone", Duration::from_secs(60), || {
        matches!(old.child.try_wait(), Ok(Some(_)))
    });
    wait_more(&load, 30);
    let (served, failed) = load.finish();
    assert_eq!(
        failed, 0,
        "connections refused or failed during the upgrade"
    );
    // Stopped as systemd would stop it.
    let pid = new_pid.to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_until("the new process stopped", Duration::from_secs(60), || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    });
    // A process shows as a zombie once its main thread is gone, which can be a moment
    // before its last thread lets go of the queue's lock.
    let mut events = Vec::new();
    wait_until("the queue released", Duration::from_secs(10), || {
        match common::clicktap::try_events_cli(&old.config, 1_000_000) {
            Ok(e) => {
                events = e;
                true
            }
            Err(_) => false,
        }
    });
    let stored = paths(&events);
    let lost: Vec<&String> = served.iter().filter(|p| !stored.contains(*p)).collect();
    assert!(
        lost.is_empty(),
        "{} clicks served but not stored\n{}",
        lost.len(),
        old.log_text()
    );
}

#[test]
fn the_log_reads_as_text_and_a_refused_reload_is_a_warning_not_an_error() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .geoip(&format!(
            "database = \"{}\"",
            common::test_city_db().display()
        ))
        .tail(&webhook("keep", &rx.url("/")));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    // A reload that adds a webhook, one refused (invalid), one refused (needs a restart).
    let good = std::fs::read_to_string(&ct.config).unwrap();
    set_tail(
        &ct,
        &format!(
            "{}{}",
            webhook("keep", &rx.url("/")),
            webhook("added", &rx.url("/"))
        ),
    );
    assert_eq!(ct.cli(&["reload"]).0, 0);
    set_tail(
        &ct,
        "[[webhooks]]\nid = \"keep\"\nurl = \"ftp://nowhere/\"\n",
    );
    assert_eq!(ct.cli(&["reload"]).0, 2);
    std::fs::write(
        &ct.config,
        good.replace("[enrich]", "[enrich]\nworkers = 2"),
    )
    .unwrap();
    assert_eq!(ct.cli(&["reload"]).0, 2);

    let log = ct.log_text();
    let line = |what: &str| -> Vec<&str> { log.lines().filter(|l| l.contains(what)).collect() };
    let opened = line("GeoIP database opened");
    assert_eq!(opened.len(), 1, "{log}");
    assert!(
        opened[0].contains("built=20"),
        "a time as RFC 3339: {}",
        opened[0]
    );
    let reloaded = line("configuration reloaded");
    assert_eq!(reloaded.len(), 1, "{log}");
    assert!(
        reloaded[0].contains("added=added") && reloaded[0].contains("removed=none"),
        "{}",
        reloaded[0]
    );
    let refused = line("reload refused");
    assert!(refused.len() >= 2, "{log}");
    assert!(
        refused
            .iter()
            .all(|l| l.contains("WARN") && !l.contains("ERROR")),
        "a refused file is the operator's to fix, not an error:\n{log}"
    );
    // No Rust debug output anywhere: no Option, struct or list syntax.
    for l in log.lines() {
        for debug in [
            "Some(",
            "None,",
            "SystemTime {",
            "Applied {",
            "Rfc3339Timestamp",
            ": []",
        ] {
            assert!(!l.contains(debug), "debug output {debug:?} in {l}");
        }
    }
}
