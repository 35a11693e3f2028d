//! The Rebrandly format: a batch `{"data": [event, ...], "key": "..."}`, as
//! Rebrandly's click stream posts it.
//!
//! Each event follows Rebrandly's published examples: `client.agent` as
//! `{browser{name, version}, os{name, version}, device{name}, type}` with names lower
//! case and dashed (`chrome-mobile`, `android`, `android-10`, `smartphone`),
//! `client.geo` with the country upper case, `client.location` with ISO 3166 codes
//! lower case, `referral` for where the visitor came from, and `route` for the link
//! and its destination, with `domain.zone` the host reversed (`link.brand` for
//! `brand.link`).
//!
//! Rebrandly's ids are 32 hex digits. A link's id comes from its `[[links]]` entry;
//! without one, it and the domain id are UUIDv5 digests of the link and the host, so
//! that they stay the same across events and restarts. The batch `key` follows the
//! stream's naming, `rb-clicks-stream-1-<time of the first event>-<message id>`, and so
//! is the same on every attempt of a batch: receivers can drop a batch they have seen.
//! The secret goes, as written, in `X-Rebrandly-Secret` and `apikey`.

use serde::Serialize;
use std::time::SystemTime;
use url::Url;
use uuid::Uuid;

use super::{
    Envelope, Item, JSON, Rendered, browser_name, click_time, header, iso_millis, iso_seconds,
    json, os_name, os_version, slug,
};
use crate::click::{Agent, ClickEvent, Geo};
use crate::config::Format;

#[derive(Serialize)]
struct Batch<'a> {
    data: Vec<Event<'a>>,
    key: String,
}

#[derive(Serialize)]
struct Event<'a> {
    id: String,
    timestamp: String,
    client: Client<'a>,
    referral: Option<Parts>,
    route: Route<'a>,
}

#[derive(Serialize)]
struct Client<'a> {
    agent: AgentOut<'a>,
    geo: GeoOut<'a>,
    location: Location,
}

#[derive(Serialize)]
struct AgentOut<'a> {
    browser: Named<'a>,
    os: NamedOwned,
    device: Device,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Named<'a> {
    name: Option<String>,
    version: Option<&'a str>,
}

#[derive(Serialize)]
struct NamedOwned {
    name: Option<String>,
    version: Option<String>,
}

#[derive(Serialize)]
struct Device {
    name: &'static str,
}

#[derive(Serialize)]
struct GeoOut<'a> {
    country: Option<&'a str>,
    region: Option<&'a str>,
    city: Option<&'a str>,
}

#[derive(Serialize)]
struct Location {
    country: Option<String>,
    region: Option<String>,
    city: Option<String>,
}

#[derive(Serialize)]
struct Route<'a> {
    id: String,
    slashtag: &'a str,
    #[serde(rename = "createdAt")]
    created_at: Option<&'a str>,
    domain: Domain<'a>,
    destination: Option<Destination<'a>>,
}

#[derive(Serialize)]
struct Domain<'a> {
    id: String,
    raw: &'a str,
    zone: String,
}

#[derive(Serialize)]
struct Destination<'a> {
    raw: &'a str,
    #[serde(flatten)]
    parts: Parts,
}

/// A URL's parts as Rebrandly writes them: `https`, `example.com`, `/landing-page`.
#[derive(Serialize)]
struct Parts {
    protocol: Option<String>,
    hostname: Option<String>,
    path: Option<String>,
}

fn parts(url: &str) -> Parts {
    match Url::parse(url) {
        Ok(u) => Parts {
            protocol: Some(u.scheme().to_string()),
            hostname: u.host_str().map(str::to_string),
            path: Some(u.path().to_string()),
        },
        Err(_) => Parts {
            protocol: None,
            hostname: None,
            path: None,
        },
    }
}

