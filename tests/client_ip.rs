//! Whose click it was: the socket peer, or a trusted proxy's X-Forwarded-For; IPv4
//! and IPv6 alike, anonymised by default.
//! Every test runs on both forwarding paths (`proxy.forwarding`).

mod common;

use common::{Clicktap, Options, upstream};

fn forwarded_for_is_ignored_from_untrusted_peers(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    ct.click(
        "/r/x",
        "X-Forwarded-For: 81.2.69.142\r\nX-Real-IP: 81.2.69.143\r\n",
    );
    let e = &ct.wait_events(1)[0];
    assert_eq!(e["client"]["ip"], "127.0.0.0");
    assert_eq!(e["client"]["ip_source"], "socket");
}

fn forwarded_for_is_honoured_from_trusted_peers(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .forwarding(path)
        .proxy(r#"trusted_proxies = ["127.0.0.0/8", "10.0.0.0/8"]"#)
        .enrich("keep_raw_ip = true");
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    // The client forged the first entry; 10.1.2.3 is an internal hop we trust.
    ct.click(
        "/r/a",
        "X-Forwarded-For: 6.6.6.6, 81.2.69.142, 10.1.2.3\r\nX-Forwarded-Proto: https\r\n",
    );
    ct.click("/r/b", "X-Real-IP: 89.160.20.112\r\n");
    let events = ct.wait_events(2);
    let a = events.iter().find(|e| e["link"]["path"] == "/r/a").unwrap();
    assert_eq!(a["client"]["raw_ip"], "81.2.69.142");
    assert_eq!(a["client"]["ip"], "81.2.69.0");
    assert_eq!(a["client"]["ip_source"], "x-forwarded-for");
    assert_eq!(a["link"]["scheme"], "https");
    let b = events.iter().find(|e| e["link"]["path"] == "/r/b").unwrap();
    assert_eq!(b["client"]["raw_ip"], "89.160.20.112");
    assert_eq!(b["client"]["ip_source"], "x-real-ip");
}

fn ipv6_clients_are_captured_and_anonymised(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        ipv6: true,
        ..Options::default().forwarding(path)
    }
    .proxy(r#"trusted_proxies = ["::1"]"#);
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    ct.click("/r/six", "");
    ct.click("/r/fwd", "X-Forwarded-For: 2001:db8:abcd:12::1\r\n");
    let events = ct.wait_events(2);
    let six = events
        .iter()
        .find(|e| e["link"]["path"] == "/r/six")
        .unwrap();
    assert_eq!(six["client"]["ip_version"], 6);
    assert_eq!(six["client"]["ip"], "::");
    let fwd = events
        .iter()
        .find(|e| e["link"]["path"] == "/r/fwd")
        .unwrap();
    assert_eq!(fwd["client"]["ip"], "2001:db8:abcd::");
    assert_eq!(fwd["client"]["ip_version"], 6);
}

/// HAProxy's `option forwardfor` adds a line of its own rather than extending the
/// client's: every line, in order, is the chain, and the hop the trusted proxy vouches
/// for is on the last one.
fn forwarded_for_over_several_lines_is_read_as_one_chain(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .forwarding(path)
        .proxy(r#"trusted_proxies = ["127.0.0.0/8", "10.0.0.0/8"]"#)
        .enrich("keep_raw_ip = true");
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    // The client claims 6.6.6.6; the trusted balancer adds what it saw.
    ct.click(
        "/r/haproxy",
        "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 81.2.69.142\r\n",
    );
    // The visitor's address on the first line, trusted hops after it.
    ct.click(
        "/r/hops",
        "X-Forwarded-For: 6.6.6.6, 89.160.20.112\r\nX-Forwarded-For: 10.1.2.3\r\nX-Forwarded-For: 10.4.5.6\r\n",
    );
    let events = ct.wait_events(2);
    let by_path = |p: &str| events.iter().find(|e| e["link"]["path"] == p).unwrap();
    let haproxy = by_path("/r/haproxy");
    assert_eq!(haproxy["client"]["raw_ip"], "81.2.69.142");
    assert_eq!(haproxy["client"]["ip_source"], "x-forwarded-for");
    assert_eq!(by_path("/r/hops")["client"]["raw_ip"], "89.160.20.112");
}

on_both_paths!(
    forwarded_for_is_ignored_from_untrusted_peers,
    forwarded_for_is_honoured_from_trusted_peers,
    ipv6_clients_are_captured_and_anonymised,
    forwarded_for_over_several_lines_is_read_as_one_chain,
);
