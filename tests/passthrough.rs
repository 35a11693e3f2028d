//! The proxy is invisible: every answer reaches the visitor as the shortener gave it,
//! and the shortener sees the visitor's request plus the conventional forwarding headers.
//! Every test runs on both forwarding paths (`proxy.forwarding`).

mod common;

use common::{Clicktap, Options, raw_exchange, upstream};

fn request(method: &str, path: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: sho.rt\r\nUser-Agent: test/1\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The answer without `Connection` (hop-by-hop) and `Date`, which each server on the
/// way sets for itself (Pingora as nginx does).
fn end_to_end(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .split("\r\n")
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !l.starts_with("connection:") && !l.starts_with("date:")
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn answers_are_passed_through_byte_for_byte(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    // Just under the 8 KiB a header line may take (proxy.max_request_head / 4).
    let big = format!("X-Big: {}\r\n", "h".repeat(8_000));
    let cases = [
        request("GET", "/r/abc?utm_source=news", "", ""),
        request("GET", "/p/perm", "", ""),
        request("GET", "/cookie", "", ""),
        request("GET", "/ok", "", ""),
        request("GET", "/missing", "", ""),
        request("HEAD", "/r/head", "", ""),
        request("HEAD", "/ok", "", ""),
        request(
            "POST",
            "/echo",
            "Content-Type: text/plain\r\n",
            &"body ".repeat(5000),
        ),
        request("GET", "/ok", &big, ""),
    ];
    for req in &cases {
        let direct = raw_exchange(up.addr, req);
        let proxied = raw_exchange(ct.proxy, req);
        assert!(!direct.is_empty());
        assert_eq!(
            end_to_end(&proxied),
            end_to_end(&direct),
            "request: {}",
            String::from_utf8_lossy(&req[..req.len().min(60)])
        );
    }
}

fn the_upstream_gets_the_request_with_forwarding_headers(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let body = "x=1&y=2";
    raw_exchange(
        ct.proxy,
        &request(
            "POST",
            "/echo?q=1",
            "X-Custom: kept\r\nX-Forwarded-For: 198.51.100.7\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic eDp5\r\n",
            body,
        ),
    );
    let seen = up.wait_for(1, std::time::Duration::from_secs(5));
    let r = seen.last().expect("upstream saw the request");
    assert_eq!(r.method, "POST");
    assert_eq!(r.uri.to_string(), "/echo?q=1");
    assert_eq!(r.headers["host"], "sho.rt");
    assert_eq!(r.headers["x-custom"], "kept");
    assert_eq!(r.headers["user-agent"], "test/1");
    assert_eq!(&r.body[..], body.as_bytes());
    // The client's claim is kept and the real peer appended, as proxies do.
    assert_eq!(r.headers["x-forwarded-for"], "198.51.100.7, 127.0.0.1");
    assert_eq!(r.headers["x-forwarded-proto"], "http");
    // Hop-by-hop fields are the visitor's hop's, not the shortener's.
    for field in ["keep-alive", "proxy-authorization"] {
        assert!(
            !r.headers.contains_key(field),
            "{field} reached the upstream"
        );
    }
}

/// Lines of `X-Forwarded-For` are one list (RFC 9110 section 5.3): the shortener gets
/// one line with every entry, in order, and the peer last, not the first line alone.
fn forwarded_for_lines_reach_the_upstream_as_one_list(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    raw_exchange(
        ct.proxy,
        &request(
            "GET",
            "/r/lines",
            "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 81.2.69.142, 10.1.2.3\r\n",
            "",
        ),
    );
    let seen = up.wait_for(1, std::time::Duration::from_secs(5));
    let r = seen.last().expect("upstream saw the request");
    let lines: Vec<_> = r.headers.get_all("x-forwarded-for").iter().collect();
    assert_eq!(lines, ["6.6.6.6, 81.2.69.142, 10.1.2.3, 127.0.0.1"]);
}

fn upstream_connections_are_reused(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    for i in 0..20 {
        raw_exchange(ct.proxy, &request("GET", &format!("/r/{i}"), "", ""));
    }
    let seen = up.wait_for(20, std::time::Duration::from_secs(5));
    let peers: std::collections::HashSet<_> = seen.iter().map(|s| s.peer).collect();
    assert_eq!(seen.len(), 20);
    assert!(
        peers.len() < 5,
        "20 sequential requests used {} upstream connections",
        peers.len()
    );
}

fn upstream_down_is_a_fast_502_and_no_event(path: &str) {
    let dead = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(
        dir.path(),
        format!("127.0.0.1:{dead}").parse().unwrap(),
        &Options::default().forwarding(path),
    );
    let started = std::time::Instant::now();
    let resp = raw_exchange(ct.proxy, &request("GET", "/r/x", "", ""));
    assert!(
        String::from_utf8_lossy(&resp).starts_with("HTTP/1.1 502"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(ct.metric("clicktap_proxy_requests_total", ""), 1.0);
    assert!(ct.events(10).is_empty());
}

fn the_upstream_can_be_reached_over_tls(path: &str) {
    let up = common::TestServer::start_tls("127.0.0.1:0", upstream::routes());
    let dir = tempfile::tempdir().unwrap();
    // Without the test CA the certificate is untrusted: verification is what an
    // operator may turn off for such an upstream.
    let o = Options::default()
        .forwarding(path)
        .proxy("upstream_tls = true")
        .proxy(r#"upstream_sni = "shortener.test""#)
        .proxy("upstream_verify = false");
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let resp = raw_exchange(ct.proxy, &request("GET", "/r/tls", "", ""));
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 302"), "{text}");
    assert!(text.contains("location: https://example.com/tls"));
    assert_eq!(ct.wait_events(1).len(), 1);
}

fn a_tls_upstream_is_verified_against_the_configured_ca(path: &str) {
    let up = common::TestServer::start_tls("127.0.0.1:0", upstream::routes());
    let dir = tempfile::tempdir().unwrap();
    let ca = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/upstream-ca.pem");
    let o = Options::default()
        .forwarding(path)
        .proxy("upstream_tls = true")
        .proxy(r#"upstream_sni = "shortener.test""#)
        .proxy(&format!("upstream_ca = {:?}", ca.display().to_string()));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let resp = raw_exchange(ct.proxy, &request("GET", "/r/tls", "", ""));
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 302"), "{text}");
    assert_eq!(ct.wait_events(1).len(), 1);
}

fn a_tls_upstream_with_an_untrusted_certificate_is_refused_when_verifying(path: &str) {
    let up = common::TestServer::start_tls("127.0.0.1:0", upstream::routes());
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .forwarding(path)
        .proxy("upstream_tls = true")
        .proxy(r#"upstream_sni = "shortener.test""#);
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let resp = raw_exchange(ct.proxy, &request("GET", "/r/tls", "", ""));
    assert!(String::from_utf8_lossy(&resp).starts_with("HTTP/1.1 502"));
    assert!(ct.events(10).is_empty());
}

on_both_paths!(
    answers_are_passed_through_byte_for_byte,
    the_upstream_gets_the_request_with_forwarding_headers,
    forwarded_for_lines_reach_the_upstream_as_one_list,
    upstream_connections_are_reused,
    upstream_down_is_a_fast_502_and_no_event,
    the_upstream_can_be_reached_over_tls,
    a_tls_upstream_is_verified_against_the_configured_ca,
    a_tls_upstream_with_an_untrusted_certificate_is_refused_when_verifying,
);
