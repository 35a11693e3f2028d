//! Payload formats: one file per format, each a pure function from events to a JSON
//! body and the format's own headers.
//!
//! An operator moving from a hosted shortener keeps their receiver: each vendor format
//! reproduces that vendor's field names, nesting and the way it writes values (date
//! shapes, casing, `direct` for no referrer), filled from the stored [`ClickEvent`], the
//! matching `[[links]]` entry and the webhook's configuration. What a vendor sends that
//! clicktap cannot know (an ISP, Open Graph titles, redirect rules) is sent as the null,
//! false or empty value the vendor uses when it has nothing; ids a vendor always sends
//! and the operator did not configure are derived from stable names, and nothing else
//! is made up. No format but `native` ever carries an IP address. The field-by-field
//! sources are in docs/webhooks.md ("Formats").
//!
//! Rendering does no I/O and reads no clock: delivery passes the message id and the
//! time of the attempt in the [`Envelope`], so a retry renders the same body but for
//! the fields that say when it was sent. `Content-Type`, the Standard Webhooks
//! signature and the auth headers are delivery's; a format adds only the headers its
//! vendor defines.
//!
//! The helpers below are what several formats share: times taken from the event's
//! RFC 3339 text, and the user agent's names as people write them.

mod bitly;
mod cloudevents;
mod linkly;
mod native;
mod rebrandly;
mod tly;

pub use native::{StoredItem, render_stored};

use http::{HeaderName, HeaderValue};
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};
use uuid::Uuid;

use crate::click::{Agent, ClickEvent, LinkRef};
use crate::config::{Format, LinkMeta, WebhookConfig};

/// One event to render, with what delivery knows about it.
pub struct Item<'a> {
    pub event: &'a ClickEvent,
    /// The first `[[links]]` entry matching the event's host and path.
    pub link: Option<&'a LinkMeta>,
}

/// What is the same for every item of one request.
pub struct Envelope<'a> {
    pub webhook: &'a WebhookConfig,
    /// The request's message id: stable per (event, webhook) for single-event
    /// requests, per batch for batches. Also the T.LY delivery id.
    pub message_id: &'a str,
    /// When this attempt is sent.
    pub sent_at: SystemTime,
}

