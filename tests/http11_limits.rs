//! What a visitor may send, on both forwarding paths: a head whole within
//! `proxy.request_timeout` of its first byte and no larger than
//! `proxy.max_request_head` (nginx's defaults: 60 s, 4 x 8 KiB), a body whole before the
//! shortener hears of its request, and only requests nginx would take: anything else is
//! refused before a byte reaches the shortener.

mod common;

use common::upstream::{self, Conversation};
use common::visitor::{answer, closed, connect, status};
use common::{Clicktap, Options, wait_until};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Writes `bytes` one at a time, `every` apart, on a thread of its own, until done or
/// the connection is gone.
fn trickle(s: &TcpStream, bytes: &[u8], every: Duration) -> std::thread::JoinHandle<()> {
    let mut s = s.try_clone().unwrap();
    let bytes = bytes.to_vec();
    std::thread::spawn(move || {
        for b in bytes {
            std::thread::sleep(every);
            if s.write_all(&[b]).is_err() {
                return;
            }
        }
    })
}

/// A head trickled in, whether short or sent 97 lines at once first, is closed at
/// `request_timeout` after its first byte, however steadily its bytes come; nothing
/// reaches the shortener.
fn a_trickled_head_is_closed_at_its_deadline(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .forwarding(path)
        .proxy(r#"request_timeout = "1s""#);
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let lines: String = (0..97).map(|i| format!("X-{i}: v\r\n")).collect();
    for start in [
        "GET /r/slow HTTP/1.1\r\nHost: sho.rt\r\n".to_string(),
        format!("GET /r/slow HTTP/1.1\r\nHost: sho.rt\r\n{lines}"),
    ] {
        let mut s = connect(ct.proxy);
        let started = Instant::now();
        s.write_all(start.as_bytes()).unwrap();
        // 8 s of bytes, one every 200 ms, never the head's end.
        let _t = trickle(&s, &[b'a'; 40], Duration::from_millis(200));
        assert!(closed(&mut s), "the connection is closed");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "closed after {:?}",
            started.elapsed()
        );
    }
    assert!(up.requests().is_empty());
}

/// A request line or header line over a quarter of `max_request_head` (8 KiB at the
/// default 32 KiB), or a head over it, is refused (414 or 431) and never forwarded.
fn a_head_over_the_size_limit_is_refused(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let long = "v".repeat(9000);
    let lines: String = (0..8)
        .map(|i| format!("X-{i}: {}\r\n", "w".repeat(5000)))
        .collect();
    for (head, want) in [
        (
            format!("GET /r/{long} HTTP/1.1\r\nHost: sho.rt\r\n\r\n"),
            414,
        ),
        (
            format!("GET /r/a HTTP/1.1\r\nHost: sho.rt\r\nX-Long: {long}\r\n\r\n"),
            431,
        ),
        (
            format!("GET /r/a HTTP/1.1\r\nHost: sho.rt\r\n{lines}\r\n"),
            431,
        ),
    ] {
        let mut s = connect(ct.proxy);
        s.write_all(head.as_bytes()).unwrap();
        let (got, _) = answer(&mut s, false).expect("an answer");
        assert_eq!(status(&got), want, "{got}");
        assert!(closed(&mut s));
    }
    // Just under the limits, forwarded.
    let fits: String = (0..5)
        .map(|i| format!("X-{i}: {}\r\n", "w".repeat(5000)))
        .collect();
    let mut s = connect(ct.proxy);
    s.write_all(format!("GET /r/fits HTTP/1.1\r\nHost: sho.rt\r\n{fits}\r\n").as_bytes())
        .unwrap();
    let (got, _) = answer(&mut s, false).expect("an answer");
    assert_eq!(status(&got), 302, "{got}");
    assert_eq!(up.requests().len(), 1, "only the head that fits");
}