pub(super) fn render(items: &[Item<'_>], env: &Envelope<'_>) -> Rendered {
    let first = items
        .first()
        .map_or(env.sent_at, |i| click_time(i.event, env.sent_at));
    let batch = Batch {
        data: items.iter().map(|i| event(i, env.sent_at)).collect(),
        key: key(first, env.message_id),
    };
    let secret = env.webhook.raw_secret.as_ref();
    let headers = [
        secret.and_then(|s| header("x-rebrandly-secret", s.expose(), true)),
        secret.and_then(|s| header("apikey", s.expose(), true)),
    ];
    Rendered {
        body: json(Format::Rebrandly, &batch),
        content_type: JSON,
        headers: headers.into_iter().flatten().collect(),
    }
}

/// `rb-clicks-stream-1-2026-11-27-03-25-52-<message id>`.
fn key(first: SystemTime, message_id: &str) -> String {
    let at = iso_seconds(first);
    let at = at.trim_end_matches('Z').replace(['T', ':'], "-");
    format!("rb-clicks-stream-1-{at}-{message_id}")
}

fn event<'a>(item: &Item<'a>, sent_at: SystemTime) -> Event<'a> {
    let e = item.event;
    let host = host_name(&e.link.host);
    let route_id = match item.link.and_then(|m| m.id.as_deref()) {
        Some(id) => id.to_string(),
        None => hex_id(&format!("{host}{}", e.link.path)),
    };
    Event {
        id: e.id.to_string(),
        timestamp: iso_millis(click_time(e, sent_at)),
        client: Client {
            agent: agent(e),
            geo: geo(e.geo.as_ref()),
            location: location(e.geo.as_ref()),
        },
        referral: e.referrer.url.as_deref().map(parts),
        route: Route {
            id: route_id,
            slashtag: e.link.path.strip_prefix('/').unwrap_or(&e.link.path),
            created_at: item.link.and_then(|m| m.created_at.as_deref()),
            domain: Domain {
                id: hex_id(host),
                raw: host,
                zone: zone(host),
            },
            destination: e.destination.as_ref().map(|d| Destination {
                raw: &d.url,
                parts: parts(&d.url),
            }),
        },
    }
}

/// A stable 32-hex-digit id for a name: the shape of Rebrandly's ids.
fn hex_id(name: &str) -> String {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, name.as_bytes())
        .simple()
        .to_string()
}

fn agent(e: &ClickEvent) -> AgentOut<'_> {
    let a = &e.agent;
    let browser = match &e.bot {
        Some(bot) => Named {
            name: Some(slug(&bot.name)),
            version: None,
        },
        None => Named {
            name: browser_family(a).map(|b| slug(&b)),
            version: a.browser_version.as_deref(),
        },
    };
    let os = os_name(a).map(slug);
    let os_version = match (&os, os_version(a)) {
        (Some(name), Some(v)) if !v.is_empty() => Some(format!("{name}-{}", slug(v))),
        _ => None,
    };
    AgentOut {
        browser,
        os: NamedOwned {
            name: os,
            version: os_version,
        },
        device: Device {
            name: match (e.bot.is_some(), a.device_type.as_str()) {
                (true, _) | (_, "bot") => "bot",
                (_, "mobile") => "smartphone",
                (_, "desktop") => "desktop",
                (_, "tablet") => "tablet",
                _ => "other",
            },
        },
        kind: if e.bot.is_some() { "bot" } else { "human" },
    }
}

/// The browser as user-agent families name it: phones' builds of a browser are its
/// `Mobile` family (`Chrome Mobile`), and Safari on iOS is `Mobile Safari`.
fn browser_family(a: &Agent) -> Option<String> {
    let name = browser_name(a)?;
    let phone = a.device_type == "mobile";
    Some(match name {
        "Safari" if phone || os_name(a) == Some("iOS") => "Mobile Safari".to_string(),
        "Chrome" | "Firefox" | "Edge" | "Opera" if phone => format!("{name} Mobile"),
        other => other.to_string(),
    })
}

fn geo(g: Option<&Geo>) -> GeoOut<'_> {
    GeoOut {
        country: g.and_then(|g| g.country_code.as_deref()),
        // Rebrandly writes the subdivision's code (`CA`); a database without codes
        // gives its name instead.
        region: g.and_then(|g| g.region_code.as_deref().or(g.region.as_deref())),
        city: g.and_then(|g| g.city.as_deref()),
    }
}

/// ISO 3166 codes, lower case: `gb`, `gb-eng`; the city as a lower-case dashed name.
fn location(g: Option<&Geo>) -> Location {
    let country = g.and_then(|g| g.country_code.as_deref());
    Location {
        country: country.map(str::to_ascii_lowercase),
        region: match (country, g.and_then(|g| g.region_code.as_deref())) {
            (Some(c), Some(r)) => Some(format!("{c}-{r}").to_ascii_lowercase()),
            _ => None,
        },
        city: g.and_then(|g| g.city.as_deref()).map(slug),
    }
}