/// A rendered request: JSON body, its media type and format-specific headers (not the
/// signature or auth headers, which delivery adds).
pub struct Rendered {
    pub body: Vec<u8>,
    /// The `Content-Type` delivery sends: [`JSON`] but for CloudEvents' own types.
    pub content_type: &'static str,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// The media type of every format's body but `cloudevents`.
pub const JSON: &str = "application/json";

/// Renders `items` (one, or several for batching formats) in `format`.
///
/// `native`, `rebrandly` and `cloudevents` put every item in one body. The other formats carry one
/// event per request (configuration refuses `batch.max_events > 1` for them) and
/// render the first item; given none, they render `{}`.
pub fn render(format: Format, items: &[Item<'_>], env: &Envelope<'_>) -> Rendered {
    debug_assert!(
        format.batches() || items.len() <= 1,
        "{} carries one event per request",
        format.as_str()
    );
    match format {
        Format::Native => native::render(items, env),
        Format::Rebrandly => rebrandly::render(items, env),
        Format::Bitly => single(items, env, bitly::render),
        Format::Linkly => single(items, env, linkly::render),
        Format::Tly => single(items, env, tly::render),
        Format::CloudEvents => cloudevents::render(items, env),
    }
}

/// The Standard Webhooks message id of a request carrying the events `ids` to
/// `webhook`: stable across attempts and restarts (UUIDv5 of the names).
pub fn message_id<'a>(webhook: &str, ids: impl IntoIterator<Item = &'a Uuid>) -> String {
    let mut name = webhook.as_bytes().to_vec();
    for id in ids {
        name.push(b'/');
        name.extend_from_slice(id.as_bytes());
    }
    format!("msg_{}", Uuid::new_v5(&Uuid::NAMESPACE_OID, &name).simple())
}

fn single(
    items: &[Item<'_>],
    env: &Envelope<'_>,
    one: fn(&Item<'_>, &Envelope<'_>) -> Rendered,
) -> Rendered {
    match items.first() {
        Some(item) => one(item, env),
        None => Rendered {
            body: b"{}".to_vec(),
            content_type: JSON,
            headers: Vec::new(),
        },
    }
}

/// The body: `value` as JSON. The payloads are plain structs with string keys, which
/// serde_json always serialises; should that ever fail, the failure is logged and the
/// body is `{}` rather than a panic on the delivery threads.
fn json<T: Serialize>(format: Format, value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|e| {
        tracing::error!(format = format.as_str(), error = %e, "payload did not serialise");
        b"{}".to_vec()
    })
}

/// A header whose value comes from configuration or the queue: left out, with a
/// warning, when it is not a valid header value, rather than failing the request.
fn header(name: &'static str, value: &str, sensitive: bool) -> Option<(HeaderName, HeaderValue)> {
    match HeaderValue::from_str(value) {
        Ok(mut v) => {
            v.set_sensitive(sensitive);
            Some((HeaderName::from_static(name), v))
        }
        Err(_) => {
            tracing::warn!(
                header = name,
                "value is not a valid header value; header left out"
            );
            None
        }
    }
}

// ---- Times ----------------------------------------------------------------------

/// When the click happened: the event's RFC 3339 `timestamp`, or `fallback` when the
/// stored text is not one (an event written by hand, or by a later version).
pub fn click_time(event: &ClickEvent, fallback: SystemTime) -> SystemTime {
    humantime::parse_rfc3339(&event.timestamp).unwrap_or(fallback)
}

/// `2019-12-20T07:54:54Z`: ISO 8601, UTC, whole seconds.
pub fn iso_seconds(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(crate::clock::writable(t)).to_string()
}

/// `2025-10-25T02:36:47.132Z`: ISO 8601, UTC, milliseconds.
pub fn iso_millis(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(crate::clock::writable(t)).to_string()
}

/// Seconds since the Unix epoch; 0 for earlier times.
pub fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

// ---- Links ----------------------------------------------------------------------

/// The short link as vendors show it: `scheme://host/path`, without the query the
/// visitor added; the path alone when the request named no valid host (a URL with an
/// empty host, `http:///x`, would be read as a host named `x`).
fn short_url(link: &LinkRef) -> String {
    if link.host.is_empty() {
        return link.path.clone();
    }
    format!("{}://{}{}", link.scheme, link.host, link.path)
}

// ---- User agents as people write them ---------------------------------------------

/// The browser's name as people write it (`Chrome`, `Safari`, `Samsung Internet`):
/// woothee's names, but for the few it spells as code.
fn browser_name(agent: &Agent) -> Option<&str> {
    let name = agent.browser.as_deref()?;
    Some(match name {
        "SamsungBrowser" => "Samsung Internet",
        "Webview" => "WebView",
        "Google Search App" => "Google App",
        other => other,
    })
}

/// The operating system family as people write it: `Mac OS`, `Windows`, `iOS`,
/// `Android`, `Linux`, `Chrome OS`; woothee's own name for the rest. woothee names
/// Windows by release (`Windows 10`) and iOS by device (`iPhone`): families are what
/// vendors report.
fn os_name(agent: &Agent) -> Option<&str> {
    let os = agent.os.as_deref()?;
    Some(match os {
        "Mac OSX" => "Mac OS",
        "iPhone" | "iPad" | "iPod" | "iOS" => "iOS",
        "ChromeOS" => "Chrome OS",
        "Windows Phone OS" => "Windows Phone",
        "BlackBerry 10" => "BlackBerry",
        w if w.starts_with("Windows") => "Windows",
        other => other,
    })
}

/// The version of [`os_name`]'s family: `10` for `Windows 10` (woothee's version
/// for Windows is the NT kernel's), the agent's OS version otherwise.
fn os_version(agent: &Agent) -> Option<&str> {
    let os = agent.os.as_deref()?;
    match os.strip_prefix("Windows ") {
        Some(release) if release.starts_with(|c: char| c.is_ascii_digit()) => Some(release),
        Some(_) => None,
        None => agent.os_version.as_deref(),
    }
}

/// Whether the OS family is Apple's mobile one, or Android: vendors report these as
/// platforms of their own.
fn mobile_os(agent: &Agent) -> Option<&'static str> {
    match os_name(agent)? {
        "iOS" => Some("ios"),
        "Android" => Some("android"),
        _ => None,
    }
}