/// A body is read whole before the shortener hears of its request, within
/// `request_timeout` of the head's first byte: a visitor trickling a body holds no
/// upstream connection and gets a 408 at the deadline.
fn a_trickled_body_holds_no_upstream_connection_and_ends_in_408(path: &str) {
    let up = Conversation::start(100, |_| {
        Some(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec())
    });
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .forwarding(path)
        .proxy(r#"request_timeout = "1s""#);
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let mut s = connect(ct.proxy);
    let started = Instant::now();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 40\r\n\r\nx")
        .unwrap();
    let _t = trickle(&s, &[b'a'; 39], Duration::from_millis(200));
    let (head, _) = answer(&mut s, false).expect("an answer");
    assert_eq!(status(&head), 408, "{head}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(up.connections(), 0, "the shortener heard nothing of it");
    // A whole body goes through.
    let mut s = connect(ct.proxy);
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 3\r\n\r\nabc")
        .unwrap();
    let (head, _) = answer(&mut s, false).expect("an answer");
    assert_eq!(status(&head), 200, "{head}");
    assert_eq!(up.heard()[0].body, b"abc");
}

/// A pipelined head split across reads, its rest arriving after the upstream
/// connection's 2 s hold, is answered: the hold's end never closes the visitor's
/// connection. (pingora-proxy closes a connection that sent more than one request at
/// once: the lean path only.)
fn a_pipelined_head_split_across_reads_is_answered_after_the_hold(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let mut s = connect(ct.proxy);
    s.write_all(b"GET /r/one HTTP/1.1\r\nHost: sho.rt\r\n\r\nGET /r/tw")
        .unwrap();
    let (head, _) = answer(&mut s, false).expect("the first answer");
    assert!(head.contains("location: https://example.com/one"), "{head}");
    if path == "full" {
        return;
    }
    // Time passing is what is tested: the hold is 2 s.
    std::thread::sleep(Duration::from_secs(3));
    s.write_all(b"o HTTP/1.1\r\nHost: sho.rt\r\n\r\n").unwrap();
    let (head, _) = answer(&mut s, false).expect("the second answer");
    assert!(head.contains("location: https://example.com/two"), "{head}");
}

/// Requests nginx refuses with 400 are refused before anything reaches the shortener;
/// an absolute-form target reaches it in origin form, with its authority as Host.
fn invalid_requests_are_refused_before_the_upstream(path: &str) {
    let up = Conversation::start(100, |_| {
        Some(
            b"HTTP/1.1 302 Found\r\nLocation: https://example.com/\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    for req in [
        "GET /r/a HTTP/1.1\r\nHost: sho.rt x\r\n\r\n",
        "GET /r/a HTTP/1.1\r\nHost: sho.rt/phish\r\n\r\n",
        "GET /r/a HTTP/1.1\r\n\r\n",
        "GET /r/a HTTP/1.1\r\nHost: sho.rt\r\nHost: sho.rt\r\n\r\n",
        "POST /r/a HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "POST /r/a HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 3, 3\r\n\r\nabc",
        "POST /r/a HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET  /ok  HTTP/1.1\r\nHost: sho.rt\r\n\r\n",
    ] {
        let mut s = connect(ct.proxy);
        s.write_all(req.as_bytes()).unwrap();
        let (head, _) = answer(&mut s, false).expect("an answer");
        assert_eq!(status(&head), 400, "{req:?}: {head}");
        assert!(closed(&mut s), "{req:?}");
    }
    assert!(up.heard().is_empty(), "{:?}", up.heard());
    let mut s = connect(ct.proxy);
    s.write_all(b"GET http://sho.rt/r/abs?a=1 HTTP/1.1\r\nHost: sho.rt\r\n\r\n")
        .unwrap();
    let (head, _) = answer(&mut s, false).expect("an answer");
    assert_eq!(status(&head), 302, "{head}");
    wait_until("the request heard", Duration::from_secs(5), || {
        up.heard().len() == 1
    });
    let heard = &up.heard()[0];
    assert!(
        heard.head.starts_with("GET /r/abs?a=1 HTTP/1.1\r\n"),
        "{}",
        heard.head
    );
    assert!(heard.head.to_ascii_lowercase().contains("host: sho.rt\r\n"));
    let _ = s.read(&mut [0u8; 1]);
}

on_both_paths!(
    a_trickled_head_is_closed_at_its_deadline,
    a_head_over_the_size_limit_is_refused,
    a_trickled_body_holds_no_upstream_connection_and_ends_in_408,
    a_pipelined_head_split_across_reads_is_answered_after_the_hold,
    invalid_requests_are_refused_before_the_upstream,
);