/// The host without a port: `brand.link:8080` → `brand.link`, `[::1]:80` → `[::1]`.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The host's labels in reverse: `brand.link` → `link.brand`.
fn zone(host: &str) -> String {
    if host.starts_with('[') {
        return host.to_string();
    }
    let mut labels: Vec<&str> = host.split('.').collect();
    labels.reverse();
    labels.join(".")
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::render;
    use super::{host_name, key, zone};
    use crate::click::{Agent, ClickEvent};
    use crate::config::Format;
    use serde_json::{Value, json};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_person_clicking_a_configured_link() {
        let (body, _) = render_one(
            Format::Rebrandly,
            &webhook(Format::Rebrandly),
            &chrome_mac_london(),
            Some(&launch_link()),
        );
        assert_eq!(
            body,
            json!({
                "data": [{
                    "id": "019ac3f0-5b1b-7c3e-9a4d-2f6e8b1c0d3e",
                    "timestamp": "2026-11-27T03:25:52.123Z",
                    "client": {
                        "agent": {
                            "browser": {"name": "chrome", "version": "124.0.0.0"},
                            "os": {"name": "mac-os", "version": "mac-os-10.15.7"},
                            "device": {"name": "desktop"},
                            "type": "human",
                        },
                        "geo": {"country": "GB", "region": "ENG", "city": "London"},
                        "location": {"country": "gb", "region": "gb-eng", "city": "london"},
                    },
                    "referral": {
                        "protocol": "https",
                        "hostname": "news.ycombinator.com",
                        "path": "/item",
                    },
                    "route": {
                        "id": "12345",
                        "slashtag": "launch",
                        "createdAt": "2023-08-31T04:13:48.385",
                        "domain": {
                            "id": super::hex_id("brand.link"),
                            "raw": "brand.link",
                            "zone": "link.brand",
                        },
                        "destination": {
                            "raw": "https://example.com/landing-page?lang=en",
                            "protocol": "https",
                            "hostname": "example.com",
                            "path": "/landing-page",
                        },
                    },
                }],
                "key": format!("rb-clicks-stream-1-2026-11-27-03-25-52-{MESSAGE_ID}"),
            })
        );
    }

    #[test]
    fn one_request_carries_the_batch_in_order() {
        let webhook = webhook(Format::Rebrandly);
        let (a, b, c) = (chrome_mac_london(), slackbot(), bare());
        let items = [item(&a, None), item(&b, None), item(&c, None)];
        let out = render(Format::Rebrandly, &items, &envelope(&webhook));
        let body: Value = serde_json::from_slice(&out.body).expect("json");
        assert_eq!(keys(&body), ["data", "key"]);
        let ids: Vec<&str> = body["data"]
            .as_array()
            .expect("array")
            .iter()
            .map(|e| e["id"].as_str().expect("id"))
            .collect();
        assert_eq!(ids, [a.id.to_string(), b.id.to_string(), c.id.to_string()]);
        for e in body["data"].as_array().expect("array") {
            assert_eq!(keys(e), ["client", "id", "referral", "route", "timestamp"]);
            assert_eq!(keys(&e["client"]), ["agent", "geo", "location"]);
            assert_eq!(
                keys(&e["route"]),
                ["createdAt", "destination", "domain", "id", "slashtag"]
            );
        }
    }

    #[test]
    fn the_key_names_the_first_event_and_stays_the_same_on_retries() {
        let webhook = webhook(Format::Rebrandly);
        let event = slackbot();
        let mut env = envelope(&webhook);
        let first = render(Format::Rebrandly, &[item(&event, None)], &env);
        env.sent_at += Duration::from_secs(300);
        let retry = render(Format::Rebrandly, &[item(&event, None)], &env);
        assert_eq!(first.body, retry.body);
        let body: Value = serde_json::from_slice(&first.body).expect("json");
        assert_eq!(
            body["key"],
            format!("rb-clicks-stream-1-2026-11-27-03-26-10-{MESSAGE_ID}")
        );
        assert_eq!(
            key(UNIX_EPOCH + Duration::from_secs(SENT_AT_UNIX), "g"),
            "rb-clicks-stream-1-2026-11-27-03-25-57-g"
        );
    }

    #[test]
    fn a_bot_is_named_by_its_bot_name_and_typed_bot() {
        let (body, _) = render_one(
            Format::Rebrandly,
            &webhook(Format::Rebrandly),
            &slackbot(),
            None,
        );
        let e = &body["data"][0];
        assert_eq!(
            e["client"]["agent"],
            json!({
                "browser": {"name": "slackbot", "version": null},
                "os": {"name": null, "version": null},
                "device": {"name": "bot"},
                "type": "bot",
            })
        );
        assert_eq!(e["referral"], Value::Null);
        assert_eq!(e["timestamp"], "2026-11-27T03:26:10.004Z");
        // No [[links]] entry: the route id is derived, and the same for every click.
        let id = e["route"]["id"].as_str().expect("id");
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        let (again, _) = render_one(
            Format::Rebrandly,
            &webhook(Format::Rebrandly),
            &chrome_mac_london(),
            None,
        );
        assert_eq!(again["data"][0]["route"]["id"], id);
        assert_eq!(e["route"]["createdAt"], Value::Null);
    }

    #[test]
    fn phones_are_named_as_rebrandly_names_them() {
        let mut e: ClickEvent = chrome_mac_london();
        e.agent = Agent {
            browser: Some("Chrome".into()),
            browser_version: Some("121.0.0.0".into()),
            os: Some("Android".into()),
            os_version: Some("10".into()),
            category: Some("smartphone".into()),
            vendor: Some("Google".into()),
            device_type: "mobile".into(),
        };
        let (body, _) = render_one(Format::Rebrandly, &webhook(Format::Rebrandly), &e, None);
        let agent = &body["data"][0]["client"]["agent"];
        assert_eq!(agent["browser"]["name"], "chrome-mobile");
        assert_eq!(
            agent["os"],
            json!({"name": "android", "version": "android-10"})
        );
        assert_eq!(agent["device"]["name"], "smartphone");

        e.agent = Agent {
            browser: Some("Safari".into()),
            os: Some("iPad".into()),
            os_version: Some("16.6".into()),
            device_type: "tablet".into(),
            ..Agent::default()
        };
        let (body, _) = render_one(Format::Rebrandly, &webhook(Format::Rebrandly), &e, None);
        let agent = &body["data"][0]["client"]["agent"];
        assert_eq!(agent["browser"]["name"], "mobile-safari");
        assert_eq!(agent["os"]["version"], "ios-16.6");
        assert_eq!(agent["device"]["name"], "tablet");

        e.agent = Agent {
            browser: Some("Edge".into()),
            os: Some("Windows 10".into()),
            os_version: Some("NT 10.0".into()),
            device_type: "desktop".into(),
            ..Agent::default()
        };
        let (body, _) = render_one(Format::Rebrandly, &webhook(Format::Rebrandly), &e, None);
        let agent = &body["data"][0]["client"]["agent"];
        assert_eq!(agent["browser"]["name"], "edge");
        assert_eq!(
            agent["os"],
            json!({"name": "windows", "version": "windows-10"})
        );
    }

    #[test]
    fn zones_are_hosts_reversed_without_the_port() {
        assert_eq!(zone("brand.link"), "link.brand");
        assert_eq!(zone("go.brand.co.uk"), "uk.co.brand.go");
        assert_eq!(zone("localhost"), "localhost");
        assert_eq!(host_name("brand.link:8443"), "brand.link");
        assert_eq!(host_name("[2001:db8::1]:8080"), "[2001:db8::1]");
        assert_eq!(zone(host_name("[2001:db8::1]")), "[2001:db8::1]");
        assert_eq!(host_name("brand.link"), "brand.link");
    }

    #[test]
    fn the_secret_goes_in_both_headers() {
        let (_, out) = render_one(
            Format::Rebrandly,
            &webhook(Format::Rebrandly),
            &bare(),
            None,
        );
        assert_eq!(header(&out, "X-Rebrandly-Secret"), Some(RAW_SECRET));
        assert_eq!(header(&out, "apikey"), Some(RAW_SECRET));
        assert!(out.headers.iter().all(|(_, v)| v.is_sensitive()));

        let mut webhook = webhook(Format::Rebrandly);
        webhook.raw_secret = None;
        let (_, out) = render_one(Format::Rebrandly, &webhook, &bare(), None);
        assert!(out.headers.is_empty());
    }

    #[test]
    fn nothing_known_is_null_not_invented() {
        let (body, _) = render_one(
            Format::Rebrandly,
            &webhook(Format::Rebrandly),
            &bare(),
            None,
        );
        let e = &body["data"][0];
        assert_eq!(
            e["client"]["geo"],
            json!({"country": null, "region": null, "city": null})
        );
        assert_eq!(
            e["client"]["location"],
            json!({"country": null, "region": null, "city": null})
        );
        assert_eq!(e["client"]["agent"]["browser"]["name"], Value::Null);
        assert_eq!(e["client"]["agent"]["device"]["name"], "other");
        assert_eq!(e["route"]["destination"], Value::Null);
        assert_eq!(e["route"]["slashtag"], "x");
        assert_eq!(e["route"]["domain"]["raw"], "sho.rt");
        assert_eq!(e["route"]["domain"]["zone"], "rt.sho");
    }

    #[test]
    fn an_empty_batch_is_an_empty_data_array() {
        let webhook = webhook(Format::Rebrandly);
        let out = render(Format::Rebrandly, &[], &envelope(&webhook));
        let body: Value = serde_json::from_slice(&out.body).expect("json");
        assert_eq!(body["data"], json!([]));
    }
}
