//! The HTTP/1.1 cases a forwarding path most often gets wrong, over raw sockets against
//! the real binary and real upstreams: bodies framed both ways, interim answers, HEAD,
//! request smuggling, connections closed or reset on either side, upstream keep-alive
//! limits and timeouts. Every test runs on both forwarding paths (`proxy.forwarding`);
//! on the lean one, `clicktap_proxy_full_path_requests_total` shows which requests it
//! handed to the full proxy.

mod common;

use common::upstream::{self, Conversation, Heard};
use common::visitor::{answer, closed, connect, status};
use common::{Clicktap, Options, wait_until};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn full_path(ct: &Clicktap) -> f64 {
    ct.metric("clicktap_proxy_full_path_requests_total", "")
}

fn chunked_bodies_reach_the_upstream_and_the_visitor(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let mut s = connect(ct.proxy);
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: sho.rt\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .unwrap();
    let (head, body) = answer(&mut s, false).expect("an answer");
    assert_eq!(status(&head), 200, "{head}");
    assert_eq!(body, b"hello world");
    let seen = up.wait_for(1, Duration::from_secs(5));
    assert_eq!(&seen[0].body[..], b"hello world");
    // The same connection goes on: a plain request after the chunked one.
    s.write_all(b"GET /r/after HTTP/1.1\r\nHost: sho.rt\r\n\r\n")
        .unwrap();
    let (head, _) = answer(&mut s, false).expect("a second answer");
    assert_eq!(status(&head), 302, "{head}");
    if path == "lean" {
        assert_eq!(full_path(&ct), 1.0, "the chunked request, and only it");
    }

    // A chunked answer from the shortener reaches the visitor whole.
    let raw = Conversation::start(100, |_| {
        Some(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              4\r\nclic\r\n7\r\nk, tap!\r\n0\r\n\r\n"
                .to_vec(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), raw.addr, &Options::default().forwarding(path));
    let mut s = connect(ct.proxy);
    for _ in 0..3 {
        s.write_all(b"GET /page HTTP/1.1\r\nHost: sho.rt\r\n\r\n")
            .unwrap();
        let (head, body) = answer(&mut s, false).expect("an answer");
        assert_eq!(status(&head), 200, "{head}");
        assert_eq!(body, b"click, tap!");
    }
}

fn bodies_of_any_size_arrive_whole(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let mut s = connect(ct.proxy);
    // Under and over the largest body the lean path forwards itself (64 KiB).
    for len in [1usize, 64 * 1024, 64 * 1024 + 1, 1 << 20] {
        let body: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let head = format!("POST /echo HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: {len}\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&body).unwrap();
        let (head, echoed) = answer(&mut s, false).expect("an answer");
        assert_eq!(status(&head), 200, "{len}: {head}");
        assert!(echoed == body, "{len}: the body came back changed");
    }
    if path == "lean" {
        assert_eq!(full_path(&ct), 2.0, "the two bodies over 64 KiB");
    }
}

fn expect_100_continue_is_answered_and_the_body_forwarded(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let mut s = connect(ct.proxy);
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: sho.rt\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n",
    )
    .unwrap();
    // The interim answer comes before the body is sent.
    let (head, _) = answer(&mut s, false).expect("an interim answer");
    assert_eq!(status(&head), 100, "{head}");
    s.write_all(b"body here").unwrap();
    let (head, body) = answer(&mut s, false).expect("the final answer");
    assert_eq!(status(&head), 200, "{head}");
    assert_eq!(body, b"body here");
    assert_eq!(
        &up.wait_for(1, Duration::from_secs(5))[0].body[..],
        b"body here"
    );
}

fn head_answers_keep_their_content_length_and_carry_no_body(path: &str) {
    let up = Conversation::start(100, |h: &Heard| {
        let body = if h.head.starts_with("HEAD") {
            ""
        } else {
            "hello"
        };
        Some(format!("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{body}").into_bytes())
    });
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let mut s = connect(ct.proxy);
    // HEAD then GET on one connection: a proxy that waits for HEAD's five bytes hangs,
    // one that reads them from the next answer garbles it.
    for (method, want) in [
        ("HEAD", ""),
        ("GET", "hello"),
        ("HEAD", ""),
        ("GET", "hello"),
    ] {
        s.write_all(format!("{method} /page HTTP/1.1\r\nHost: sho.rt\r\n\r\n").as_bytes())
            .unwrap();
        let (head, body) = answer(&mut s, method == "HEAD").expect("an answer");
        assert_eq!(status(&head), 200, "{method}: {head}");
        assert!(head.contains("content-length: 5"), "{method}: {head}");
        assert_eq!(body, want.as_bytes(), "{method}");
    }
}

/// Requests whose framing two parsers could read differently. Whatever clicktap answers,
/// the shortener never sees the request hidden in the body.
fn smuggling_attempts_never_reach_the_upstream_as_requests(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let hidden = "GET /r/smuggled HTTP/1.1\r\nHost: sho.rt\r\n\r\n";
    let attempts = [
        // Content-Length and Transfer-Encoding: chunked wins; the connection is closed.
        format!(
            "POST /echo HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}"
        ),
        // Two Content-Lengths that disagree.
        format!(
            "POST /echo HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n{hidden}",
            hidden.len()
        ),
        // A Content-Length list.
        format!(
            "POST /echo HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 0, {}\r\n\r\n{hidden}",
            hidden.len()
        ),
        // An obsolete folded line hiding a Content-Length.
        format!(
            "POST /echo HTTP/1.1\r\nHost: sho.rt\r\nX-Folded: a\r\n Content-Length: 0\r\nContent-Length: {}\r\n\r\n{hidden}",
            hidden.len()
        ),
        // Transfer-Encoding the upstream might not read as chunked.
        format!(
            "POST /echo HTTP/1.1\r\nHost: sho.rt\r\nTransfer-Encoding: xchunked\r\n\r\n{hidden}"
        ),
    ];
    for a in &attempts {
        let mut s = connect(ct.proxy);
        s.write_all(a.as_bytes()).unwrap();
        // Every answer on the connection, until clicktap closes it.
        let mut statuses = Vec::new();
        while let Some((head, _)) = answer(&mut s, false) {
            statuses.push(status(&head));
        }
        assert!(statuses.len() <= 1, "{a:?}: answers {statuses:?}");
        assert!(
            up.requests().iter().all(|r| r.uri.path() != "/r/smuggled"),
            "{a:?} smuggled a request through; answers {statuses:?}"
        );
    }
    // Nothing was captured from a hidden request either.
    let events = ct.events(100);
    assert!(events.iter().all(|e| e["link"]["path"] != "/r/smuggled"));
}

fn a_visitor_that_half_closes_or_resets_changes_nothing_for_others(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    // Half-closed after the request: the lean path answers it (RFC 9112 section 9.6),
    // pingora-proxy gives the request up; either way the connection is closed, at once.
    let mut s = connect(ct.proxy);
    s.write_all(b"GET /r/half HTTP/1.1\r\nHost: sho.rt\r\n\r\n")
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    if path == "lean" {
        let (head, _) = answer(&mut s, false).expect("an answer to a half-closed request");
        assert_eq!(status(&head), 302, "{head}");
    }
    assert!(closed(&mut s), "clicktap closes its side");
    // Reset in the middle of a request body and right after a request.
    for request in [
        &b"POST /echo HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 1000\r\n\r\npartial"[..],
        &b"GET /r/reset HTTP/1.1\r\nHost: sho.rt\r\n\r\n"[..],
    ] {
        let mut s = connect(ct.proxy);
        s.write_all(request).unwrap();
        reset_on_close(&s);
        drop(s);
    }
    // Others are served as before, the same upstream connections included.
    for i in 0..5 {
        let mut s = connect(ct.proxy);
        s.write_all(format!("GET /r/next{i} HTTP/1.1\r\nHost: sho.rt\r\n\r\n").as_bytes())
            .unwrap();
        let (head, _) = answer(&mut s, false).expect("an answer after the resets");
        assert_eq!(status(&head), 302, "{head}");
    }
}

/// `SO_LINGER` 0: closing the socket sends a reset, not a FIN.
fn reset_on_close(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and an option value of the size given.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt SO_LINGER");
}

fn an_upstream_that_ends_mid_answer_is_a_closed_connection_not_a_hang(path: &str) {
    // Each connection answers once: `/cut` promises 100 bytes, sends 5 and closes.
    let up = Conversation::start(1, |h: &Heard| {
        Some(if h.head.starts_with("GET /cut") {
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello".to_vec()
        } else {
            b"HTTP/1.1 302 Found\r\nLocation: https://example.com/\r\nContent-Length: 0\r\n\r\n"
                .to_vec()
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let started = Instant::now();
    let mut s = connect(ct.proxy);
    s.write_all(b"GET /cut HTTP/1.1\r\nHost: sho.rt\r\n\r\n")
        .unwrap();
    // The head and what came of the body, then the visitor's connection is closed.
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("hello"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let mut s = connect(ct.proxy);
    s.write_all(b"GET /r/after HTTP/1.1\r\nHost: sho.rt\r\n\r\n")
        .unwrap();
    let (head, _) = answer(&mut s, false).expect("an answer");
    assert_eq!(status(&head), 302, "{head}");
}

fn upstream_keep_alive_limits_and_closed_idle_connections_are_not_errors(path: &str) {
    // Closes every connection after two answers, without saying so.
    let up = Conversation::start(2, |_| {
        Some(
            b"HTTP/1.1 302 Found\r\nLocation: https://example.com/k\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let mut s = connect(ct.proxy);
    for i in 0..10 {
        s.write_all(format!("GET /r/k{i} HTTP/1.1\r\nHost: sho.rt\r\n\r\n").as_bytes())
            .unwrap();
        let (head, _) = answer(&mut s, false).expect("an answer");
        assert_eq!(status(&head), 302, "request {i}: {head}");
    }
    assert_eq!(
        up.heard().len(),
        10,
        "each request reached the upstream once"
    );
    assert!(up.connections() >= 5, "{} connections", up.connections());
    assert_eq!(ct.wait_events(10).len(), 10);

    // Says `Connection: close` on every answer.
    let up = Conversation::start(1, |_| {
        Some(b"HTTP/1.1 302 Found\r\nLocation: https://example.com/c\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec())
    });
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let mut s = connect(ct.proxy);
    for i in 0..5 {
        s.write_all(format!("GET /r/c{i} HTTP/1.1\r\nHost: sho.rt\r\n\r\n").as_bytes())
            .unwrap();
        let (head, _) = answer(&mut s, false).expect("an answer");
        assert_eq!(status(&head), 302, "request {i}: {head}");
    }
    assert_eq!(up.connections(), 5);
}

fn an_upstream_that_never_answers_is_a_502_within_the_read_timeout(path: &str) {
    let up = Conversation::start(100, |_| {
        std::thread::sleep(Duration::from_secs(5));
        None
    });
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .forwarding(path)
        .proxy(r#"upstream_read_timeout = "300ms""#);
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let started = Instant::now();
    let mut s = connect(ct.proxy);
    s.write_all(b"GET /r/slow HTTP/1.1\r\nHost: sho.rt\r\n\r\n")
        .unwrap();
    let (head, _) = answer(&mut s, false).expect("an answer");
    assert_eq!(status(&head), 502, "{head}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    wait_until("the request counted", Duration::from_secs(5), || {
        ct.metric("clicktap_proxy_requests_total", "") == 1.0
    });
    assert!(ct.events(10).is_empty());
}

fn pipelined_requests_are_answered_in_order(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let mut s = connect(ct.proxy);
    s.write_all(
        b"GET /r/one HTTP/1.1\r\nHost: sho.rt\r\n\r\n\
          POST /echo HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 3\r\n\r\nabc\
          GET /r/three HTTP/1.1\r\nHost: sho.rt\r\n\r\n",
    )
    .unwrap();
    let mut answers = Vec::new();
    while let Some(a) = answer(&mut s, false) {
        answers.push(a);
        if answers.len() == 3 {
            break;
        }
    }
    // The first is always answered. pingora-proxy closes a connection that sent more
    // than one request at once; the lean path answers each, in order.
    let (head, _) = &answers[0];
    assert!(head.contains("location: https://example.com/one"), "{head}");
    if path == "lean" {
        assert_eq!(answers.len(), 3);
        assert_eq!(answers[1].1, b"abc");
        assert!(answers[2].0.contains("location: https://example.com/three"));
        wait_until("three requests", Duration::from_secs(5), || {
            up.requests().len() == 3
        });
    }
}

on_both_paths!(
    chunked_bodies_reach_the_upstream_and_the_visitor,
    bodies_of_any_size_arrive_whole,
    expect_100_continue_is_answered_and_the_body_forwarded,
    head_answers_keep_their_content_length_and_carry_no_body,
    smuggling_attempts_never_reach_the_upstream_as_requests,
    a_visitor_that_half_closes_or_resets_changes_nothing_for_others,
    an_upstream_that_ends_mid_answer_is_a_closed_connection_not_a_hang,
    upstream_keep_alive_limits_and_closed_idle_connections_are_not_errors,
    an_upstream_that_never_answers_is_a_502_within_the_read_timeout,
    pipelined_requests_are_answered_in_order,
);
