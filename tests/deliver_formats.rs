//! Each format arrives as its vendor's receivers expect it, signed so that the public
//! Standard Webhooks libraries verify it.

mod common;

use base64::Engine;
use common::receiver::{self, body_json};
use common::{Clicktap, Options, raw_exchange, test_city_db, upstream, wait_until};
use hmac::{KeyInit, Mac};
use std::time::Duration;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

const CHROME_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

/// A visitor from London (per the test database) on Chrome for macOS, from a news site.
fn click(ct: &Clicktap, path: &str) {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: sho.rt\r\nUser-Agent: {CHROME_MAC}\r\nReferer: https://news.example.org/a\r\nX-Forwarded-For: 81.2.69.142\r\nConnection: close\r\n\r\n"
    );
    raw_exchange(ct.proxy, req.as_bytes());
}

fn options(hooks: &str) -> Options {
    Options::default()
        .proxy(r#"trusted_proxies = ["127.0.0.1"]"#)
        .geoip(&format!("database = \"{}\"", test_city_db().display()))
        .tail(hooks)
        .tail(
            r#"[[links]]
host = "sho.rt"
path = "/r/*"
id = "42"
name = "Launch post"
tags = ["launch", "blog"]
workspace_id = "7"
group_guid = "Bg0000000001"
organization_guid = "Og0000000001"
"#,
        )
}

/// Verifies a Standard Webhooks signature with HMAC written here, apart from
/// clicktap's own signing code.
fn verify(secret: &str, s: &common::server::Seen) {
    let id = s.headers["webhook-id"].to_str().unwrap();
    let ts = s.headers["webhook-timestamp"].to_str().unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&s.body);
    let want = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    let sigs = s.headers["webhook-signature"].to_str().unwrap();
    assert!(
        sigs.split(' ').any(|sig| sig == want),
        "{sigs} does not hold {want}"
    );
    let age = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - ts.parse::<i64>().unwrap();
    assert!(age.abs() < 60, "timestamp {ts} is not now");
}

#[test]
fn native_is_the_stored_event_signed_with_standard_webhooks() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let old = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let hooks = format!(
        "[[webhooks]]\nid = \"native\"\nurl = \"{}\"\nsecret = [\"{SECRET}\", \"{old}\"]\n",
        rx.url("/n")
    );
    let ct = Clicktap::start(dir.path(), up.addr, &options(&hooks));
    click(&ct, "/r/native?utm_source=newsletter");
    let seen = rx.wait_for(1, Duration::from_secs(10));
    let s = &seen[0];
    // Both secrets of a rotation sign.
    assert_eq!(
        s.headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    verify(SECRET, s);
    verify(old, s);
    common::verify_standard_webhooks(SECRET, s);
    let body = body_json(s);
    let stored = &ct.events(1)[0];
    assert_eq!(body["id"], stored["id"]);
    assert_eq!(body["webhook_id"], "native");
    assert_eq!(body["geo"]["country_code"], "GB");
    assert_eq!(body["geo"]["city"], "London");
    assert_eq!(body["agent"]["browser"], "Chrome");
    assert_eq!(body["link_meta"]["name"], "Launch post");
    assert_eq!(body["params"]["utm_source"], "newsletter");
    assert_eq!(s.headers["webhook-id"], s.headers["idempotency-key"]);
}

