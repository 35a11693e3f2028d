//! The data that crosses stages: a [`RawClick`] leaves the proxy, a [`ClickEvent`]
//! leaves enrichment and is what the queue stores and delivery renders.
//!
//! `RawClick` is built on the request path, so it holds only what the proxy already has:
//! the URI, the method and small copies of the header values enrichment reads; all
//! parsing, lookups and formatting happen later, on the enrichment threads. Each value is
//! kept up to a cap (see [`cap`]) no browser reaches, so that a click, and the channel of
//! clicks waiting for enrichment, has a size known in bytes whatever a visitor or the
//! shortener sends: what was cut is named in the event's `truncated`. `ClickEvent`
//! is the native event format, documented field by field in docs/events.md; its serde shape
//! is the stored shape (written by `enrich::Enricher::write`) and the `native` webhook
//! payload, so a change here is a format change.

use http::{HeaderValue, Method, Uri};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;
use uuid::Uuid;

/// The most bytes of each value a [`RawClick`] keeps. Browsers send less: they cut a
/// `Referer` at 4 KiB, and most servers (nginx, Apache) refuse a request line or a
/// header line over 8 KiB, so links and destinations longer than that do not work on
/// the web anyway. Pingora itself accepts request heads up to 1 MiB.
pub mod cap {
    /// The request target (path and query): the event's `link`.
    pub const TARGET: usize = 8 * 1024;
    /// The `Location` answered: the event's `destination`.
    pub const LOCATION: usize = 8 * 1024;
    pub const REFERER: usize = 4 * 1024;
    pub const USER_AGENT: usize = 2 * 1024;
    /// The request method; standard ones are a few letters.
    pub const METHOD: usize = 32;
    /// `X-Forwarded-For`, all lines together: its last bytes are kept, the hops nearest
    /// clicktap, which are the ones read.
    pub const FORWARDED_FOR: usize = 2 * 1024;
    /// `Host`: a DNS name (253) with a port; a longer one is not a host and is not kept.
    pub const HOST: usize = 259;
    /// `X-Forwarded-Proto`, `X-Real-IP` and the purpose headers: a longer value is not
    /// one clicktap reads and is not kept.
    pub const SHORT: usize = 256;
}

/// What the proxy knows about one redirect it served, captured in the `logging` phase.
#[derive(Debug, Clone)]
pub struct RawClick {
    /// When the response was written, taken at capture.
    pub at: SystemTime,
    pub method: Method,
    /// Whether the visitor reached clicktap over TLS.
    pub tls: bool,
    pub host: Option<HeaderValue>,
    pub uri: Uri,
    pub status: u16,
    pub location: Option<HeaderValue>,
    pub user_agent: Option<HeaderValue>,
    pub referer: Option<HeaderValue>,
    /// The socket peer; `None` only for non-IP sockets.
    pub peer: Option<IpAddr>,
    pub forwarded_for: Option<HeaderValue>,
    pub forwarded_proto: Option<HeaderValue>,
    pub real_ip: Option<HeaderValue>,
    /// `Purpose`, `Sec-Purpose` or `X-Purpose`: set by browsers on prefetches.
    pub purpose: Option<HeaderValue>,
    /// The values that were longer than their [`cap`] and kept cut.
    pub cut: Cut,
}

impl RawClick {
    /// The most memory one click holds: itself and the largest value of each kind.
    /// (The allocator rounds each value up by at most a quarter.)
    pub const MAX_BYTES: usize = std::mem::size_of::<RawClick>()
        + cap::TARGET
        + cap::LOCATION
        + cap::REFERER
        + cap::USER_AGENT
        + cap::METHOD
        + cap::FORWARDED_FOR
        + cap::HOST
        + 3 * cap::SHORT;
}

// docs/configuration.md (`enrich.channel_capacity`) states the channel's worst case from this figure: 26 KiB a click.
const _: () = assert!(RawClick::MAX_BYTES <= 26 * 1024);

/// Which of a click's values were cut to their [`cap`]: a set of flags, so that
/// recording one on the request path is an `or`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cut(u8);

