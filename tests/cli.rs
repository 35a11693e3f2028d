//! The command line at its edges, through the real binary: a reader that goes away
//! (`| head -1`), a queue path that does not exist, the exit codes docs/operations.md promises,
//! and requests that cannot mean what they say.

mod common;

use common::receiver;
use common::{Clicktap, Options, upstream, wait_until};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn webhook(id: &str, url: &str, extra: &str) -> String {
    format!("[[webhooks]]\nid = \"{id}\"\nurl = \"{url}\"\n{extra}\n")
}

/// `clicktap ARGS --config FILE` with standard output a pipe whose reading end is
/// already closed: every write to it fails with EPIPE.
fn with_reader_gone(config: &Path, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(common::clicktap::bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// A clicktap with a webhook that delivers and one whose events all become dead
/// letters, and three clicks for each.
fn running(dir: &Path) -> (Clicktap, [common::TestServer; 3]) {
    let up = upstream::start();
    let rx = receiver::ok();
    let failing = receiver::always(500);
    let o = Options::default()
        .tail(&webhook("main", &rx.url("/"), ""))
        .tail(&webhook(
            "dead",
            &failing.url("/"),
            "[webhooks.retry]\nmax_attempts = 1",
        ));
    let ct = Clicktap::start(dir, up.addr, &o);
    for i in 0..3 {
        assert_eq!(ct.click(&format!("/r/cli-{i}"), ""), 302);
    }
    wait_until("dead letters", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_dead_total", "") == 3.0
    });
    ct.wait_deliveries("main", 3);
    (ct, [up, rx, failing])
}

#[test]
fn a_reader_that_goes_away_stops_every_listing_quietly_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let (ct, _servers) = running(dir.path());
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["webhooks", "list"],
        &["webhooks", "list", "--json"],
        &["webhooks", "deliveries", "main"],
        &["webhooks", "dead-letters", "dead"],
        &["webhooks", "messages", "dead"],
        &["webhooks", "messages", "dead", "--json"],
        &["events"],
        &["events", "--table"],
    ] {
        let out = with_reader_gone(&ct.config, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?} said: {err}");
    }
}

#[test]
fn events_on_a_queue_path_that_does_not_exist_says_so_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("nowhere").join("queue");
    let config = dir.path().join("clicktap.toml");
    std::fs::write(
        &config,
        format!("[queue]\npath = \"{}\"\n", queue.display()),
    )
    .unwrap();
    let out = Command::new(common::clicktap::bin())
        .args(["events", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains("no queue at") && err.contains(&queue.display().to_string()),
        "{err}"
    );
    assert!(!queue.exists(), "an empty queue was created");
    assert!(!dir.path().join("nowhere").exists());
}