#[test]
fn bitly_format_matches_bitly_engagement_webhooks() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let hooks = format!(
        "[[webhooks]]\nid = \"bitly\"\nurl = \"{}\"\nformat = \"bitly\"\nfetch_tags = true\nguid = \"W0123456789\"\n",
        rx.url("/b")
    );
    let ct = Clicktap::start(dir.path(), up.addr, &options(&hooks));
    click(&ct, "/r/bit?utm_source=x");
    let b = body_json(&rx.wait_for(1, Duration::from_secs(10))[0]);
    let stored = &ct.events(1)[0];
    assert_eq!(b["event_id"], stored["id"]);
    assert_eq!(b["event_type"], "engagement");
    let dt = b["datetime"].as_str().unwrap();
    assert!(dt.ends_with("+0000") && dt.len() == 24, "{dt}");
    assert_eq!(b["url"], "https://example.com/bit");
    assert_eq!(b["bitlink"], "sho.rt/r/bit");
    assert_eq!(b["passed_params"], "utm_source=x");
    assert_eq!(b["country"], "GB");
    assert_eq!(b["referrer"], "https://news.example.org/a");
    assert_eq!(b["device_type"], "Desktop");
    assert_eq!(b["webhook_guid"], "W0123456789");
    assert_eq!(b["group_guid"], "Bg0000000001");
    assert_eq!(b["organization_guid"], "Og0000000001");
    assert_eq!(b["tags"], serde_json::json!(["launch", "blog"]));
    assert_eq!(b["time_zone"], "Europe/London");
    assert!(b["references"]["bitlink"].is_string());
}

