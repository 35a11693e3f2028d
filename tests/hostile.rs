//! Hostile input at the proxy: whatever a visitor or the shortener sends, the visitor
//! gets the shortener's answer or a clean 4xx/502 at once, clicktap stays up, and every
//! redirect served is an event with sane values (cut to the sizes clicktap keeps, and
//! saying so) or a counted drop.
//! Every test runs on both forwarding paths (`proxy.forwarding`).

mod common;

use common::upstream::{self, RawUpstream};
use common::{Clicktap, Options, raw_exchange};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The status of a raw answer; 0 when there is none.
fn status(answer: &[u8]) -> u16 {
    String::from_utf8_lossy(answer)
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// One header of a raw answer, as bytes.
fn header(answer: &[u8], name: &str) -> Option<Vec<u8>> {
    let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    answer[..head_end]
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find_map(|l| {
            let colon = l.iter().position(|b| *b == b':')?;
            l[..colon]
                .eq_ignore_ascii_case(name.as_bytes())
                .then(|| l[colon + 1..].trim_ascii().to_vec())
        })
}

/// Sends `request` and returns the answer, which must come, and come soon: a hang fails.
fn exchange(ct: &Clicktap, request: &[u8]) -> Vec<u8> {
    let started = Instant::now();
    let answer = raw_exchange(ct.proxy, request);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered after {:?}",
        started.elapsed()
    );
    answer
}

/// clicktap is still running and still captures: an ordinary click is answered and
/// stored, every click it captured is stored or counted as dropped, and every stored
/// event is sane.
fn still_up(ct: &mut Clicktap) {
    assert!(
        ct.child.try_wait().unwrap().is_none(),
        "clicktap exited:\n{}",
        ct.log_text()
    );
    let before = ct.metric("clicktap_proxy_requests_total", "") as usize;
    assert_eq!(ct.click("/r/alive", common::BROWSER), 302);
    ct.wait_settled(before + 1);
    let events = ct.events(1000);
    assert!(
        events.iter().any(|e| e["link"]["path"] == "/r/alive"),
        "the ordinary click after is stored"
    );
    for e in &events {
        assert_sane(e);
    }
    // Every click handed to enrichment is stored or counted as dropped.
    let captured = ct.metric("clicktap_capture_clicks_total", "");
    let dropped = ct.metric("clicktap_queue_dropped_total", "");
    assert_eq!(
        captured,
        events.len() as f64 + dropped,
        "no click unaccounted for"
    );
}

/// What every stored event must be, whatever came in: the documented shape, and
/// nothing near the size of what a hostile request can carry.
fn assert_sane(e: &Value) {
    let text = e.to_string();
    assert!(text.len() < 64 * 1024, "event of {} bytes", text.len());
    assert_eq!(e["id"].as_str().map(str::len), Some(36), "{text:.300}");
    assert!(
        e["status"]
            .as_u64()
            .is_some_and(|s| (300..400).contains(&s))
    );
    let link = &e["link"];
    let host = link["host"].as_str().unwrap();
    assert!(
        host.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b)),
        "link.host {host:?}"
    );
    let url = link["url"].as_str().unwrap();
    assert!(!url.contains(' '), "link.url {url:.200}");
    assert!(
        url.len() <= 8 * 1024 + 300,
        "link.url of {} bytes",
        url.len()
    );
    assert!(e["client"]["ip_source"].is_string());
}

fn by_path<'a>(events: &'a [Value], path: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["link"]["path"] == path)
        .unwrap_or_else(|| panic!("no event for {path}"))
}

/// A shortener that redirects every request, over raw TCP, whatever its head holds.
fn redirecting_upstream() -> RawUpstream {
    RawUpstream::start(|_| {
        b"HTTP/1.1 302 Found\r\nLocation: https://example.com/big\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_vec()
    })
}

