//! A graceful stop loses nothing, and a restart carries on where it stopped.

mod common;

use common::{Clicktap, Options, events_cli, upstream};

#[test]
fn sigterm_and_sigint_stop_gracefully_and_lose_nothing() {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    // A long flush interval: only the graceful stop's own flush makes these durable.
    let o = Options::default().queue(r#"flush_interval = "1h""#);
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..300 {
        assert_eq!(ct.click(&format!("/r/first-{i}"), ""), 302);
    }
    let status = ct.stop();
    assert!(status.success(), "exit {status}:\n{}", ct.log_text());
    let config = ct.config.clone();
    let first = events_cli(&config, 10_000);
    assert_eq!(first.len(), 300);

    // A restart on the same queue continues it; SIGINT is as graceful as SIGTERM.
    let mut ct = Clicktap::start_with(config.clone(), ct.proxy, ct.admin, dir.path());
    for i in 0..200 {
        assert_eq!(ct.click(&format!("/r/second-{i}"), ""), 302);
    }
    let status = ct.signal_and_wait("-INT");
    assert!(status.success(), "exit {status}:\n{}", ct.log_text());
    let all = events_cli(&config, 10_000);
    assert_eq!(all.len(), 500);
    // Oldest first, the first run's events before the second's, every id distinct.
    assert!(
        all[..300]
            .iter()
            .all(|e| e["link"]["path"].as_str().unwrap().starts_with("/r/first-"))
    );
    assert!(all[300..].iter().all(|e| {
        e["link"]["path"]
            .as_str()
            .unwrap()
            .starts_with("/r/second-")
    }));
    let ids: std::collections::HashSet<_> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 500);
    assert!(
        ct.log_text().contains("next_seq=500") || ct.log_text().contains("next_seq\":500"),
        "{}",
        ct.log_text()
    );
}

#[test]
fn events_can_be_read_while_clicktap_runs() {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default());
    assert_eq!(ct.click("/r/live", ""), 302);
    ct.wait_events(1);
    let events = events_cli(&ct.config, 10);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["link"]["path"], "/r/live");
}
