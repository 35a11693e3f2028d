//! What several targets share: stored events as the queue hands them over, webhooks as
//! configuration builds them, and the check every rendered body passes.

#![allow(dead_code)]

use clicktap::click::{Agent, ClickKind, EventType, Geo, LinkRef};
use clicktap::config::{
    Auth, BatchPolicy, Filter, Format, LinkMeta, RetryPolicy, Secret, WebhookConfig,
};
use clicktap::deliver::formats::{Envelope, StoredItem, render_stored};
use clicktap::queue::Stored;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const FORMATS: [Format; 6] = Format::ALL;

/// The queue's plain batch layout holding one event: `count`, then `at_ms`, `len`
/// and the bytes, big-endian (src/queue/batch.rs).
pub fn plain_value(event: &[u8]) -> Vec<u8> {
    let mut v = 1u32.to_be_bytes().to_vec();
    v.extend_from_slice(&0u64.to_be_bytes());
    v.extend_from_slice(&(event.len() as u32).to_be_bytes());
    v.extend_from_slice(event);
    v
}

/// `bytes` as the queue's read hands them to delivery.
pub fn stored(seq: u64, bytes: &[u8]) -> Stored {
    clicktap::queue::decode_batch(seq, &plain_value(bytes))
        .expect("a plain value of one event decodes")
        .remove(0)
}

/// A webhook as configuration builds it; the strings are the operator's.
pub fn webhook(
    format: Format,
    id: &str,
    guid: &str,
    raw_secret: Option<&str>,
    max_events: usize,
) -> WebhookConfig {
    WebhookConfig {
        id: id.into(),
        url: "https://hooks.example.com/clicks".parse().expect("url"),
        format,
        enabled: true,
        secrets: Vec::new(),
        secret_keys: Vec::new(),
        raw_secret: raw_secret.map(Secret::new),
        headers: Vec::new(),
        timeout: Duration::from_secs(5),
        disable_after: Duration::from_secs(86_400),
        rate_limit: None,
        concurrency: 1,
        fetch_tags: false,
        guid: guid.into(),
        source: None,
        filter: Filter {
            events: EventType::ALL.into_iter().collect(),
            hosts: Vec::new(),
            paths: Vec::new(),
            tags: Vec::new(),
            kinds: ClickKind::ALL.into_iter().collect(),
            unique: false,
        },
        auth: Auth::None,
        retry: RetryPolicy {
            max_attempts: 1,
            schedule: vec![Duration::from_secs(5)],
            jitter: 0.0,
            max_backoff: Duration::from_secs(3600),
        },
        batch: BatchPolicy {
            // Configuration refuses batches for the formats that send one event.
            max_events: if format.batches() {
                max_events.max(1)
            } else {
                1
            },
            max_wait: Duration::from_secs(1),
        },
        fingerprint: String::new(),
    }
}

/// The native body of one stored event, sent as it is by a webhook of `max_events`.
pub fn native_body(stored: &[u8], link: Option<&LinkMeta>, max_events: usize) -> Vec<u8> {
    let webhook = webhook(Format::Native, "crm", "W0123456789", None, max_events);
    let env = Envelope {
        webhook: &webhook,
        message_id: "m",
        sent_at: UNIX_EPOCH,
    };
    render_stored(&[StoredItem { json: stored, link }], &env).body
}

/// A stored event sent as it is (native): one JSON object by RFC 8259's grammar, in
/// UTF-8. Grammar only: delivery reads only a few fields of a stored event, and an
/// escaped lone surrogate (`\ud800`) in one it skips passes, as the RFC leaves its
/// meaning to the receiver; serde_json's own `Value` refuses one.
pub fn json_grammar(body: &[u8]) {
    let text = std::str::from_utf8(body).expect("a native body is UTF-8");
    assert!(
        text.trim_start().starts_with('{'),
        "a native body is an object: {text}"
    );
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        panic!("a native body is not JSON ({e}): {text}");
    }
}

/// A body is one JSON object, in UTF-8: what every receiver parses.
pub fn json_object(format: Format, body: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::from_slice(body) {
        Ok(serde_json::Value::Object(map)) => map,
        // CloudEvents' JSON batch format: an array of event objects.
        Ok(serde_json::Value::Array(events))
            if format == Format::CloudEvents && events.iter().all(|e| e.is_object()) =>
        {
            serde_json::Map::new()
        }
        Ok(other) => panic!("{} body is not an object: {other}", format.as_str()),
        Err(e) => panic!(
            "{} body is not JSON ({e}): {}",
            format.as_str(),
            String::from_utf8_lossy(body)
        ),
    }
}

/// Whether validating `text` would ask DNS: `proxy.upstream` is resolved once, at load,
/// unless it is an address literal (or has no port, which is refused first). Tests and
/// fuzzing stay off the network, so such texts are left out; `localhost` stays in, as
/// the hosts file answers it.
pub fn upstream_needs_dns(text: &str) -> bool {
    let Ok(doc) = text.parse::<toml::Table>() else {
        return false;
    };
    let upstream = doc.get("proxy").and_then(|p| p.get("upstream"));
    let Some(upstream) = upstream.and_then(|u| u.as_str()) else {
        return false;
    };
    if upstream.parse::<std::net::SocketAddr>().is_ok() {
        return false;
    }
    match upstream.rsplit_once(':') {
        Some((host, _)) => host != "localhost",
        None => false,
    }
}

/// `d` before or after the epoch; the epoch where `SystemTime` cannot reach.
pub fn time(before: bool, d: Duration) -> SystemTime {
    let t = if before {
        UNIX_EPOCH.checked_sub(d)
    } else {
        UNIX_EPOCH.checked_add(d)
    };
    t.unwrap_or(UNIX_EPOCH)
}

/// The link clicked, its URL written from its parts as enrichment writes it.
pub fn link(scheme: String, host: String, path: String, query: Option<String>) -> LinkRef {
    let url = match &query {
        Some(q) => format!("{scheme}://{host}{path}?{q}"),
        None => format!("{scheme}://{host}{path}"),
    };
    LinkRef {
        url,
        scheme,
        host,
        path,
        query,
    }
}

/// An agent from browser, browser version, OS, OS version, category and vendor.
pub fn agent(names: [Option<String>; 6], device_type: String) -> Agent {
    let [browser, browser_version, os, os_version, category, vendor] = names;
    Agent {
        browser,
        browser_version,
        os,
        os_version,
        category,
        vendor,
        device_type,
    }
}

/// A place from country code and name, region and its code, city, postal code and time
/// zone.
pub fn geo(
    names: [Option<String>; 7],
    is_eu: Option<bool>,
    latitude: Option<f64>,
    longitude: Option<f64>,
) -> Geo {
    let [
        country_code,
        country_name,
        region,
        region_code,
        city,
        postal_code,
        time_zone,
    ] = names;
    Geo {
        country_code,
        country_name,
        region,
        region_code,
        city,
        postal_code,
        time_zone,
        is_eu,
        latitude,
        longitude,
    }
}
