//! GeoIP from real mmdb files, looked up on the full address before it is cut.

mod common;

use common::{Clicktap, Options, test_city_db, upstream};
use std::path::Path;

fn geo_of(events: &[serde_json::Value], path: &str) -> serde_json::Value {
    events.iter().find(|e| e["link"]["path"] == path).unwrap()["geo"].clone()
}

fn run(geoip: &str, clicks: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .proxy(r#"trusted_proxies = ["127.0.0.1"]"#)
        .geoip(geoip);
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    for (path, ip) in clicks {
        ct.click(path, &format!("X-Forwarded-For: {}\r\n", ip));
    }
    ct.wait_events(clicks.len())
}

#[test]
fn city_schema_fields_fill_the_event() {
    let db = format!("database = \"{}\"", test_city_db().display());
    let events = run(
        &db,
        &[
            ("/r/london", "81.2.69.142"),
            ("/r/milton", "216.160.83.56"),
            ("/r/v6", "2001:480::1"),
            ("/r/reg", "2a02:ec0::1"),
            ("/r/private", "10.1.2.3"),
        ],
    );
    let london = geo_of(&events, "/r/london");
    assert_eq!(london["country_code"], "GB");
    assert_eq!(london["country_name"], "United Kingdom");
    assert_eq!(london["region_code"], "ENG");
    assert_eq!(london["city"], "London");
    assert_eq!(london["time_zone"], "Europe/London");
    assert!(london["latitude"].is_f64() && london["longitude"].is_f64());
    let milton = geo_of(&events, "/r/milton");
    assert_eq!(milton["region_code"], "WA");
    assert_eq!(milton["postal_code"], "98354");
    assert_eq!(milton["is_eu"], false);
    assert_eq!(geo_of(&events, "/r/v6")["country_code"], "US");
    // No `country` in the record: the registered country stands in.
    assert_eq!(geo_of(&events, "/r/reg")["country_code"], "DE");
    assert_eq!(geo_of(&events, "/r/private"), serde_json::Value::Null);
    // The stored address is cut after the lookup.
    let e = events
        .iter()
        .find(|e| e["link"]["path"] == "/r/london")
        .unwrap();
    assert_eq!(e["client"]["ip"], "81.2.69.0");
}

#[test]
fn split_flat_databases_serve_ipv4_and_ipv6() {
    let t = Path::new(env!("CARGO_MANIFEST_DIR")).join("geo/test");
    let db = format!(
        "database = [\"{}\", \"{}\"]",
        t.join("clicktap-test-flat-ipv4.mmdb").display(),
        t.join("clicktap-test-flat-ipv6.mmdb").display()
    );
    let events = run(
        &db,
        &[("/r/se", "89.160.20.112"), ("/r/de6", "2a02:ec0::1")],
    );
    let se = geo_of(&events, "/r/se");
    assert_eq!(se["country_code"], "SE");
    assert_eq!(se["city"], "Linköping");
    assert_eq!(se["is_eu"], true);
    assert_eq!(geo_of(&events, "/r/de6")["country_code"], "DE");
}

#[test]
fn a_missing_optional_database_means_events_without_geo_and_one_warning() {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .geoip("database = \"/nonexistent/City.mmdb\"")
        .geoip("optional = true");
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    ct.click("/r/x", &format!("X-Forwarded-For: {}\r\n", "81.2.69.142"));
    let events = ct.wait_events(1);
    assert_eq!(events[0]["geo"], serde_json::Value::Null);
    let log = ct.log_text();
    assert_eq!(log.matches("GeoIP unavailable").count(), 1, "{log}");
    assert!(log.contains("/nonexistent/City.mmdb"), "{log}");
}

/// With the real GeoLite2 database (`bash geo/fetch-geolite2.sh`), a well-known address.
#[test]
fn the_real_geolite2_database_when_present() {
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("geo/GeoLite2-City.mmdb");
    if !real.exists() {
        eprintln!(
            "note: geo/GeoLite2-City.mmdb absent (bash geo/fetch-geolite2.sh fetches it); skipped"
        );
        return;
    }
    let events = run(
        &format!("database = \"{}\"", real.display()),
        &[("/r/gb", "81.2.69.142"), ("/r/us", "8.8.8.8")],
    );
    assert_eq!(geo_of(&events, "/r/gb")["country_code"], "GB");
    assert_eq!(geo_of(&events, "/r/us")["country_code"], "US");
}