#[test]
fn clicktap_saying_no_exits_2_and_not_reaching_it_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (ct, _servers) = running(dir.path());
    // 404: an unknown webhook.
    let (code, _, err) = ct.cli(&["webhooks", "test", "nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("404"), "{err}");
    // 400: a time that is not one.
    let (code, _, err) = ct.cli(&[
        "webhooks",
        "replay",
        "main",
        "--since",
        "yesterday",
        "--until",
        "0",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("400") && err.contains("yesterday"), "{err}");
    // 400: a reversed range, with what is wrong with it.
    let (code, out, err) = ct.cli(&[
        "webhooks",
        "replay",
        "main",
        "--since",
        "2026-12-04T11:00:00Z",
        "--until",
        "2026-12-04T10:00:00Z",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("reversed"), "{err}");
    // 401: a wrong token.
    let text = std::fs::read_to_string(&ct.config).unwrap();
    let wrong = dir.path().join("wrong-token.toml");
    std::fs::write(
        &wrong,
        text.replace(common::clicktap::TOKEN, "not-the-admin-token-0000"),
    )
    .unwrap();
    let out = Command::new(common::clicktap::bin())
        .args(["status", "--config"])
        .arg(&wrong)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("401"), "{err}");
    // Nobody listening: 1.
    let port = common::free_port();
    let gone = dir.path().join("gone.toml");
    std::fs::write(
        &gone,
        format!(
            "[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{}\"\n",
            common::clicktap::TOKEN
        ),
    )
    .unwrap();
    let out = Command::new(common::clicktap::bin())
        .args(["status", "--config"])
        .arg(&gone)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dead_letters_with_a_seq_and_no_action_show_only_that_one() {
    let dir = tempfile::tempdir().unwrap();
    let (ct, _servers) = running(dir.path());
    let (code, out, err) = ct.cli(&["webhooks", "dead-letters", "dead", "--json"]);
    assert_eq!(code, 0, "{err}");
    let all: serde_json::Value = serde_json::from_str(&out).unwrap();
    let seqs: Vec<u64> = all["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 3, "{out}");
    let second = seqs[1].to_string();
    let (code, out, err) = ct.cli(&["webhooks", "dead-letters", "dead", "--seq", &second]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(
        rows.len(),
        3,
        "a header, the one dead letter, the total: {out}"
    );
    assert!(rows[1].starts_with(&second), "{out}");
    let (code, out, _) = ct.cli(&[
        "webhooks",
        "dead-letters",
        "dead",
        "--seq",
        &second,
        "--json",
    ]);
    assert_eq!(code, 0);
    let one: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(one["dead_letters"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(one["dead_letters"][0]["seq"], seqs[1]);
    // A seq that is no dead letter: said, exit 2.
    let (code, out, err) = ct.cli(&["webhooks", "dead-letters", "dead", "--seq", "999999"]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("no dead letter with seq 999999"), "{err}");
}

#[test]
fn the_oldest_undelivered_counts_dead_letters_too() {
    let dir = tempfile::tempdir().unwrap();
    let (ct, _servers) = running(dir.path());
    let (code, out, err) = ct.cli(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hook = |id: &str| {
        v["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(hook("dead")["dead_letters"], 3);
    assert_eq!(
        hook("dead")["oldest_undelivered_age_ms"],
        serde_json::Value::Null
    );
    assert!(hook("dead")["oldest_dead_letter_age_ms"].is_u64(), "{v}");
    assert_eq!(
        hook("main")["oldest_dead_letter_age_ms"],
        serde_json::Value::Null
    );
    let listed: serde_json::Value =
        serde_json::from_str(&ct.admin_get("/api/v1/webhooks/dead")).unwrap();
    assert!(listed["oldest_dead_letter_age_ms"].is_u64(), "{listed}");

    let (code, out, _) = ct.cli(&["status"]);
    assert_eq!(code, 0);
    let row = |id: &str| {
        out.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no {id} in {out}"))
            .to_string()
    };
    assert!(row("dead").ends_with("(dead letter)"), "{out}");
    assert!(row("main").ends_with('-'), "{out}");
}

#[test]
fn tables_for_people_show_the_last_success_and_error_and_sizes_in_units() {
    let dir = tempfile::tempdir().unwrap();
    let (ct, _servers) = running(dir.path());
    let (code, out, err) = ct.cli(&["webhooks", "list"]);
    assert_eq!(code, 0, "{err}");
    let header = out.lines().next().unwrap_or_default();
    assert!(
        header.contains("last success") && header.contains("last error"),
        "{out}"
    );
    let row = |id: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no {id} in {out}"))
            .to_string()
    };
    // main delivered and never failed; dead failed every time with a 500.
    assert!(row("main").contains(" ago"), "{out}");
    assert!(!row("main").contains("500"), "{out}");
    assert!(
        row("dead").contains(" ago: ") && row("dead").contains("500"),
        "{out}"
    );
    let (code, out, _) = ct.cli(&["status"]);
    assert_eq!(code, 0);
    let queue = out
        .lines()
        .find(|l| l.starts_with("queue"))
        .unwrap_or_else(|| panic!("no queue line in {out}"));
    assert!(
        queue.ends_with(" B") || queue.contains("iB"),
        "the queue's size in units: {queue}"
    );
}
