//! Events, links and webhooks the format tests render: written out field by field as
//! enrichment and configuration would produce them, so that each format's tests read
//! as "this click becomes this payload".

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};
use uuid::Uuid;

use super::{Envelope, Item};
use crate::click::{
    Agent, Bot, BotKind, ClickEvent, ClickKind, Client, Destination, EventType, Geo, LinkRef,
    Referrer,
};
use crate::config::{
    Auth, BatchPolicy, Filter, Format, LinkMeta, RetryPolicy, Secret, SigningKey, WebhookConfig,
};

/// 2026-11-27T03:25:57Z: five seconds after the London click.
pub const SENT_AT_UNIX: u64 = 1_795_749_957;
pub const MESSAGE_ID: &str = "5f0c6a8e-3b7d-5e21-9c4a-7d2e1f0b6a93";
pub const RAW_SECRET: &str = "tly-3f9a1c7e-secret";

fn link(scheme: &str, host: &str, path: &str, query: Option<&str>) -> LinkRef {
    let url = match query {
        Some(q) => format!("{scheme}://{host}{path}?{q}"),
        None => format!("{scheme}://{host}{path}"),
    };
    LinkRef {
        url,
        scheme: scheme.into(),
        host: host.into(),
        path: path.into(),
        query: query.map(Into::into),
    }
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

/// A person in London on Chrome for macOS, from Hacker News, on a link with UTM
/// parameters; the operator keeps raw IPs.
pub fn chrome_mac_london() -> ClickEvent {
    let ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 \
              (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    ClickEvent {
        id: Uuid::parse_str("019ac3f0-5b1b-7c3e-9a4d-2f6e8b1c0d3e").expect("uuid"),
        timestamp: "2026-11-27T03:25:52.123Z".into(),
        event_type: EventType::LinkClicked,
        kind: ClickKind::Human,
        method: "GET".into(),
        status: 302,
        link: link(
            "https",
            "brand.link",
            "/launch",
            Some("utm_source=newsletter&utm_medium=email&utm_campaign=spring&ref=hn"),
        ),
        params: params(&[
            ("ref", "hn"),
            ("utm_campaign", "spring"),
            ("utm_medium", "email"),
            ("utm_source", "newsletter"),
        ]),
        destination: Some(Destination {
            url: "https://example.com/landing-page?lang=en".into(),
            host: Some("example.com".into()),
        }),
        referrer: Referrer {
            url: Some("https://news.ycombinator.com/item?id=1".into()),
            host: "news.ycombinator.com".into(),
        },
        client: Client {
            ip: Some("81.2.69.0".into()),
            ip_version: Some(4),
            raw_ip: Some("81.2.69.142".into()),
            ip_source: "x-forwarded-for".into(),
            user_agent: Some(ua.into()),
            prefetch: false,
        },
        agent: Agent {
            browser: Some("Chrome".into()),
            browser_version: Some("124.0.0.0".into()),
            os: Some("Mac OSX".into()),
            os_version: Some("10.15.7".into()),
            category: Some("pc".into()),
            vendor: Some("Google".into()),
            device_type: "desktop".into(),
        },
        bot: None,
        geo: Some(Geo {
            country_code: Some("GB".into()),
            country_name: Some("United Kingdom".into()),
            region: Some("England".into()),
            region_code: Some("ENG".into()),
            city: Some("London".into()),
            postal_code: Some("EC1A".into()),
            time_zone: Some("Europe/London".into()),
            is_eu: Some(false),
            latitude: Some(51.5142),
            longitude: Some(-0.0931),
        }),
        truncated: Vec::new(),
        unique: None,
    }
}

/// Slack unfurling the link in a channel: a preview fetcher, no referrer, no query.
pub fn slackbot() -> ClickEvent {
    ClickEvent {
        id: Uuid::parse_str("019ac3f0-7d2a-7f10-8b3c-4e5f6a7b8c9d").expect("uuid"),
        timestamp: "2026-11-27T03:26:10.004Z".into(),
        event_type: EventType::LinkClicked,
        kind: ClickKind::Preview,
        method: "GET".into(),
        status: 301,
        link: link("https", "brand.link", "/launch", None),
        params: BTreeMap::new(),
        destination: Some(Destination {
            url: "https://example.com/landing-page".into(),
            host: Some("example.com".into()),
        }),
        referrer: Referrer {
            url: None,
            host: "direct".into(),
        },
        client: Client {
            ip: Some("3.84.12.0".into()),
            ip_version: Some(4),
            raw_ip: None,
            ip_source: "socket".into(),
            user_agent: Some("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)".into()),
            prefetch: false,
        },
        agent: Agent {
            device_type: "bot".into(),
            ..Agent::default()
        },
        bot: Some(Bot {
            name: "Slackbot".into(),
            kind: BotKind::Preview,
        }),
        geo: Some(Geo {
            country_code: Some("US".into()),
            country_name: Some("United States".into()),
            region: Some("Virginia".into()),
            region_code: Some("VA".into()),
            city: Some("Ashburn".into()),
            time_zone: Some("America/New_York".into()),
            is_eu: Some(false),
            ..Geo::default()
        }),
        truncated: Vec::new(),
        unique: None,
    }
}

/// A click about which nothing is known: no user agent, no GeoIP database, no
/// referrer, no query, and a redirect without a `Location`.
pub fn bare() -> ClickEvent {
    ClickEvent {
        id: Uuid::parse_str("019ac3f1-0000-7000-8000-000000000001").expect("uuid"),
        timestamp: "2026-11-27T03:27:00.000Z".into(),
        event_type: EventType::LinkClicked,
        kind: ClickKind::Human,
        method: "GET".into(),
        status: 302,
        link: link("http", "sho.rt:8080", "/x", None),
        params: BTreeMap::new(),
        destination: None,
        referrer: Referrer {
            url: None,
            host: "direct".into(),
        },
        client: Client {
            ip: None,
            ip_version: None,
            raw_ip: None,
            ip_source: "socket".into(),
            user_agent: None,
            prefetch: false,
        },
        agent: Agent {
            device_type: "other".into(),
            ..Agent::default()
        },
        bot: None,
        geo: None,
        truncated: Vec::new(),
        unique: None,
    }
}

/// The `[[links]]` entry an operator wrote for `brand.link/launch`.
pub fn launch_link() -> LinkMeta {
    LinkMeta {
        host: Some("brand.link".into()),
        path: None,
        id: Some("12345".into()),
        name: Some("Spring launch".into()),
        tags: vec!["launch".into(), "email".into()],
        workspace_id: Some("7".into()),
        group_guid: Some("B0000000042".into()),
        organization_guid: Some("O0000000007".into()),
        created_at: Some("2023-08-31T04:13:48.385".into()),
        qr: false,
        qr_params: Vec::new(),
    }
}

/// A webhook as configuration builds it, in `format`, with its default batch size.
pub fn webhook(format: Format) -> WebhookConfig {
    WebhookConfig {
        id: "crm".into(),
        url: "https://hooks.example.com/clicks".parse().expect("url"),
        format,
        enabled: true,
        secrets: vec![SigningKey(RAW_SECRET.as_bytes().to_vec())],
        secret_keys: Vec::new(),
        raw_secret: Some(Secret::new(RAW_SECRET)),
        headers: Vec::new(),
        timeout: Duration::from_secs(5),
        disable_after: Duration::from_secs(24 * 3600),
        rate_limit: None,
        concurrency: 4,
        fetch_tags: false,
        guid: "W0123456789".into(),
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
            max_attempts: 5,
            schedule: vec![Duration::from_secs(5)],
            jitter: 0.2,
            max_backoff: Duration::from_secs(3600),
        },
        batch: BatchPolicy {
            max_events: if format == Format::Rebrandly { 100 } else { 1 },
            max_wait: Duration::from_secs(1),
        },
        fingerprint: String::new(),
    }
}

pub fn envelope(webhook: &WebhookConfig) -> Envelope<'_> {
    Envelope {
        webhook,
        message_id: MESSAGE_ID,
        sent_at: UNIX_EPOCH + Duration::from_secs(SENT_AT_UNIX),
    }
}

