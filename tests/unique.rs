//! Unique clicks through the real binary: a visitor's first click on a link within
//! `enrich.unique_window` is `unique: true`, and `[webhooks.filter] unique = true`
//! delivers only those.

mod common;

use common::receiver::{self, body_json};
use common::{Clicktap, Options, upstream, wait_until};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The user agent X's card fetcher sends its GET and HEADs with: a browser's.
const BROWSER: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

/// A request from `address` (through a trusted proxy, as clicktap sees visitors behind
/// a load balancer) with a browser's user agent.
fn request(ct: &Clicktap, method: &str, path: &str, address: &str) {
    let headers = format!("User-Agent: {BROWSER}\r\nX-Forwarded-For: {address}\r\n");
    assert_eq!(ct.click(&format!("{method} {path}"), &headers), 302);
}

fn options(hooks: &str) -> Options {
    Options::default()
        .proxy(r#"trusted_proxies = ["127.0.0.1"]"#)
        .tail(hooks)
}

/// The paths, kinds and unique flags of the events a webhook received, in order.
fn received(rx: &common::TestServer, hook: &str) -> Vec<(String, String, Option<bool>)> {
    rx.requests()
        .iter()
        .filter(|s| s.uri.path() == hook)
        .map(|s| {
            let e = body_json(s);
            (
                e["link"]["path"].as_str().unwrap().to_string(),
                e["kind"].as_str().unwrap().to_string(),
                e["unique"].as_bool(),
            )
        })
        .collect()
}

/// A post shared on X: its card fetcher asks for the link with one GET and three HEADs,
/// from one address with a browser's user agent, within a second. A receiver counting
/// with `unique = true` (or `kinds = ["human"]`) counts one click per visitor.
#[test]
fn the_x_card_pattern_counts_as_one_unique_human_click() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let hooks = format!(
        r#"[[webhooks]]
id = "all"
url = "{}"

[[webhooks]]
id = "unique"
url = "{}"
[webhooks.filter]
unique = true

[[webhooks]]
id = "humans"
url = "{}"
[webhooks.filter]
kinds = ["human"]
"#,
        rx.url("/all"),
        rx.url("/unique"),
        rx.url("/humans"),
    );
    let ct = Clicktap::start(dir.path(), up.addr, &options(&hooks));
    let start = Instant::now();
    // The pattern as X sends it.
    request(&ct, "GET", "/r/post", "81.2.69.142");
    for _ in 0..3 {
        request(&ct, "HEAD", "/r/post", "81.2.69.142");
    }
    // Another reader's card, its HEADs first: a HEAD never takes the GET's place.
    for method in ["HEAD", "HEAD", "GET", "HEAD"] {
        request(&ct, method, "/r/post", "81.2.69.160");
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "sent within a second or so"
    );
    rx.wait_for(8 + 2 + 2, Duration::from_secs(20));
    ct.wait_settled(8);

    let head = |unique| ("/r/post".to_string(), "head".to_string(), Some(unique));
    let get = ("/r/post".to_string(), "human".to_string(), Some(true));
    let mut all = received(&rx, "/all");
    assert_eq!(all.len(), 8, "{all:?}");
    all.sort();
    let mut want = vec![head(false); 6];
    want.extend([get.clone(), get.clone()]);
    want.sort();
    assert_eq!(all, want, "every request is an event, marked");
    assert_eq!(received(&rx, "/unique"), [get.clone(), get.clone()]);
    assert_eq!(received(&rx, "/humans"), [get.clone(), get]);
    // The six HEADs are settled as filtered, counted, by each counting webhook.
    for hook in ["unique", "humans"] {
        let labels = format!(r#"webhook="{hook}""#);
        wait_until("six filtered", Duration::from_secs(10), || {
            ct.metric("clicktap_delivery_filtered_total", &labels) == 6.0
        });
        assert_eq!(ct.metric("clicktap_delivery_delivered_total", &labels), 2.0);
    }
    // The table saw two visitors; HEADs are not looked up at all.
    assert_eq!(
        ct.metric("clicktap_enrich_unique_checks_total", r#"result="first""#),
        2.0
    );
    assert_eq!(ct.metric("clicktap_enrich_unique_entries", ""), 2.0);
    assert!(ct.metric("clicktap_enrich_unique_bytes", "") > 0.0);
    assert_eq!(
        ct.metric("clicktap_enrich_unique_max_bytes", ""),
        (32 << 20) as f64
    );
    assert_eq!(ct.metric("clicktap_enrich_unique_evicted_total", ""), 0.0);
}

/// The stored events, oldest first, once there are `n`.
fn events(ct: &Clicktap, n: usize) -> Vec<Value> {
    let got = ct.wait_events(n);
    assert_eq!(got.len(), n, "{got:?}");
    got
}

/// Clicks again and again on one link until a click is unique again. The window is
/// measured inside clicktap, between moments the test cannot see exactly (when each
/// click was enriched), so each click is judged only where the test's own clocks
/// decide it: a click whose event was stored less than the window after the first click
/// was sent is a repeat; one sent more than the window after the first click's event was
/// stored is unique again. Between the two, either answer is right, and the first
/// unique one ends the window's test.
#[test]
fn repeated_clicks_are_unique_once_per_window() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let hooks = format!(
        "[[webhooks]]\nid = \"unique\"\nurl = \"{}\"\n[webhooks.filter]\nunique = true\n",
        rx.url("/unique")
    );
    let window = Duration::from_secs(2);
    let o = options(&hooks).enrich(r#"unique_window = "2s""#);
    let ct = Clicktap::start(dir.path(), up.addr, &o);

    let sent_first = Instant::now();
    request(&ct, "GET", "/r/a", "81.2.69.142");
    let first = events(&ct, 1);
    let stored_first = Instant::now();
    assert_eq!(first[0]["unique"], true);
    // The same visitor on another link, and another visitor on this one: first clicks.
    request(&ct, "GET", "/r/b", "81.2.69.142");
    request(&ct, "GET", "/r/a", "81.2.69.160");
    let mut n = 3;
    let e = events(&ct, n);
    assert_eq!(
        (e[1]["unique"].clone(), e[2]["unique"].clone()),
        (true.into(), true.into())
    );

    let mut repeats = 0;
    loop {
        let sent = Instant::now();
        request(&ct, "GET", "/r/a?utm_source=again", "81.2.69.142");
        n += 1;
        let e = events(&ct, n);
        let stored = Instant::now();
        let unique = e[n - 1]["unique"].as_bool().expect("every click is marked");
        if unique {
            assert!(
                stored - sent_first >= window,
                "unique again {:?} after the first click",
                stored - sent_first
            );
            break;
        }
        assert!(
            sent - stored_first < window,
            "a click sent {:?} after the first was stored is still a repeat",
            sent - stored_first
        );
        repeats += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(repeats >= 1, "at least the immediate repeat");
    // The webhook that counts got the four first clicks and none of the repeats.
    let got = rx.wait_for(4, Duration::from_secs(10));
    assert_eq!(got.len(), 4);
    ct.wait_settled(n);
    wait_until("repeats filtered", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_filtered_total", r#"webhook="unique""#) == repeats as f64
    });
    assert_eq!(rx.requests().len(), 4);
}

/// Events stored before clicktap marked them (or with the window off) have no
/// `unique`: they still read, and the filter delivers them rather than guess they
/// were repeats. The window off is refused beside a `unique` filter at `check`.
#[test]
fn with_the_window_off_events_are_unmarked_and_a_unique_filter_is_refused() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let hooks = format!("[[webhooks]]\nid = \"all\"\nurl = \"{}\"\n", rx.url("/all"));
    let o = options(&hooks).enrich(r#"unique_window = "0s""#);
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    request(&ct, "GET", "/r/a", "81.2.69.142");
    request(&ct, "GET", "/r/a", "81.2.69.142");
    let e = events(&ct, 2);
    assert!(e.iter().all(|e| e.get("unique").is_none()), "{e:?}");
    rx.wait_for(2, Duration::from_secs(10));
    assert_eq!(received(&rx, "/all").len(), 2);
    assert!(received(&rx, "/all").iter().all(|(_, _, u)| u.is_none()));

    let refused = dir.path().join("refused.toml");
    let text = std::fs::read_to_string(&ct.config).unwrap().replace(
        "id = \"all\"\n",
        "id = \"all\"\n[webhooks.filter]\nunique = true\n",
    );
    std::fs::write(&refused, text).unwrap();
    let out = std::process::Command::new(common::clicktap::bin())
        .args(["check", "--config"])
        .arg(&refused)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("webhooks[0].filter.unique") && err.contains("enrich.unique_window"),
        "{err}"
    );
}

/// A reload changes the window and keeps the visitors seen; a restart forgets them, its
/// key and table being the process's own.
#[test]
fn a_reload_keeps_the_visitors_seen_and_a_restart_forgets_them() {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let o = options("").enrich(r#"unique_window = "1h""#);
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    request(&ct, "GET", "/r/a", "81.2.69.142");
    assert_eq!(events(&ct, 1)[0]["unique"], true);

    let text = std::fs::read_to_string(&ct.config).unwrap();
    std::fs::write(
        &ct.config,
        text.replace(r#"unique_window = "1h""#, r#"unique_window = "2h""#),
    )
    .unwrap();
    let (code, out, err) = ct.cli(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    request(&ct, "GET", "/r/a", "81.2.69.142");
    assert_eq!(
        events(&ct, 2)[1]["unique"],
        false,
        "still within the window"
    );

    // A new table's size needs a new process, and is named in the refusal.
    let text = std::fs::read_to_string(&ct.config).unwrap();
    std::fs::write(
        &ct.config,
        text.replace("[enrich]\n", "[enrich]\nunique_max_bytes = \"1MiB\"\n"),
    )
    .unwrap();
    let (code, out, err) = ct.cli(&["reload"]);
    assert_ne!(code, 0);
    assert!(
        format!("{out}{err}").contains("enrich.unique_max_bytes"),
        "{out}{err}"
    );

    assert!(ct.stop().success());
    let ct = Clicktap::start_with(ct.config.clone(), ct.proxy, ct.admin, dir.path());
    request(&ct, "GET", "/r/a", "81.2.69.142");
    let e = events(&ct, 3);
    assert_eq!(e[2]["unique"], true, "a restart forgets every visitor");
}
