//! The T.LY format: one event per request, named as T.LY names it, with T.LY's four
//! headers.
//!
//! T.LY authenticates a delivery by sending the webhook secret itself in `X-Tly-Key`
//! (receivers compare it with what they stored), so the header carries the webhook's
//! first `secret` exactly as written; the Standard Webhooks signature that delivery
//! adds is there for receivers that want more. `X-Tly-Delivery` and the body's
//! `delivery_id` are the message id, stable across retries so that receivers can drop
//! repeats; `sent_at` and `X-Tly-Timestamp` say when this attempt left.
//!
//! T.LY names three events: `short_link.visited` (a link click; a QR scan is one too,
//! with `engagement.qr_code: true`), `one_link.visited` (a bio page viewed) and
//! `one_link.link_visited` (a link on a bio page clicked); [`event_name`] maps clicktap's
//! event types onto them.

use serde::Serialize;

use super::{
    Envelope, Item, JSON, Rendered, browser_name, click_time, header, iso_seconds, json, os_name,
    short_url, unix_seconds,
};
use crate::click::EventType;
use crate::config::Format;

/// T.LY's name for an event of type `t`.
pub fn event_name(t: EventType) -> &'static str {
    match t {
        EventType::LinkClicked | EventType::LinkScanned => "short_link.visited",
        EventType::PageViewed => "one_link.visited",
        EventType::PageLinkClicked => "one_link.link_visited",
    }
}

#[derive(Serialize)]
struct Visited<'a> {
    event: &'static str,
    created_at: &'a str,
    actor_id: Option<&'a str>,
    data: Data<'a>,
    engagement: Engagement<'a>,
    delivery_id: &'a str,
    sent_at: String,
}

#[derive(Serialize)]
struct Data<'a> {
    short_url: String,
    long_url: Option<&'a str>,
}

#[derive(Serialize)]
struct Engagement<'a> {
    qr_code: bool,
    referrer: Option<&'a str>,
    browser: Option<&'a str>,
    platform: Option<&'a str>,
    country_code: Option<&'a str>,
    region: Option<&'a str>,
    city: Option<&'a str>,
    created_at: &'a str,
}

