//! The Bitly format: one flat `engagement` object per request, written the way Bitly
//! writes its values (`datetime` with `+0000` and no milliseconds, `Desktop`,
//! `direct`).
//!
//! Bitly's payload names the organization, group and webhook that own the link by
//! guid. An operator can set them per link in `[[links]]`; otherwise they are derived
//! from stable names (the organization from the webhook id, since a Bitly webhook
//! belongs to one organization; the group from the link's host, since Bitly groups
//! own domains), so receivers that key on them keep working across restarts.
//! `references` are URLs shaped like Bitly's v4 API, for receivers that parse ids out
//! of them: clicktap has no such API and nothing answers there.

use serde::Serialize;

use super::{Envelope, Item, JSON, Rendered, click_time, iso_seconds, json};
use crate::config::{Format, default_guid};

const API: &str = "https://api-ssl.bitly.com/v4";

#[derive(Serialize)]
struct Engagement<'a> {
    event_id: String,
    event_type: &'static str,
    datetime: String,
    url: Option<&'a str>,
    bitlink: String,
    passed_params: &'a str,
    country: Option<&'a str>,
    referrer: &'a str,
    device_type: String,
    webhook_guid: &'a str,
    organization_guid: String,
    group_guid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a [String]>,
    time_zone: Option<&'a str>,
    references: References,
}

#[derive(Serialize)]
struct References {
    bitlink: String,
    group: String,
    organization: String,
    webhook: String,
}

pub(super) fn render(item: &Item<'_>, env: &Envelope<'_>) -> Rendered {
    let e = item.event;
    let meta = item.link;
    let webhook = env.webhook;
    let geo = e.geo.as_ref();
    let bitlink = format!("{}{}", e.link.host, e.link.path);
    let organization_guid = meta
        .and_then(|m| m.organization_guid.clone())
        .unwrap_or_else(|| default_guid('O', &webhook.id));
    let group_guid = meta
        .and_then(|m| m.group_guid.clone())
        .unwrap_or_else(|| default_guid('B', &e.link.host));
    let references = References {
        bitlink: format!("{API}/bitlinks/{bitlink}"),
        group: format!("{API}/groups/{group_guid}"),
        organization: format!("{API}/organizations/{organization_guid}"),
        webhook: format!("{API}/webhooks/{}", webhook.guid),
    };
    let payload = Engagement {
        event_id: e.id.to_string(),
        event_type: "engagement",
        datetime: datetime(click_time(e, env.sent_at)),
        url: e.destination.as_ref().map(|d| d.url.as_str()),
        bitlink,
        passed_params: e.link.query.as_deref().unwrap_or(""),
        country: geo.and_then(|g| g.country_code.as_deref()),
        referrer: e.referrer.url.as_deref().unwrap_or("direct"),
        device_type: capitalised(&e.agent.device_type),
        webhook_guid: &webhook.guid,
        organization_guid,
        group_guid,
        tags: webhook
            .fetch_tags
            .then(|| meta.map_or(&[][..], |m| m.tags.as_slice())),
        time_zone: geo.and_then(|g| g.time_zone.as_deref()),
        references,
    };
    Rendered {
        body: json(Format::Bitly, &payload),
        content_type: JSON,
        headers: Vec::new(),
    }
}

/// `2019-12-20T07:54:54+0000`: Bitly's `datetime`.
fn datetime(t: std::time::SystemTime) -> String {
    let mut s = iso_seconds(t);
    s.pop(); // the `Z`
    s.push_str("+0000");
    s
}