#[test]
fn linkly_format_matches_linkly_webhooks_and_never_sends_an_ip() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let hooks = format!(
        "[[webhooks]]\nid = \"linkly\"\nurl = \"{}\"\nformat = \"linkly\"\n",
        rx.url("/l")
    );
    let ct = Clicktap::start(
        dir.path(),
        up.addr,
        &options(&hooks).enrich("keep_raw_ip = true"),
    );
    click(&ct, "/r/ly?utm_source=a&utm_medium=b&utm_campaign=c");
    let s = &rx.wait_for(1, Duration::from_secs(10))[0];
    let raw = String::from_utf8_lossy(&s.body);
    assert!(!raw.contains("81.2.69"), "an IP in a linkly payload: {raw}");
    let b = body_json(s);
    assert_eq!(b["event"], "click");
    assert!(b["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(b["link"]["id"], 42);
    assert_eq!(b["link"]["name"], "Launch post");
    assert_eq!(b["link"]["domain"], "sho.rt");
    assert_eq!(b["link"]["destination"], "https://example.com/ly");
    assert_eq!(b["link"]["workspace_id"], 7);
    assert_eq!(b["link"]["utm_source"], "a");
    assert_eq!(b["click"]["country"], "GB");
    assert_eq!(b["click"]["is_eu_country"], false);
    assert_eq!(b["click"]["platform"], "desktop");
    assert_eq!(b["click"]["browser_name"], "Chrome");
    assert_eq!(b["click"]["bot_name"], serde_json::Value::Null);
    assert_eq!(b["click"]["params"]["utm_campaign"], "c");
}

#[test]
fn tly_format_has_its_headers_and_engagement() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let hooks = format!(
        "[[webhooks]]\nid = \"tly\"\nurl = \"{}\"\nformat = \"tly\"\nsecret = \"tly-secret-1\"\n",
        rx.url("/t")
    );
    let ct = Clicktap::start(dir.path(), up.addr, &options(&hooks));
    click(&ct, "/r/t");
    let s = &rx.wait_for(1, Duration::from_secs(10))[0];
    assert_eq!(s.headers["x-tly-key"], "tly-secret-1");
    assert_eq!(s.headers["x-tly-event"], "short_link.visited");
    let delivery = s.headers["x-tly-delivery"].to_str().unwrap().to_string();
    let ts: i64 = s.headers["x-tly-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ts > 1_700_000_000);
    let b = body_json(s);
    assert_eq!(b["event"], "short_link.visited");
    assert_eq!(b["delivery_id"], delivery.as_str());
    assert_eq!(b["data"]["short_url"], "http://sho.rt/r/t");
    assert_eq!(b["data"]["long_url"], "https://example.com/t");
    assert_eq!(b["engagement"]["browser"], "Chrome");
    assert_eq!(b["engagement"]["country_code"], "GB");
    assert_eq!(b["engagement"]["city"], "London");
    assert!(b["sent_at"].as_str().unwrap().ends_with('Z'));
    assert!(!ct.log_text().contains("tly-secret-1"));
}

#[test]
fn rebrandly_format_batches_with_its_secret_header() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let hooks = format!(
        "[[webhooks]]\nid = \"rb\"\nurl = \"{}\"\nformat = \"rebrandly\"\nsecret = \"3b1c9f2e-6a4d-4c8e-9f1a-2b3c4d5e6f70\"\n[webhooks.batch]\nmax_events = 5\nmax_wait = \"2s\"\n",
        rx.url("/rb")
    );
    let ct = Clicktap::start(dir.path(), up.addr, &options(&hooks));
    for i in 0..7 {
        click(&ct, &format!("/r/rb{i}"));
    }
    // Five fill one batch at once; the other two go when max_wait has passed (on a slow
    // machine, clicks that trickle in over more than max_wait may make more batches).
    let sizes = |seen: &[common::server::Seen]| -> Vec<usize> {
        seen.iter()
            .map(|s| body_json(s)["data"].as_array().unwrap().len())
            .collect()
    };
    common::wait_until(
        "all seven clicks delivered",
        Duration::from_secs(15),
        || sizes(&rx.requests()).iter().sum::<usize>() >= 7,
    );
    let seen = rx.requests();
    let sizes = sizes(&seen);
    assert_eq!(sizes.iter().sum::<usize>(), 7, "{sizes:?}");
    assert!(
        sizes.contains(&5),
        "a full batch goes without waiting: {sizes:?}"
    );
    assert!(sizes.iter().all(|n| *n <= 5), "{sizes:?}");
    let s = &seen[0];
    assert_eq!(
        s.headers["x-rebrandly-secret"],
        "3b1c9f2e-6a4d-4c8e-9f1a-2b3c4d5e6f70"
    );
    let b = body_json(s);
    assert!(
        b["key"]
            .as_str()
            .unwrap()
            .starts_with("rb-clicks-stream-1-")
    );
    let e = &b["data"][0];
    assert!(e["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(e["client"]["agent"]["browser"]["name"], "chrome");
    assert_eq!(e["client"]["geo"]["country"], "GB");
    assert_eq!(e["route"]["domain"]["raw"], "sho.rt");
    assert_eq!(e["route"]["domain"]["zone"], "rt.sho");
    assert_eq!(e["route"]["destination"]["hostname"], "example.com");
}

#[test]
fn filters_pick_events_by_host_path_tag_and_kind() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let hooks = format!(
        r#"[[webhooks]]
id = "promo"
url = "{}"
[webhooks.filter]
hosts = ["sho.rt"]
paths = ["/r/promo*"]
kinds = ["human"]

[[webhooks]]
id = "tagged"
url = "{}"
[webhooks.filter]
tags = ["launch"]
"#,
        rx.url("/promo"),
        rx.url("/tagged")
    );
    let o = options(&hooks).tail("[[links]]\npath = \"/p/*\"\ntags = [\"other\"]\n");
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    click(&ct, "/r/promo-1"); // both: human, promo path, and tagged "launch" by the /r/* link entry
    click(&ct, "/r/other"); // tagged only
    click(&ct, "/p/x"); // neither
    let req = "GET /r/promo-2 HTTP/1.1\r\nHost: sho.rt\r\nUser-Agent: curl/8.0\r\nConnection: close\r\n\r\n";
    raw_exchange(ct.proxy, req.as_bytes()); // a bot: tagged only
    let seen = rx.wait_for(4, Duration::from_secs(10));
    ct.wait_settled(4);
    let paths = |hook: &str| -> Vec<String> {
        let mut v: Vec<String> = rx
            .requests()
            .iter()
            .filter(|s| s.uri.path() == hook)
            .map(|s| body_json(s)["link"]["path"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(seen.len(), 4);
    assert_eq!(paths("/promo"), vec!["/r/promo-1"]);
    assert_eq!(
        paths("/tagged"),
        vec!["/r/other", "/r/promo-1", "/r/promo-2"]
    );
    // Counted as the promo webhook reads past them, which may be after the tagged
    // webhook's deliveries arrived.
    wait_until("three filtered", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_filtered_total", r#"webhook="promo""#) == 3.0
    });
}