pub fn item<'a>(event: &'a ClickEvent, link: Option<&'a LinkMeta>) -> Item<'a> {
    Item { event, link }
}

/// Renders one item and parses the body back, for assertions on its shape.
pub fn render_one(
    format: Format,
    webhook: &WebhookConfig,
    event: &ClickEvent,
    link: Option<&LinkMeta>,
) -> (serde_json::Value, super::Rendered) {
    let out = super::render(format, &[item(event, link)], &envelope(webhook));
    let body = serde_json::from_slice(&out.body).expect("the body is JSON");
    (body, out)
}

/// A rendered header's value by name, any case.
pub fn header<'a>(out: &'a super::Rendered, name: &str) -> Option<&'a str> {
    out.headers
        .iter()
        .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.to_str().ok())
}

/// The keys of a JSON object, sorted, for "exactly these fields" assertions.
pub fn keys(v: &serde_json::Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

/// Every string anywhere in `v`, for "never carries X" assertions.
pub fn strings(v: &serde_json::Value) -> Vec<&str> {
    match v {
        serde_json::Value::String(s) => vec![s.as_str()],
        serde_json::Value::Array(a) => a.iter().flat_map(strings).collect(),
        serde_json::Value::Object(o) => o
            .iter()
            .flat_map(|(k, v)| std::iter::once(k.as_str()).chain(strings(v)))
            .collect(),
        _ => Vec::new(),
    }
}