/// Lower case, with runs of anything but letters and digits turned into one dash:
/// `Chrome Mobile` → `chrome-mobile`, `San Francisco` → `san-francisco`. Dots are
/// kept so that versions read as versions (`android-10.1`).
fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut dash = false;
    for c in s.chars() {
        if c.is_alphanumeric() || c == '.' {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.extend(c.to_lowercase());
        } else {
            dash = true;
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_link_without_a_host_is_shown_as_its_path() {
        let mut link = super::fixtures::chrome_mac_london().link;
        assert!(super::short_url(&link).starts_with("https://"));
        link.host.clear();
        assert_eq!(super::short_url(&link), link.path);
    }

    #[test]
    fn click_time_reads_the_event_timestamp_and_falls_back_when_it_cannot() {
        let mut event = fixtures::chrome_mac_london();
        let at = click_time(&event, UNIX_EPOCH);
        assert_eq!(iso_millis(at), "2026-11-27T03:25:52.123Z");
        assert_eq!(iso_seconds(at), "2026-11-27T03:25:52Z");
        assert_eq!(unix_seconds(at), 1_795_749_952);

        event.timestamp = "yesterday".into();
        let fallback = UNIX_EPOCH + Duration::from_secs(60);
        assert_eq!(click_time(&event, fallback), fallback);
    }

    #[test]
    fn times_outside_what_can_be_written_are_clamped_not_panicked_on() {
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(iso_seconds(before), "1970-01-01T00:00:00Z");
        assert_eq!(unix_seconds(before), 0);
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(iso_seconds(far), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn agents_are_named_as_people_write_them() {
        let agent = |browser: &str, os: &str, os_version: &str| Agent {
            browser: Some(browser.into()),
            os: Some(os.into()),
            os_version: Some(os_version.into()),
            ..Agent::default()
        };
        let mac = agent("Chrome", "Mac OSX", "10.15.7");
        assert_eq!(browser_name(&mac), Some("Chrome"));
        assert_eq!(os_name(&mac), Some("Mac OS"));
        assert_eq!(os_version(&mac), Some("10.15.7"));

        let windows = agent("SamsungBrowser", "Windows 8.1", "NT 6.3");
        assert_eq!(browser_name(&windows), Some("Samsung Internet"));
        assert_eq!(os_name(&windows), Some("Windows"));
        assert_eq!(os_version(&windows), Some("8.1"));

        let iphone = agent("Safari", "iPhone", "17.4");
        assert_eq!(os_name(&iphone), Some("iOS"));
        assert_eq!(mobile_os(&iphone), Some("ios"));
        assert_eq!(
            mobile_os(&agent("Chrome", "Android", "10")),
            Some("android")
        );
        assert_eq!(mobile_os(&mac), None);

        assert_eq!(os_version(&agent("IE", "Windows UNKNOWN Ver", "")), None);
        assert_eq!(os_name(&Agent::default()), None);
    }

    #[test]
    fn slugs_are_lower_case_and_dashed() {
        assert_eq!(slug("Chrome Mobile"), "chrome-mobile");
        assert_eq!(slug("San Francisco"), "san-francisco");
        assert_eq!(slug("  Mac OS "), "mac-os");
        assert_eq!(slug("android 10.1"), "android-10.1");
        assert_eq!(slug("Slackbot-LinkExpanding"), "slackbot-linkexpanding");
        assert_eq!(slug("São Paulo"), "são-paulo");
    }

    /// None of the four vendors has a field for it: only `native` sends `unique`.
    #[test]
    fn only_native_sends_the_unique_flag() {
        let event = ClickEvent {
            unique: Some(false),
            ..fixtures::chrome_mac_london()
        };
        for format in [
            Format::Native,
            Format::Bitly,
            Format::Linkly,
            Format::Tly,
            Format::Rebrandly,
        ] {
            let webhook = fixtures::webhook(format);
            let (body, _) = fixtures::render_one(format, &webhook, &event, None);
            let text = body.to_string();
            assert_eq!(
                text.contains("unique"),
                format == Format::Native,
                "{}: {text}",
                format.as_str()
            );
        }
        let webhook = fixtures::webhook(Format::Native);
        let (body, _) = fixtures::render_one(Format::Native, &webhook, &event, None);
        assert_eq!(body["unique"], false);
    }

    #[test]
    fn single_event_formats_render_an_empty_object_for_no_items() {
        let webhook = fixtures::webhook(Format::Bitly);
        let env = fixtures::envelope(&webhook);
        let out = render(Format::Bitly, &[], &env);
        assert_eq!(out.body, b"{}");
    }
}
