//! Every redirect served becomes exactly one event; nothing else does.
//! Every test runs on both forwarding paths (`proxy.forwarding`).

mod common;

use common::{Clicktap, Options, raw_exchange, upstream};
use std::collections::HashMap;

fn one_event_per_captured_redirect_and_none_otherwise(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let sent = [
        ("GET", "/r/a?utm_source=mail&utm_campaign=x", 302),
        ("GET", "/p/b", 301),
        ("GET", "/t/c", 307),
        ("GET", "/s/d", 303),
        ("GET", "/ok", 200),
        ("GET", "/missing", 404),
        ("POST", "/echo", 200),
        ("HEAD", "/r/e", 302),
        ("GET", "/rel/f", 302),
    ];
    for (method, path, want) in sent {
        assert_eq!(
            ct.click(&format!("{method} {path}"), common::BROWSER),
            want,
            "{method} {path}"
        );
    }
    // 301 and 302 are captured by default: a, b, e, f. Once every captured click is
    // stored, the count is final.
    ct.wait_settled(sent.len());
    let events = ct.events(100);
    assert_eq!(events.len(), 4, "{events:#?}");
    let by_path: HashMap<_, _> = events
        .iter()
        .map(|e| (e["link"]["path"].as_str().unwrap().to_string(), e.clone()))
        .collect();
    let a = &by_path["/r/a"];
    assert_eq!(a["status"], 302);
    assert_eq!(a["method"], "GET");
    assert_eq!(a["kind"], "human");
    assert_eq!(
        a["link"]["url"],
        "http://sho.rt/r/a?utm_source=mail&utm_campaign=x"
    );
    assert_eq!(a["params"]["utm_source"], "mail");
    assert_eq!(a["params"]["utm_campaign"], "x");
    assert_eq!(a["destination"]["url"], "https://example.com/a");
    assert_eq!(a["referrer"]["host"], "direct");
    assert_eq!(a["client"]["ip"], "127.0.0.0");
    assert_eq!(a["client"]["raw_ip"], serde_json::Value::Null);
    assert_eq!(by_path["/p/b"]["status"], 301);
    assert_eq!(by_path["/r/e"]["kind"], "head");
    assert_eq!(
        by_path["/rel/f"]["destination"]["url"],
        "http://sho.rt/landing/f"
    );
    // Ids are UUIDv7 and timestamps RFC 3339 UTC with milliseconds.
    for e in &events {
        let id = e["id"].as_str().unwrap();
        assert_eq!(&id[14..15], "7", "{id} is not a UUIDv7");
        let ts = e["timestamp"].as_str().unwrap();
        assert!(
            ts.len() == 24 && ts.ends_with('Z') && &ts[19..20] == ".",
            "{ts}"
        );
    }
    assert_eq!(ct.metric("clicktap_capture_clicks_total", ""), 4.0);
    assert_eq!(ct.metric("clicktap_queue_appended_total", ""), 4.0);
    assert_eq!(ct.metric("clicktap_proxy_requests_total", ""), 9.0);
}

fn capture_statuses_are_configurable(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .forwarding(path)
        .proxy("capture_statuses = [303, 307]");
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    for p in ["/r/a", "/p/b", "/t/c", "/s/d"] {
        ct.click(p, "");
    }
    let events = ct.wait_events(2);
    let mut statuses: Vec<u64> = events
        .iter()
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    statuses.sort();
    assert_eq!(statuses, vec![303, 307]);
}

fn referrer_prefetch_and_raw_ip_setting(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .forwarding(path)
        .enrich("keep_raw_ip = true");
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    ct.click("/r/ref", "Referer: https://News.Example.org/post/1\r\n");
    ct.click("/r/pre", "Sec-Purpose: prefetch;prerender\r\n");
    let events = ct.wait_events(2);
    let by_path: HashMap<_, _> = events
        .iter()
        .map(|e| (e["link"]["path"].as_str().unwrap().to_string(), e.clone()))
        .collect();
    let r = &by_path["/r/ref"];
    assert_eq!(r["referrer"]["host"], "news.example.org");
    assert_eq!(r["referrer"]["url"], "https://News.Example.org/post/1");
    assert_eq!(r["client"]["raw_ip"], "127.0.0.1");
    let p = &by_path["/r/pre"];
    assert_eq!(p["kind"], "prefetch");
    assert_eq!(p["client"]["prefetch"], true);
}

fn capture_off_is_a_plain_proxy(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(
        dir.path(),
        up.addr,
        &Options::default().forwarding(path).proxy("capture = false"),
    );
    assert_eq!(ct.click("/r/a", ""), 302);
    assert_eq!(ct.metric("clicktap_proxy_requests_total", ""), 1.0);
    assert_eq!(ct.metric("clicktap_capture_clicks_total", ""), 0.0);
    assert!(ct.events(10).is_empty());
}

/// A `Host` that names no host (a path, a space) is refused with a 400, as nginx
/// refuses it: no visitor can put a URL of their choosing into an event, and nothing
/// reaches the shortener. Without a `Host` (HTTP/1.0) the event keeps the path and query
/// alone.
fn a_host_that_is_no_host_is_not_the_links_host(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let hosts = [
        ("/r/path", Some("evil.example/phish?x="), "1.1", 400),
        ("/r/space", Some("sho.rt evil.example"), "1.1", 400),
        ("/rel/none", None, "1.0", 302),
        ("/r/port", Some("Sho.RT:8080"), "1.1", 302),
    ];
    for (path, host, version, want) in hosts {
        let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
        let req = format!("GET {path}?a=1 HTTP/{version}\r\n{host}Connection: close\r\n\r\n");
        let answer = String::from_utf8_lossy(&raw_exchange(ct.proxy, req.as_bytes())).into_owned();
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {want}")),
            "{path}: {answer}"
        );
    }
    ct.wait_settled(2);
    let events = ct.events(10);
    assert_eq!(events.len(), 2, "every click is stored, and only those");
    let by_path = |p: &str| events.iter().find(|e| e["link"]["path"] == p).unwrap();
    let none = by_path("/rel/none");
    assert_eq!(none["link"]["host"], "");
    assert_eq!(none["link"]["url"], "/rel/none?a=1");
    // A relative Location stays relative: there is no host to resolve it against.
    assert_eq!(none["destination"]["url"], "/landing/none");
    assert_eq!(none["destination"]["host"], serde_json::Value::Null);
    assert_eq!(
        by_path("/r/port")["link"]["url"],
        "http://sho.rt:8080/r/port?a=1"
    );
    let hosts_seen: Vec<_> = up
        .requests()
        .iter()
        .map(|r| r.headers.get("host").map(|h| h.as_bytes().to_vec()))
        .collect();
    assert_eq!(hosts_seen.len(), 2, "{hosts_seen:?}");
    assert!(
        !hosts_seen
            .iter()
            .flatten()
            .any(|h| h.windows(4).any(|w| w == b"evil"))
    );
}

on_both_paths!(
    one_event_per_captured_redirect_and_none_otherwise,
    capture_statuses_are_configurable,
    referrer_prefetch_and_raw_ip_setting,
    capture_off_is_a_plain_proxy,
    a_host_that_is_no_host_is_not_the_links_host,
);