impl Cut {
    pub const LINK: Cut = Cut(1);
    pub const DESTINATION: Cut = Cut(1 << 1);
    pub const REFERRER: Cut = Cut(1 << 2);
    pub const USER_AGENT: Cut = Cut(1 << 3);
    pub const METHOD: Cut = Cut(1 << 4);
    /// The leftmost hops of `X-Forwarded-For`; not an event field, so not named in it.
    pub const FORWARDED_FOR: Cut = Cut(1 << 5);

    /// The event fields each flag names in `truncated`, in the event's order.
    const NAMED: [(Cut, &'static str); 5] = [
        (Cut::METHOD, "method"),
        (Cut::LINK, "link"),
        (Cut::DESTINATION, "destination"),
        (Cut::REFERRER, "referrer"),
        (Cut::USER_AGENT, "client.user_agent"),
    ];

    /// `self` with `part` added when `cut` holds.
    pub fn mark(self, part: Cut, cut: bool) -> Cut {
        Cut(self.0 | (part.0 * cut as u8))
    }

    pub fn contains(self, part: Cut) -> bool {
        self.0 & part.0 == part.0
    }

    /// The names of the event fields that were cut, for its `truncated`.
    pub fn fields(self) -> impl Iterator<Item = &'static str> {
        Cut::NAMED
            .into_iter()
            .filter(move |(part, _)| self.contains(*part))
            .map(|(_, name)| name)
    }
}

/// What the visitor did, as the event's `type` says it. A redirect is a click on a link
/// unless a rule says more: a QR scan (`[qr]`, a `[[links]]` entry's `qr`), or a click
/// on a link of a bio page (`[[pages]]`). A 200 answer on a bio page's path is a view
/// of that page: the one event that is not a redirect. The names follow T.LY's
/// (`short_link.visited`, `one_link.visited`, `one_link.link_visited`); docs/webhooks.md
/// ("Event types") lists how each format sends each type.
///
/// Events stored before types existed have none, and read as [`EventType::LinkClicked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum EventType {
    /// A redirect of a short link.
    #[default]
    #[serde(rename = "link.clicked")]
    LinkClicked,
    /// A redirect of a short link opened from a QR code.
    #[serde(rename = "link.scanned")]
    LinkScanned,
    /// A bio page answered (a 200 on a `[[pages]]` path).
    #[serde(rename = "page.viewed")]
    PageViewed,
    /// A redirect of a link on a bio page: its path is under the page's, or its
    /// `Referer` is the page.
    #[serde(rename = "page.link_clicked")]
    PageLinkClicked,
}

impl EventType {
    pub const ALL: [EventType; 4] = [
        EventType::LinkClicked,
        EventType::LinkScanned,
        EventType::PageViewed,
        EventType::PageLinkClicked,
    ];

