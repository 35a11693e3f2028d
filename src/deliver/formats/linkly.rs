//! The Linkly format: `{event, timestamp, link{...}, click{...}}`, one click per
//! request, as in Linkly's published example payload.
//!
//! Linkly's `link` describes the link's settings in Linkly. clicktap sits in front of
//! someone else's shortener and knows none of them, so the settings are sent as a
//! plain link has them (`enabled` true, the features off, no Open Graph text, no
//! rules); the names and ids come from the matching `[[links]]` entry, and ids that
//! are whole numbers are sent as numbers, as Linkly's are. As in Linkly's example,
//! `link.url` is where the link points (the same as `destination`) and `full_url` is
//! the short link itself.
//!
//! Linkly never sends an IP address, and neither does this format: nothing from the
//! event's `client` is read here but through the agent and GeoIP fields.

use serde::Serialize;
use std::collections::BTreeMap;

use super::{
    Envelope, Item, JSON, Rendered, browser_name, click_time, iso_seconds, json, short_url,
};
use crate::click::ClickEvent;
use crate::config::Format;

#[derive(Serialize)]
struct Click<'a> {
    event: &'static str,
    timestamp: String,
    link: Link<'a>,
    click: Visit<'a>,
}

#[derive(Serialize)]
struct Link<'a> {
    id: Option<Id<'a>>,
    name: Option<&'a str>,
    url: Option<&'a str>,
    full_url: String,
    domain: &'a str,
    slug: &'a str,
    destination: Option<&'a str>,
    workspace_id: Option<Id<'a>>,
    enabled: bool,
    cloaking: bool,
    forward_params: bool,
    block_bots: bool,
    public_analytics: bool,
    utm_source: Option<&'a str>,
    utm_medium: Option<&'a str>,
    utm_campaign: Option<&'a str>,
    og_title: Option<&'a str>,
    og_description: Option<&'a str>,
    /// Linkly's redirect rules; clicktap has none to report.
    rules: [(); 0],
}

#[derive(Serialize)]
struct Visit<'a> {
    country: Option<&'a str>,
    is_eu_country: Option<bool>,
    platform: &'a str,
    browser_name: Option<&'a str>,
    referer: Option<&'a str>,
    isp: Option<&'a str>,
    bot_name: Option<&'a str>,
    destination: Option<&'a str>,
    params: &'a BTreeMap<String, String>,
}

/// An id as Linkly sends it: a number when it is one.
#[derive(Serialize)]
#[serde(untagged)]
enum Id<'a> {
    Number(i64),
    Text(&'a str),
}

fn id(s: Option<&str>) -> Option<Id<'_>> {
    let s = s?;
    Some(s.parse().map_or(Id::Text(s), Id::Number))
}

pub(super) fn render(item: &Item<'_>, env: &Envelope<'_>) -> Rendered {
    let e = item.event;
    let meta = item.link;
    let geo = e.geo.as_ref();
    let destination = e.destination.as_ref().map(|d| d.url.as_str());
    let param = |name: &str| e.params.get(name).map(String::as_str);
    let payload = Click {
        event: "click",
        timestamp: iso_seconds(click_time(e, env.sent_at)),
        link: Link {
            id: id(meta.and_then(|m| m.id.as_deref())),
            name: meta.and_then(|m| m.name.as_deref()),
            url: destination,
            full_url: short_url(&e.link),
            domain: &e.link.host,
            slug: &e.link.path,
            destination,
            workspace_id: id(meta.and_then(|m| m.workspace_id.as_deref())),
            enabled: true,
            cloaking: false,
            forward_params: false,
            block_bots: false,
            public_analytics: false,
            utm_source: param("utm_source"),
            utm_medium: param("utm_medium"),
            utm_campaign: param("utm_campaign"),
            og_title: None,
            og_description: None,
            rules: [],
        },
        click: Visit {
            country: geo.and_then(|g| g.country_code.as_deref()),
            is_eu_country: geo.and_then(|g| g.is_eu),
            platform: platform(e),
            browser_name: browser_name(&e.agent),
            referer: e.referrer.url.as_deref(),
            isp: None,
            bot_name: e.bot.as_ref().map(|b| b.name.as_str()),
            destination,
            params: &e.params,
        },
    };
    Rendered {
        body: json(Format::Linkly, &payload),
        content_type: JSON,
        headers: Vec::new(),
    }
}

