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

/// Connections waiting in the listening socket's queue to be accepted, from
/// /proc/net/tcp (a listening socket's `rx_queue`); `None` when it is not listening.
fn accept_backlog(port: u16) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let local_port = u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok()?;
        (local_port == port && f[3] == "0A")
            .then(|| u32::from_str_radix(f[4].split(':').nth(1)?, 16).ok())?
    })
}

/// A visitor whose connection clicktap accepted gets an answer even when a stop begins
/// before the request arrives: the lean path reads the first request of every
/// connection. (pingora-proxy, `proxy.forwarding = "full"`, closes such a connection
/// unanswered; kept-alive connections waiting for a next request are closed on either
/// path, and their answers during a stop say `Connection: close`.)
#[test]
fn a_connection_accepted_before_a_stop_is_answered() {
    use std::io::{Read, Write};
    use std::time::Duration;
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().proxy(r#"grace_period = "2s""#);
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    let mut s = std::net::TcpStream::connect(ct.proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    common::wait_until("the connection accepted", Duration::from_secs(5), || {
        accept_backlog(ct.proxy.port()) == Some(0)
    });
    let pid = ct.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    // The stop has begun once the listener is gone.
    common::wait_until("the listener closed", Duration::from_secs(5), || {
        std::net::TcpStream::connect(ct.proxy).is_err()
    });
    s.write_all(b"GET /r/late HTTP/1.1\r\nHost: sho.rt\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 302"), "{text:?}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    let status = ct.child.wait().unwrap();
    assert!(status.success(), "exit {status}:\n{}", ct.log_text());
    let events = events_cli(&ct.config, 10);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["link"]["path"], "/r/late");
}