/// `desktop` → `Desktop`.
fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use crate::config::Format;
    use crate::config::default_guid;
    use serde_json::{Value, json};
    use std::path::Path;

    const FIELDS: [&str; 15] = [
        "bitlink",
        "country",
        "datetime",
        "device_type",
        "event_id",
        "event_type",
        "group_guid",
        "organization_guid",
        "passed_params",
        "references",
        "referrer",
        "tags",
        "time_zone",
        "url",
        "webhook_guid",
    ];

    fn fields(with_tags: bool) -> Vec<&'static str> {
        FIELDS
            .into_iter()
            .filter(|f| with_tags || *f != "tags")
            .collect()
    }

    #[test]
    fn a_person_clicking_a_configured_link() {
        let mut webhook = webhook(Format::Bitly);
        webhook.fetch_tags = true;
        let (body, out) = render_one(
            Format::Bitly,
            &webhook,
            &chrome_mac_london(),
            Some(&launch_link()),
        );
        assert_eq!(keys(&body), fields(true));
        assert_eq!(
            body,
            json!({
                "event_id": "019ac3f0-5b1b-7c3e-9a4d-2f6e8b1c0d3e",
                "event_type": "engagement",
                "datetime": "2026-11-27T03:25:52+0000",
                "url": "https://example.com/landing-page?lang=en",
                "bitlink": "brand.link/launch",
                "passed_params": "utm_source=newsletter&utm_medium=email&utm_campaign=spring&ref=hn",
                "country": "GB",
                "referrer": "https://news.ycombinator.com/item?id=1",
                "device_type": "Desktop",
                "webhook_guid": "W0123456789",
                "organization_guid": "O0000000007",
                "group_guid": "B0000000042",
                "tags": ["launch", "email"],
                "time_zone": "Europe/London",
                "references": {
                    "bitlink": "https://api-ssl.bitly.com/v4/bitlinks/brand.link/launch",
                    "group": "https://api-ssl.bitly.com/v4/groups/B0000000042",
                    "organization": "https://api-ssl.bitly.com/v4/organizations/O0000000007",
                    "webhook": "https://api-ssl.bitly.com/v4/webhooks/W0123456789",
                },
            })
        );
        assert!(out.headers.is_empty());
    }

    #[test]
    fn a_bot_is_a_bot_device_and_no_referrer_is_direct() {
        let (body, _) = render_one(Format::Bitly, &webhook(Format::Bitly), &slackbot(), None);
        assert_eq!(keys(&body), fields(false));
        assert_eq!(body["device_type"], "Bot");
        assert_eq!(body["referrer"], "direct");
        assert_eq!(body["passed_params"], "");
        assert_eq!(body["country"], "US");
        assert_eq!(body["datetime"], "2026-11-27T03:26:10+0000");
    }

    #[test]
    fn tags_are_sent_only_with_fetch_tags_and_are_empty_without_a_link() {
        let mut webhook = webhook(Format::Bitly);
        let event = chrome_mac_london();
        let link = launch_link();
        let (off, _) = render_one(Format::Bitly, &webhook, &event, Some(&link));
        assert!(off.get("tags").is_none());
        webhook.fetch_tags = true;
        let (none, _) = render_one(Format::Bitly, &webhook, &event, None);
        assert_eq!(none["tags"], json!([]));
    }

    #[test]
    fn guids_without_a_link_entry_are_derived_and_stable() {
        let webhook = webhook(Format::Bitly);
        let (a, _) = render_one(Format::Bitly, &webhook, &chrome_mac_london(), None);
        let (b, _) = render_one(Format::Bitly, &webhook, &slackbot(), None);
        let org = a["organization_guid"].as_str().expect("string");
        let group = a["group_guid"].as_str().expect("string");
        let guid = |s: &str, letter: char| {
            s.len() == 11 && s.starts_with(letter) && s[1..].bytes().all(|c| c.is_ascii_digit())
        };
        assert!(guid(org, 'O'), "{org}");
        assert!(guid(group, 'B'), "{group}");
        assert_eq!(org, default_guid('O', "crm"));
        assert_eq!(group, default_guid('B', "brand.link"));
        // Same webhook, same host: same guids.
        assert_eq!(a["organization_guid"], b["organization_guid"]);
        assert_eq!(a["group_guid"], b["group_guid"]);
        assert_eq!(
            a["references"]["group"],
            format!("https://api-ssl.bitly.com/v4/groups/{group}")
        );
    }

    #[test]
    fn guids_are_derived_as_configuration_derives_webhook_guid() {
        let toml = r#"
            [proxy]
            listen = "127.0.0.1:0"
            upstream = "127.0.0.1:9"
            [queue]
            path = "unused"
            [[webhooks]]
            id = "crm"
            url = "https://hooks.example.com/clicks"
            format = "bitly"
        "#;
        let cfg = crate::config::from_str(toml, Path::new("test.toml")).expect("valid config");
        assert_eq!(cfg.webhooks[0].guid, default_guid('W', "crm"));
    }

    #[test]
    fn nothing_known_is_null_not_invented() {
        let (body, _) = render_one(Format::Bitly, &webhook(Format::Bitly), &bare(), None);
        assert_eq!(keys(&body), fields(false));
        assert_eq!(body["url"], Value::Null);
        assert_eq!(body["country"], Value::Null);
        assert_eq!(body["time_zone"], Value::Null);
        assert_eq!(body["referrer"], "direct");
        assert_eq!(body["device_type"], "Other");
        assert_eq!(body["bitlink"], "sho.rt:8080/x");
    }
}