/// Linkly's lower-case platform: `bot` for bots, whatever they imitate; `ios` and
/// `android` from the OS; the device type (`desktop`, `mobile`, `tablet`, `other`)
/// for the rest.
fn platform(e: &ClickEvent) -> &str {
    if e.bot.is_some() {
        return "bot";
    }
    match super::mobile_os(&e.agent) {
        Some(os) => os,
        None if e.agent.device_type.is_empty() => "other",
        None => &e.agent.device_type,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use crate::click::Agent;
    use crate::config::Format;
    use serde_json::{Value, json};

    #[test]
    fn a_person_clicking_a_configured_link() {
        let (body, out) = render_one(
            Format::Linkly,
            &webhook(Format::Linkly),
            &chrome_mac_london(),
            Some(&launch_link()),
        );
        assert_eq!(
            body,
            json!({
                "event": "click",
                "timestamp": "2026-11-27T03:25:52Z",
                "link": {
                    "id": 12345,
                    "name": "Spring launch",
                    "url": "https://example.com/landing-page?lang=en",
                    "full_url": "https://brand.link/launch",
                    "domain": "brand.link",
                    "slug": "/launch",
                    "destination": "https://example.com/landing-page?lang=en",
                    "workspace_id": 7,
                    "enabled": true,
                    "cloaking": false,
                    "forward_params": false,
                    "block_bots": false,
                    "public_analytics": false,
                    "utm_source": "newsletter",
                    "utm_medium": "email",
                    "utm_campaign": "spring",
                    "og_title": null,
                    "og_description": null,
                    "rules": [],
                },
                "click": {
                    "country": "GB",
                    "is_eu_country": false,
                    "platform": "desktop",
                    "browser_name": "Chrome",
                    "referer": "https://news.ycombinator.com/item?id=1",
                    "isp": null,
                    "bot_name": null,
                    "destination": "https://example.com/landing-page?lang=en",
                    "params": {
                        "ref": "hn",
                        "utm_campaign": "spring",
                        "utm_medium": "email",
                        "utm_source": "newsletter",
                    },
                },
            })
        );
        assert!(out.headers.is_empty());
    }

    #[test]
    fn never_an_ip_address_even_when_raw_ips_are_kept() {
        let event = chrome_mac_london();
        let (anon, raw) = (
            event.client.ip.clone().expect("ip"),
            event.client.raw_ip.clone().expect("raw ip"),
        );
        for (e, link) in [
            (event, Some(launch_link())),
            (slackbot(), None),
            (bare(), None),
        ] {
            let (body, out) =
                render_one(Format::Linkly, &webhook(Format::Linkly), &e, link.as_ref());
            let text = String::from_utf8(out.body).expect("utf-8");
            assert!(!text.contains(&anon) && !text.contains(&raw), "{text}");
            for ip in [e.client.ip.as_deref(), e.client.raw_ip.as_deref()]
                .into_iter()
                .flatten()
            {
                assert!(!text.contains(ip), "{text}");
            }
            for s in strings(&body) {
                assert!(s.parse::<std::net::IpAddr>().is_err(), "an IP: {s}");
                assert!(
                    s != "ip" && !s.starts_with("ip_") && !s.ends_with("_ip"),
                    "a key naming an IP: {s}"
                );
            }
        }
    }

    #[test]
    fn a_bot_is_named_and_its_platform_is_bot() {
        let (body, _) = render_one(Format::Linkly, &webhook(Format::Linkly), &slackbot(), None);
        assert_eq!(body["click"]["bot_name"], "Slackbot");
        assert_eq!(body["click"]["platform"], "bot");
        assert_eq!(body["click"]["browser_name"], Value::Null);
        assert_eq!(body["click"]["referer"], Value::Null);
        assert_eq!(body["click"]["params"], json!({}));
        assert_eq!(body["link"]["id"], Value::Null);
        assert_eq!(body["link"]["workspace_id"], Value::Null);
        assert_eq!(body["link"]["utm_source"], Value::Null);
    }

    #[test]
    fn phones_are_ios_or_android_and_other_devices_their_type() {
        let mut e = chrome_mac_london();
        let platform = |agent: Agent, e: &mut crate::click::ClickEvent| {
            e.agent = agent;
            super::platform(e).to_string()
        };
        let agent = |os: &str, device_type: &str| Agent {
            os: Some(os.into()),
            device_type: device_type.into(),
            ..Agent::default()
        };
        assert_eq!(platform(agent("iPhone", "mobile"), &mut e), "ios");
        assert_eq!(platform(agent("iPad", "tablet"), &mut e), "ios");
        assert_eq!(platform(agent("Android", "tablet"), &mut e), "android");
        assert_eq!(platform(agent("Windows 10", "desktop"), &mut e), "desktop");
        assert_eq!(platform(agent("BlackBerry", "mobile"), &mut e), "mobile");
        assert_eq!(platform(Agent::default(), &mut e), "other");
    }

    #[test]
    fn ids_that_are_not_numbers_stay_text() {
        let mut link = launch_link();
        link.id = Some("spring-26".into());
        link.workspace_id = Some("ws_7".into());
        let (body, _) = render_one(
            Format::Linkly,
            &webhook(Format::Linkly),
            &chrome_mac_london(),
            Some(&link),
        );
        assert_eq!(body["link"]["id"], "spring-26");
        assert_eq!(body["link"]["workspace_id"], "ws_7");
    }

    #[test]
    fn nothing_known_is_null_not_invented() {
        let (body, _) = render_one(Format::Linkly, &webhook(Format::Linkly), &bare(), None);
        let click = &body["click"];
        for key in [
            "country",
            "is_eu_country",
            "browser_name",
            "referer",
            "isp",
            "bot_name",
            "destination",
        ] {
            assert_eq!(click[key], Value::Null, "{key}");
        }
        assert_eq!(click["platform"], "other");
        assert_eq!(body["link"]["url"], Value::Null);
        assert_eq!(body["link"]["full_url"], "http://sho.rt:8080/x");
        assert_eq!(body["link"]["domain"], "sho.rt:8080");
    }
}
