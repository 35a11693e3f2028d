//! Upstream connections kept between requests, on both forwarding paths: a visitor
//! never gets an answer meant for another request, a request is sent again only when
//! that is safe, and `upstream_idle_timeout = "0s"` keeps none.

mod common;

use common::upstream::{Conversation, Peer, Scripted};
use common::visitor::{answer, connect, status};
use common::{Clicktap, Options, wait_until};
use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn redirect(to: &str) -> Vec<u8> {
    format!("HTTP/1.1 302 Found\r\nLocation: https://example.com{to}\r\nContent-Length: 0\r\n\r\n")
        .into_bytes()
}

fn get(s: &mut TcpStream, target: &str) -> (String, Vec<u8>) {
    s.write_all(format!("GET {target} HTTP/1.1\r\nHost: sho.rt\r\n\r\n").as_bytes())
        .unwrap();
    answer(s, false).expect("an answer")
}

/// An origin that writes bytes nobody asked for on a kept connection (an unsolicited
/// redirect 50 ms after an answer, a body after a HEAD or 204 answer): the next request
/// on that connection would read them as its answer, and every later one would stay one
/// behind. The connection is dropped instead.
fn bytes_an_upstream_sends_unasked_never_answer_the_next_request(path: &str) {
    let written = Arc::new(AtomicUsize::new(0));
    let w = written.clone();
    let up = Scripted::start(move |p: &mut Peer| {
        while let Some(h) = p.request() {
            let (answer, late): (&[u8], &[u8]) = match h.target() {
                "/extra" => (
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                    b"HTTP/1.1 302 Found\r\nLocation: http://evil.example/stale\r\nContent-Length: 0\r\n\r\n",
                ),
                "/head" => (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"hello"),
                "/nothing" => (b"HTTP/1.1 204 No Content\r\n\r\n", b"stale body"),
                t => {
                    if !p.send(&redirect(t)) {
                        return;
                    }
                    continue;
                }
            };
            if !p.send(answer) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
            if !p.send(late) {
                return;
            }
            w.fetch_add(1, Ordering::SeqCst);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let mut s = connect(ct.proxy);
    for (i, (method, target)) in [("GET", "/extra"), ("HEAD", "/head"), ("GET", "/nothing")]
        .into_iter()
        .enumerate()
    {
        s.write_all(format!("{method} {target} HTTP/1.1\r\nHost: sho.rt\r\n\r\n").as_bytes())
            .unwrap();
        let (head, _) = answer(&mut s, method == "HEAD").expect("an answer");
        assert!(status(&head) == 200 || status(&head) == 204, "{head}");
        wait_until("the late bytes written", Duration::from_secs(5), || {
            written.load(Ordering::SeqCst) > i
        });
        for slug in ["bob", "carol"] {
            let (head, _) = get(&mut s, &format!("/r/{slug}"));
            assert!(
                head.contains(&format!("location: https://example.com/r/{slug}")),
                "after {method} {target}: {head}"
            );
        }
    }
    let events = ct.wait_events(6);
    assert!(events.iter().all(|e| !e.to_string().contains("evil")));
}

/// An origin that misbehaves on a kept connection in every way a request can fail
/// after it was sent. A request is sent again only when it is idempotent (or carries
/// `Idempotency-Key`) and the reused connection closed before any byte of an answer;
/// never after a timeout, an invalid answer or a 101, and a POST never.
fn a_request_is_sent_again_only_when_idempotent_and_unanswered(path: &str) {
    // Each misbehaviour happens the first time a target is heard; later (a request
    // sent again) it is answered.
    let heard = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let up = Scripted::start(move |p: &mut Peer| {
        while let Some(h) = p.request() {
            let t = h.target().to_string();
            let answer: &[u8] = match t.as_str() {
                _ if !heard.lock().unwrap().insert(t.clone()) => &redirect(&t),
                "/slow" => {
                    std::thread::sleep(Duration::from_secs(3));
                    return;
                }
                "/nul" => b"HTTP/1.1 200 OK\r\nX-Bad: a\0b\r\nContent-Length: 0\r\n\r\n",
                "/switch" => b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
                "/cut" => {
                    p.send(b"HTTP/1.1 200 O");
                    return;
                }
                t if t.starts_with("/close") => return,
                _ => &redirect(&t),
            };
            if !p.send(answer) {
                return;
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .forwarding(path)
        .proxy(r#"upstream_read_timeout = "500ms""#);
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let cases = [
        ("POST", "/close1", "", 502, 1),
        ("POST", "/close2", "Idempotency-Key: k1\r\n", 302, 2),
        ("GET", "/close3", "", 302, 2),
        ("GET", "/slow", "", 502, 1),
        ("GET", "/nul", "", 502, 1),
        ("GET", "/switch", "", 502, 1),
        ("GET", "/cut", "", 502, 1),
    ];
    let mut warm = 0;
    for (method, target, extra, want, times) in cases {
        let before = up.heard_for(target);
        let mut s = connect(ct.proxy);
        // A first request, so that the next goes on a reused upstream connection.
        warm += 1;
        let (head, _) = get(&mut s, &format!("/r/warm{warm}"));
        assert_eq!(status(&head), 302, "{head}");
        let body = if method == "POST" { "abc" } else { "" };
        let req = format!(
            "{method} {target} HTTP/1.1\r\nHost: sho.rt\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let (head, _) = answer(&mut s, false).expect("an answer");
        assert_eq!(status(&head), want, "{method} {target} {extra}: {head}");
        assert_eq!(
            up.heard_for(target) - before,
            times,
            "{method} {target} {extra}: times the upstream got it"
        );
    }
}

/// `upstream_idle_timeout = "0s"`: no upstream connection is reused.
fn no_upstream_connection_is_reused_at_idle_timeout_zero(path: &str) {
    let up = Conversation::start(100, |h| Some(redirect(h.target())));
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .forwarding(path)
        .proxy(r#"upstream_idle_timeout = "0s""#);
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let mut s = connect(ct.proxy);
    for i in 0..3 {
        let (head, _) = get(&mut s, &format!("/r/z{i}"));
        assert_eq!(status(&head), 302, "{head}");
    }
    let mut s = connect(ct.proxy);
    let (head, _) = get(&mut s, "/r/z3");
    assert_eq!(status(&head), 302, "{head}");
    assert_eq!(up.connections(), 4, "one upstream connection per request");
}

/// An interim answer, then the upstream closes: the visitor still gets a final status
/// (502), as from the full proxy.
fn an_interim_answer_then_an_upstream_failure_is_a_502(path: &str) {
    let up = Scripted::start(|p: &mut Peer| {
        if p.request().is_some() {
            p.send(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n");
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let mut s = connect(ct.proxy);
    s.write_all(b"GET /page HTTP/1.1\r\nHost: sho.rt\r\n\r\n")
        .unwrap();
    let (head, _) = answer(&mut s, false).expect("the interim answer");
    assert_eq!(status(&head), 103, "{head}");
    let (head, _) = answer(&mut s, false).expect("a final answer");
    assert_eq!(status(&head), 502, "{head}");
    assert_eq!(up.heard().len(), 1);
}

on_both_paths!(
    bytes_an_upstream_sends_unasked_never_answer_the_next_request,
    a_request_is_sent_again_only_when_idempotent_and_unanswered,
    no_upstream_connection_is_reused_at_idle_timeout_zero,
    an_interim_answer_then_an_upstream_failure_is_a_502,
);