pub(super) fn render(item: &Item<'_>, env: &Envelope<'_>) -> Rendered {
    let e = item.event;
    let geo = e.geo.as_ref();
    let created_at = iso_seconds(click_time(e, env.sent_at));
    let event = event_name(e.event_type);
    let payload = Visited {
        event,
        created_at: &created_at,
        actor_id: None,
        data: Data {
            short_url: short_url(&e.link),
            long_url: e.destination.as_ref().map(|d| d.url.as_str()),
        },
        engagement: Engagement {
            qr_code: e.event_type == EventType::LinkScanned,
            referrer: e.referrer.url.as_deref(),
            browser: browser_name(&e.agent),
            platform: os_name(&e.agent),
            country_code: geo.and_then(|g| g.country_code.as_deref()),
            region: geo.and_then(|g| g.region.as_deref()),
            city: geo.and_then(|g| g.city.as_deref()),
            created_at: &created_at,
        },
        delivery_id: env.message_id,
        sent_at: iso_seconds(env.sent_at),
    };
    let secret = env.webhook.raw_secret.as_ref();
    let headers = [
        secret.and_then(|s| header("x-tly-key", s.expose(), true)),
        header("x-tly-event", event, false),
        header("x-tly-delivery", env.message_id, false),
        header(
            "x-tly-timestamp",
            &unix_seconds(env.sent_at).to_string(),
            false,
        ),
    ];
    Rendered {
        body: json(Format::Tly, &payload),
        content_type: JSON,
        headers: headers.into_iter().flatten().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use crate::click::EventType;
    use crate::config::Format;
    use serde_json::{Value, json};

    #[test]
    fn a_person_clicking_a_link() {
        let (body, _) = render_one(
            Format::Tly,
            &webhook(Format::Tly),
            &chrome_mac_london(),
            Some(&launch_link()),
        );
        assert_eq!(
            body,
            json!({
                "event": "short_link.visited",
                "created_at": "2026-11-27T03:25:52Z",
                "actor_id": null,
                "data": {
                    "short_url": "https://brand.link/launch",
                    "long_url": "https://example.com/landing-page?lang=en",
                },
                "engagement": {
                    "qr_code": false,
                    "referrer": "https://news.ycombinator.com/item?id=1",
                    "browser": "Chrome",
                    "platform": "Mac OS",
                    "country_code": "GB",
                    "region": "England",
                    "city": "London",
                    "created_at": "2026-11-27T03:25:52Z",
                },
                "delivery_id": MESSAGE_ID,
                "sent_at": "2026-11-27T03:25:57Z",
            })
        );
    }

    #[test]
    fn each_event_type_has_its_tly_event_and_a_scan_its_qr_code() {
        for (t, name, qr) in [
            (EventType::LinkClicked, "short_link.visited", false),
            (EventType::LinkScanned, "short_link.visited", true),
            (EventType::PageViewed, "one_link.visited", false),
            (EventType::PageLinkClicked, "one_link.link_visited", false),
        ] {
            let mut event = chrome_mac_london();
            event.event_type = t;
            let (body, out) = render_one(Format::Tly, &webhook(Format::Tly), &event, None);
            assert_eq!(body["event"], name, "{t:?}");
            assert_eq!(header(&out, "X-Tly-Event"), Some(name), "{t:?}");
            assert_eq!(body["engagement"]["qr_code"], qr, "{t:?}");
        }
    }

    #[test]
    fn the_four_tly_headers() {
        let (_, out) = render_one(Format::Tly, &webhook(Format::Tly), &slackbot(), None);
        assert_eq!(header(&out, "X-Tly-Key"), Some(RAW_SECRET));
        assert_eq!(header(&out, "X-Tly-Event"), Some("short_link.visited"));
        assert_eq!(header(&out, "X-Tly-Delivery"), Some(MESSAGE_ID));
        assert_eq!(header(&out, "X-Tly-Timestamp"), Some("1795749957"));
        assert_eq!(out.headers.len(), 4);
        let key = out
            .headers
            .iter()
            .find(|(n, _)| n == "x-tly-key")
            .expect("key");
        assert!(key.1.is_sensitive(), "the secret is marked sensitive");
    }

    #[test]
    fn no_secret_no_key_header_and_a_bad_one_is_left_out() {
        let mut webhook = webhook(Format::Tly);
        webhook.raw_secret = None;
        let (_, out) = render_one(Format::Tly, &webhook, &bare(), None);
        assert_eq!(header(&out, "X-Tly-Key"), None);
        assert_eq!(out.headers.len(), 3);

        webhook.raw_secret = Some(crate::config::Secret::new("line\nbreak"));
        let (_, out) = render_one(Format::Tly, &webhook, &bare(), None);
        assert_eq!(header(&out, "X-Tly-Key"), None);
    }

    #[test]
    fn a_bot_has_no_browser_or_platform() {
        let (body, _) = render_one(Format::Tly, &webhook(Format::Tly), &slackbot(), None);
        let engagement = &body["engagement"];
        assert_eq!(engagement["browser"], Value::Null);
        assert_eq!(engagement["platform"], Value::Null);
        assert_eq!(engagement["referrer"], Value::Null);
        assert_eq!(engagement["country_code"], "US");
        assert_eq!(engagement["region"], "Virginia");
    }

    #[test]
    fn nothing_known_is_null_not_invented() {
        let (body, _) = render_one(Format::Tly, &webhook(Format::Tly), &bare(), None);
        assert_eq!(body["data"]["long_url"], Value::Null);
        for key in [
            "referrer",
            "browser",
            "platform",
            "country_code",
            "region",
            "city",
        ] {
            assert_eq!(body["engagement"][key], Value::Null, "{key}");
        }
        assert_eq!(body["engagement"]["created_at"], "2026-11-27T03:27:00Z");
    }
}