fn a_head_just_under_pingoras_limit_is_proxied_and_its_click_kept_within_caps(path: &str) {
    let up = redirecting_upstream();
    let dir = tempfile::tempdir().unwrap();
    // Heads up to 1 MiB, the most Pingora reads, once the operator allows them.
    let o = Options::default()
        .forwarding(path)
        .proxy(r#"max_request_head = "1MiB""#);
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    // Pingora reads request heads up to 1 MiB; this one is just under it, and every
    // value clicktap keeps is far over what it keeps.
    // (No line over a quarter of the head's limit, as in nginx's buffers.)
    let ua = format!("Mozilla/5.0 {}", "u".repeat(200_000));
    let referer = format!("https://ref.example/{}", "r".repeat(60_000));
    let query = "q=1&".repeat(15_000);
    let pad: String = (0..4)
        .map(|i| format!("X-Pad-{i}: {}\r\n", "p".repeat(180_000)))
        .collect();
    let request = format!(
        "GET /r/huge?{query} HTTP/1.1\r\nHost: sho.rt\r\nUser-Agent: {ua}\r\nReferer: {referer}\r\n\
         {pad}Connection: close\r\n\r\n"
    );
    assert!(request.len() > 1_000_000 && request.len() < 1_048_575);
    let answer = exchange(&ct, request.as_bytes());
    assert_eq!(
        status(&answer),
        302,
        "{:.300}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(
        header(&answer, "location").unwrap(),
        b"https://example.com/big"
    );
    // The shortener got the request whole.
    let head = &up.heads()[0];
    assert!(head.windows(ua.len()).any(|w| w == ua.as_bytes()));
    assert!(head.starts_with(format!("GET /r/huge?{query} HTTP/1.1").as_bytes()));

    ct.wait_settled(1);
    let e = by_path(&ct.events(10), "/r/huge").clone();
    assert_eq!(
        e["truncated"],
        serde_json::json!(["link", "referrer", "client.user_agent"])
    );
    assert_eq!(e["client"]["user_agent"].as_str().unwrap().len(), 2048);
    assert!(
        e["client"]["user_agent"]
            .as_str()
            .unwrap()
            .starts_with("Mozilla/5.0 uuu")
    );
    assert_eq!(e["referrer"]["url"].as_str().unwrap().len(), 4096);
    assert_eq!(e["referrer"]["host"], "ref.example");
    let query = e["link"]["query"].as_str().unwrap();
    assert!(
        query.len() <= 8 * 1024 && query.starts_with("q=1&q=1"),
        "{}",
        query.len()
    );
    assert_eq!(e["params"]["q"], "1");
    assert_sane(&e);
    still_up(&mut ct);
}

fn a_head_over_the_limit_is_a_clean_431_and_nothing_else(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .forwarding(path)
        .proxy(r#"max_request_head = "1MiB""#);
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    let request = format!(
        "GET /r/over HTTP/1.1\r\nHost: sho.rt\r\nX-Pad: {}\r\nUser-Agent: {}\r\nConnection: close\r\n\r\n",
        "p".repeat(200_000),
        "u".repeat(200_000).repeat(5)
    );
    let answer = exchange(&ct, request.as_bytes());
    assert_eq!(
        status(&answer),
        431,
        "{:.300}",
        String::from_utf8_lossy(&answer)
    );
    assert!(up.requests().is_empty(), "nothing reached the shortener");
    still_up(&mut ct);
    assert_eq!(ct.events(10).len(), 1, "only the ordinary click");
}

fn ten_thousand_query_parameters_are_passed_on_and_kept_to_the_cap(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .forwarding(path)
        .proxy(r#"max_request_head = "1MiB""#);
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    // Distinct names, short enough that the target stays within what Pingora accepts.
    let query: Vec<String> = (0..10_000u32)
        .map(|i| format!("{}={}", base36(i), i % 10))
        .collect();
    let query = query.join("&");
    let request =
        format!("GET /r/params?{query} HTTP/1.1\r\nHost: sho.rt\r\nConnection: close\r\n\r\n");
    let answer = exchange(&ct, request.as_bytes());
    assert_eq!(status(&answer), 302);
    let seen = up.wait_for(1, Duration::from_secs(5));
    let got = seen[0].uri.query().unwrap();
    assert_eq!(got.split('&').count(), 10_000, "the shortener got them all");

    // Over 64 KiB a target is no URI the http crate holds: Pingora answers 400.
    let long: String = (0..10_000).map(|i| format!("param{i}={i}&")).collect();
    let request =
        format!("GET /r/long?{long} HTTP/1.1\r\nHost: sho.rt\r\nConnection: close\r\n\r\n");
    assert_eq!(status(&exchange(&ct, request.as_bytes())), 400);

    ct.wait_settled(1);
    let e = by_path(&ct.events(10), "/r/params").clone();
    assert_eq!(e["truncated"], serde_json::json!(["link"]));
    let params = e["params"].as_object().unwrap();
    assert!(
        (1000..2000).contains(&params.len()),
        "{} parameters kept",
        params.len()
    );
    assert_eq!(params["0"], "0");
    assert_sane(&e);
    still_up(&mut ct);
}

fn base36(mut n: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![digits[(n % 36) as usize]];
    while n >= 36 {
        n /= 36;
        out.push(digits[(n % 36) as usize]);
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

fn headers_that_are_not_utf8_are_passed_on_and_stored_as_text(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let mut ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let request =
        b"GET /r/bytes HTTP/1.1\r\nHost: sho.rt\r\nUser-Agent: Mozilla/5.0 \xff\xfe(X11)\r\n\
Referer: https://Ref.example/\xc3\x28path\r\nConnection: close\r\n\r\n";
    assert_eq!(status(&exchange(&ct, request)), 302);
    let seen = up.wait_for(1, Duration::from_secs(5));
    assert_eq!(
        seen[0].headers["user-agent"].as_bytes(),
        b"Mozilla/5.0 \xff\xfe(X11)",
        "the shortener got the bytes as sent"
    );
    ct.wait_settled(1);
    let e = by_path(&ct.events(10), "/r/bytes").clone();
    assert_eq!(
        e["client"]["user_agent"],
        "Mozilla/5.0 \u{fffd}\u{fffd}(X11)"
    );
    assert_eq!(e["referrer"]["url"], "https://Ref.example/\u{fffd}(path");
    assert_eq!(e["referrer"]["host"], "ref.example");
    assert_sane(&e);
    still_up(&mut ct);
}

fn a_location_that_is_not_utf8_reaches_the_visitor_as_sent(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let mut ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let answer = exchange(
        &ct,
        b"GET /u8/x HTTP/1.1\r\nHost: sho.rt\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&answer), 302);
    assert_eq!(
        header(&answer, "location").unwrap(),
        b"https://example.com/x/\xff\xfe"
    );
    ct.wait_settled(1);
    let e = by_path(&ct.events(10), "/u8/x").clone();
    assert_eq!(
        e["destination"]["url"],
        "https://example.com/x/\u{fffd}\u{fffd}"
    );
    assert_eq!(e["destination"]["host"], "example.com");
    assert_sane(&e);
    still_up(&mut ct);
}

/// A shortener whose answers a real HTTP server would refuse to write: CR and LF where a
/// header value should be, and a Location longer than clicktap keeps.
fn cr_and_lf_in_the_location_are_a_502_or_the_answer_as_pingora_reads_it(path: &str) {
    let up = RawUpstream::start(|head| {
        let answer = |location: &[u8]| {
            [
                b"HTTP/1.1 302 Found\r\nLocation: ".as_slice(),
                location,
                b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            ]
            .concat()
        };
        let huge = format!("https://example.com/{}", "l".repeat(500_000));
        match head.split(|b| *b == b' ').nth(1).unwrap_or_default() {
            b"/bare-cr" => answer(b"https://example.com/a\rSet-Cookie: x=1"),
            b"/bare-lf" => answer(b"https://example.com/b\nSet-Cookie: x=1"),
            b"/folded" => answer(b"https://example.com/c\r\n x-injected: 1"),
            b"/nul" => answer(b"https://example.com/d\x00e"),
            b"/huge" => answer(huge.as_bytes()),
            _ => answer(b"https://example.com/other"),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let get = |path: &str| {
        let req = format!("GET {path} HTTP/1.1\r\nHost: sho.rt\r\nConnection: close\r\n\r\n");
        exchange(&ct, req.as_bytes())
    };
    // Not a valid answer: a clean 502, and no click (nobody was redirected).
    for path in ["/bare-cr", "/nul"] {
        let answer = get(path);
        assert_eq!(
            status(&answer),
            502,
            "{path}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    // A bare LF ends the line (as RFC 9112 allows), a folded line is unfolded: the
    // visitor gets what Pingora read, and so does the event.
    let lf = get("/bare-lf");
    assert_eq!(status(&lf), 302);
    assert_eq!(header(&lf, "location").unwrap(), b"https://example.com/b");
    assert_eq!(header(&lf, "set-cookie").unwrap(), b"x=1");
    let folded = get("/folded");
    assert_eq!(status(&folded), 302);
    let folded_location = header(&folded, "location").unwrap();
    assert!(folded_location.starts_with(b"https://example.com/c"));
    let huge = get("/huge");
    assert_eq!(status(&huge), 302);
    assert_eq!(
        header(&huge, "location").unwrap().len(),
        500_020,
        "passed on whole"
    );

    ct.wait_settled(5);
    let events = ct.events(10);
    assert_eq!(events.len(), 3, "one per redirect served");
    assert_eq!(
        by_path(&events, "/bare-lf")["destination"]["url"],
        "https://example.com/b"
    );
    assert_eq!(
        by_path(&events, "/folded")["destination"]["url"]
            .as_str()
            .unwrap()
            .as_bytes(),
        folded_location
    );
    let cut = by_path(&events, "/huge");
    assert_eq!(cut["truncated"], serde_json::json!(["destination"]));
    assert_eq!(cut["destination"]["url"].as_str().unwrap().len(), 8192);
    assert_eq!(cut["destination"]["host"], "example.com");
    assert_eq!(ct.metric("clicktap_capture_clicks_total", ""), 3.0);
    still_up(&mut ct);
}

fn forwarded_for_from_an_untrusted_peer_is_never_believed(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .forwarding(path)
        .enrich("keep_raw_ip = true");
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    let chains = [
        "81.2.69.142",
        "6.6.6.6, 81.2.69.142",
        "garbage",
        "81.2.69.142\r\nX-Forwarded-For: 89.160.20.112",
        "fe80::1%eth0",
    ];
    for (i, chain) in chains.iter().enumerate() {
        let headers = format!("X-Forwarded-For: {chain}\r\nX-Real-IP: 81.2.69.143\r\n");
        assert_eq!(ct.click(&format!("/r/u{i}"), &headers), 302);
    }
    ct.wait_settled(chains.len());
    for e in ct.events(10) {
        assert_eq!(e["client"]["raw_ip"], "127.0.0.1", "{e}");
        assert_eq!(e["client"]["ip_source"], "socket");
    }
    still_up(&mut ct);
}

fn spoofed_and_malformed_forwarded_for_chains_from_a_trusted_peer(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .forwarding(path)
        .proxy(r#"trusted_proxies = ["127.0.0.0/8", "10.0.0.0/8"]"#)
        .proxy(r#"max_request_head = "1MiB""#)
        .enrich("keep_raw_ip = true");
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    // 90 KiB of hops: a head over the default limit, allowed here.
    let long_chain = format!("{}81.2.69.142, 10.0.0.9", "1.1.1.1, ".repeat(10_000));
    // (chain as sent, the address the event must carry, its source)
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "6.6.6.6, 81.2.69.142".into(),
            "81.2.69.142",
            "x-forwarded-for",
        ),
        (
            "6.6.6.6, 81.2.69.142, 10.1.1.1".into(),
            "81.2.69.142",
            "x-forwarded-for",
        ),
        (
            "unknown, 81.2.69.142:5555".into(),
            "81.2.69.142",
            "x-forwarded-for",
        ),
        // A malformed hop breaks the chain: nothing left of it can be believed.
        ("81.2.69.142, garbage".into(), "127.0.0.1", "socket"),
        ("81.2.69.142, 999.1.1.1".into(), "127.0.0.1", "socket"),
        (" , ,, ".into(), "127.0.0.1", "socket"),
        ("\"[81.2.69.142]\"".into(), "81.2.69.142", "x-forwarded-for"),
        (long_chain.clone(), "81.2.69.142", "x-forwarded-for"),
        // IPv6 zone ids are no part of the address.
        ("fe80::1%eth0".into(), "fe80::1", "x-forwarded-for"),
        (
            "[2001:db8::1%25en0]:443".into(),
            "2001:db8::1",
            "x-forwarded-for",
        ),
        (
            format!("2001:db8::2%{}", "z".repeat(1000)),
            "2001:db8::2",
            "x-forwarded-for",
        ),
        ("%eth0, 10.0.0.1".into(), "10.0.0.1", "x-forwarded-for"),
    ];
    for (i, (chain, _, _)) in cases.iter().enumerate() {
        let headers = format!("X-Forwarded-For: {chain}\r\n");
        assert_eq!(ct.click(&format!("/r/t{i}"), &headers), 302, "{chain:.80}");
    }
    // Not UTF-8: no address to read.
    let request = b"GET /r/bytes HTTP/1.1\r\nHost: sho.rt\r\nX-Forwarded-For: 81.2.69.142\xff\r\nConnection: close\r\n\r\n";
    assert_eq!(status(&exchange(&ct, request)), 302);
    ct.wait_settled(cases.len() + 1);
    let events = ct.events(100);
    for (i, (chain, ip, source)) in cases.iter().enumerate() {
        let e = by_path(&events, &format!("/r/t{i}"));
        assert_eq!(e["client"]["raw_ip"], *ip, "{chain:.80}");
        assert_eq!(e["client"]["ip_source"], *source, "{chain:.80}");
        assert_sane(e);
    }
    let bytes = by_path(&events, "/r/bytes");
    assert_eq!(bytes["client"]["ip_source"], "socket");
    // The shortener gets each chain whole, the peer appended.
    let seen = up.wait_for(cases.len() + 1, Duration::from_secs(5));
    let long_seen = seen
        .iter()
        .find(|s| s.uri.path() == "/r/t7")
        .expect("the long chain reached the shortener");
    assert_eq!(
        long_seen.headers["x-forwarded-for"],
        format!("{long_chain}, 127.0.0.1")
    );
    still_up(&mut ct);
}

fn a_host_with_a_path_a_space_or_userinfo_plants_nothing(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let mut ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let get = |path: &str, host_lines: &str| {
        let req = format!("GET {path} HTTP/1.1\r\n{host_lines}Connection: close\r\n\r\n");
        status(&exchange(&ct, req.as_bytes()))
    };
    // A Host that is no host (RFC 9112 section 3.2), with userinfo, or twice: a clean
    // 400, as from nginx, nothing forwarded and no click.
    assert_eq!(get("/r/a", "Host: evil.example/phish?x=\r\n"), 400);
    assert_eq!(get("/r/b", "Host: sho.rt evil.example\r\n"), 400);
    assert_eq!(get("/r/d", "Host: sho.rt\\evil.example\r\n"), 400);
    assert_eq!(get("/r/e", "Host: user@evil.example\r\n"), 400);
    assert_eq!(get("/r/f", "Host: sho.rt\r\nHost: evil.example\r\n"), 400);
    // A long one is passed on; the shortener answers.
    assert_eq!(get("/r/c", &format!("Host: {}\r\n", "h".repeat(5000))), 302);
    // Refused requests never reach the proxy's phases, and are not counted.
    ct.wait_settled(1);
    let events = ct.events(10);
    assert_eq!(events.len(), 1, "one per redirect served");
    for e in &events {
        assert_eq!(e["link"]["host"], "", "{e}");
        assert!(!e.to_string().contains("evil"), "{e}");
        assert_sane(e);
    }
    still_up(&mut ct);
}

fn absolute_form_request_targets(path: &str) {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let mut ct = Clicktap::start(dir.path(), up.addr, &Options::default().forwarding(path));
    let send = |req: &str| status(&exchange(&ct, req.as_bytes()));
    assert_eq!(
        send("GET http://sho.rt/r/abs?a=1 HTTP/1.1\r\nHost: sho.rt\r\nConnection: close\r\n\r\n"),
        302
    );
    // A target naming another host than Host, or with userinfo: Pingora answers 400.
    assert_eq!(
        send("GET http://evil.example/r/x HTTP/1.1\r\nHost: sho.rt\r\nConnection: close\r\n\r\n"),
        400
    );
    assert_eq!(
        send("GET http://u:p@sho.rt/r/y HTTP/1.1\r\nHost: sho.rt\r\nConnection: close\r\n\r\n"),
        400
    );
    // HTTP/1.0 without Host: the shortener gets the target's host, the event no host.
    assert_eq!(send("GET http://other.example/r/old HTTP/1.0\r\n\r\n"), 302);
    ct.wait_settled(2);
    let events = ct.events(10);
    assert_eq!(events.len(), 2);
    let abs = by_path(&events, "/r/abs");
    assert_eq!(abs["link"]["url"], "http://sho.rt/r/abs?a=1");
    assert_eq!(abs["params"]["a"], "1");
    let old = by_path(&events, "/r/old");
    assert_eq!(old["link"]["url"], "/r/old");
    assert_eq!(old["destination"]["url"], "https://example.com/old");
    let seen = up.wait_for(2, Duration::from_secs(5));
    assert!(seen.iter().any(|s| s.headers["host"] == "other.example"));
    still_up(&mut ct);
}

on_both_paths!(
    a_head_just_under_pingoras_limit_is_proxied_and_its_click_kept_within_caps,
    a_head_over_the_limit_is_a_clean_431_and_nothing_else,
    ten_thousand_query_parameters_are_passed_on_and_kept_to_the_cap,
    headers_that_are_not_utf8_are_passed_on_and_stored_as_text,
    a_location_that_is_not_utf8_reaches_the_visitor_as_sent,
    cr_and_lf_in_the_location_are_a_502_or_the_answer_as_pingora_reads_it,
    forwarded_for_from_an_untrusted_peer_is_never_believed,
    spoofed_and_malformed_forwarded_for_chains_from_a_trusted_peer,
    a_host_with_a_path_a_space_or_userinfo_plants_nothing,
    absolute_form_request_targets,
);
