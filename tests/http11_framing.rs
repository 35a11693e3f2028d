//! How answers are framed for the visitor, on both forwarding paths: an answer with no
//! length of its own, and HTTP/1.0 visitors, who read neither chunks nor interim
//! answers (RFC 9112 section 6.1, RFC 9110 section 15.2).

mod common;

use common::upstream::{Peer, Scripted};
use common::visitor::{answer, connect, status};
use common::{Clicktap, Options};
use std::io::{Read, Write};
use std::time::Duration;

/// Answers by target: `/unframed` a body ended by the close, `/chunked` a chunked body,
/// `/trailers` one with trailers, `/hints` a 103 before a 200, anything else a 302.
fn odd_upstream() -> Scripted {
    Scripted::start(|p: &mut Peer| {
        while let Some(h) = p.request() {
            let answer: &[u8] = match h.target() {
                "/unframed" => {
                    p.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nno length here");
                    return;
                }
                "/chunked" => {
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nclic\r\n7\r\nk, tap!\r\n0\r\n\r\n"
                }
                "/trailers" => {
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\n"
                }
                "/hints" => {
                    b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                }
                _ => b"HTTP/1.1 302 Found\r\nLocation: https://example.com/\r\nContent-Length: 0\r\n\r\n",
            };
            if !p.send(answer) {
                return;
            }
        }
    })
}

/// An answer with neither `Content-Length` nor chunking reaches an HTTP/1.1 visitor
/// chunked (or said to close), never labelled keep-alive with nothing to say where it
/// ends; the visitor's connection goes on.
fn an_unframed_answer_is_chunked_for_http11_visitors(path: &str) {
    let up = odd_upstream();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let mut s = connect(ct.proxy);
    s.write_all(b"GET /unframed HTTP/1.1\r\nHost: sho.rt\r\n\r\n")
        .unwrap();
    let (head, body) = answer(&mut s, false).expect("an answer");
    assert_eq!(status(&head), 200, "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert_eq!(body, b"no length here");
    s.write_all(b"GET /r/next HTTP/1.1\r\nHost: sho.rt\r\n\r\n")
        .unwrap();
    let (head, _) = answer(&mut s, false).expect("the next answer on the connection");
    assert_eq!(status(&head), 302, "{head}");
}

/// An HTTP/1.0 visitor gets no chunks and no interim answer: a chunked or unframed body
/// decoded and ended by the close, as nginx sends it.
fn http10_visitors_get_neither_chunks_nor_interim_answers(path: &str) {
    let up = odd_upstream();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    for (target, body) in [
        ("/chunked", "click, tap!"),
        ("/unframed", "no length here"),
        ("/hints", "ok"),
    ] {
        let mut s = connect(ct.proxy);
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(format!("GET {target} HTTP/1.0\r\nHost: sho.rt\r\n\r\n").as_bytes())
            .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("the answer, then the close");
        let text = String::from_utf8_lossy(&raw);
        let (head, got) = text.split_once("\r\n\r\n").expect("a head");
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{target}: {text}");
        assert!(!head.contains("transfer-encoding"), "{target}: {text}");
        assert!(!text.contains(" 103 "), "{target}: {text}");
        assert_eq!(got, body, "{target}: {text}");
    }
}

/// A chunked answer with trailers ends once: the next answer on the connection is
/// whole.
fn a_chunked_answer_with_trailers_ends_once(path: &str) {
    let up = odd_upstream();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let mut s = connect(ct.proxy);
    for _ in 0..2 {
        s.write_all(b"GET /trailers HTTP/1.1\r\nHost: sho.rt\r\n\r\n")
            .unwrap();
        let (head, body) = answer(&mut s, false).expect("an answer");
        assert_eq!(status(&head), 200, "{head}");
        assert_eq!(body, b"hello");
        s.write_all(b"GET /r/next HTTP/1.1\r\nHost: sho.rt\r\n\r\n")
            .unwrap();
        let (head, _) = answer(&mut s, false).expect("the next answer");
        assert_eq!(status(&head), 302, "{head}");
    }
}

on_both_paths!(
    a_chunked_answer_with_trailers_ends_once,
    an_unframed_answer_is_chunked_for_http11_visitors,
    http10_visitors_get_neither_chunks_nor_interim_answers,
);