    /// What a webhook gets when its `events` is not set: what it got before event
    /// types existed, every redirect (page views were never captured before).
    pub const DEFAULT_WANTED: [EventType; 3] = [
        EventType::LinkClicked,
        EventType::LinkScanned,
        EventType::PageLinkClicked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::LinkClicked => "link.clicked",
            EventType::LinkScanned => "link.scanned",
            EventType::PageViewed => "page.viewed",
            EventType::PageLinkClicked => "page.link_clicked",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// What a click was, for filters and counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClickKind {
    /// A person following the link.
    Human,
    /// A crawler, monitoring tool or command-line client.
    Bot,
    /// A link-preview fetcher or mail-link scanner (Slackbot, facebookexternalhit, ...).
    Preview,
    /// A HEAD request: nobody was redirected.
    Head,
    /// A browser prefetch or prerender, not (yet) a visit.
    Prefetch,
    /// A synthetic event an operator sent to check a webhook (`POST
    /// /api/v1/webhooks/{id}/test`): never captured, never stored.
    Test,
}

impl ClickKind {
    /// The kinds a click can be (and a filter can name); [`ClickKind::Test`] is none.
    pub const ALL: [ClickKind; 5] = [
        ClickKind::Human,
        ClickKind::Bot,
        ClickKind::Preview,
        ClickKind::Head,
        ClickKind::Prefetch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClickKind::Human => "human",
            ClickKind::Bot => "bot",
            ClickKind::Preview => "preview",
            ClickKind::Head => "head",
            ClickKind::Prefetch => "prefetch",
            ClickKind::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<ClickKind> {
        ClickKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One enriched click: the native event format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClickEvent {
    /// UUIDv7: time-ordered, stable across every delivery attempt.
    pub id: Uuid,
    /// RFC 3339, UTC, milliseconds: `2026-11-27T03:25:52.123Z`.
    pub timestamp: String,
    /// Absent in events stored before event types existed: a link click.
    #[serde(rename = "type", default)]
    pub event_type: EventType,
    pub kind: ClickKind,
    pub method: String,
    /// The status the shortener answered with.
    pub status: u16,
    pub link: LinkRef,
    /// Query parameters of the short link; a repeated name keeps its last value.
    pub params: BTreeMap<String, String>,
    pub destination: Option<Destination>,
    pub referrer: Referrer,
    pub client: Client,
    pub agent: Agent,
    pub bot: Option<Bot>,
    pub geo: Option<Geo>,
    /// The fields read from a value longer than clicktap keeps (`link`, `destination`,
    /// `referrer`, `client.user_agent`, `method`), each cut to its [`cap`]; absent when
    /// nothing was cut, as for every click a browser makes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<String>,
    /// The visitor's first event on this link within `enrich.unique_window`; `false` for
    /// its repeats, and for HEAD requests and prefetches, which are no visit. Absent when
    /// the window is off and in events stored before clicktap marked them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<bool>,
}

/// The short link that was clicked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkRef {
    /// `scheme://host/path?query` as the visitor requested it; the path and query alone
    /// when the request named no valid host.
    pub url: String,
    pub scheme: String,
    pub host: String,
    pub path: String,
    pub query: Option<String>,
}

/// Where the visitor was sent: the `Location` header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Destination {
    pub url: String,
    /// Host of an absolute destination; `None` for a relative one.
    pub host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Referrer {
    /// The `Referer` header as sent, when valid text.
    pub url: Option<String>,
    /// Its host, or `direct` when there is none.
    pub host: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    /// Anonymised address (/24 for IPv4, /48 for IPv6 by default).
    pub ip: Option<String>,
    pub ip_version: Option<u8>,
    /// The full address; present only when `enrich.keep_raw_ip` is on.
    pub raw_ip: Option<String>,
    /// Where the address came from: `socket`, `x-forwarded-for` or `x-real-ip`.
    pub ip_source: String,
    pub user_agent: Option<String>,
    /// The request carried a prefetch or prerender purpose header.
    pub prefetch: bool,
}

/// The user agent, as woothee reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    /// woothee's category: pc, smartphone, mobilephone, appliance, crawler, misc.
    pub category: Option<String>,
    pub vendor: Option<String>,
    /// desktop, mobile, tablet, bot or other.
    pub device_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bot {
    /// A stable name: `Slackbot`, `Googlebot`, `curl`, ...
    pub name: String,
    pub kind: BotKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BotKind {
    /// Search engines, AI crawlers, monitors and other automated fetchers.
    Crawler,
    /// Link-preview fetchers of chat apps and social networks.
    Preview,
    /// Mail and security scanners that open links before people do.
    Scanner,
    /// Command-line clients and HTTP libraries.
    Tool,
}

/// Where the click came from, looked up before the address is anonymised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Geo {
    /// ISO 3166-1 alpha-2, upper case.
    pub country_code: Option<String>,
    pub country_name: Option<String>,
    pub region: Option<String>,
    /// ISO 3166-2 subdivision code without the country (`CA` for California).
    pub region_code: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    /// IANA time zone name.
    pub time_zone: Option<String>,
    pub is_eu: Option<bool>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_are_named_by_their_event_fields() {
        let all = Cut::default()
            .mark(Cut::USER_AGENT, true)
            .mark(Cut::LINK, true)
            .mark(Cut::FORWARDED_FOR, true)
            .mark(Cut::METHOD, false);
        assert_eq!(
            all.fields().collect::<Vec<_>>(),
            ["link", "client.user_agent"]
        );
        assert!(all.contains(Cut::FORWARDED_FOR));
        assert!(!all.contains(Cut::METHOD));
        assert_eq!(Cut::default().fields().count(), 0);
    }
}
