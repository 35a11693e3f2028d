//! The data that crosses stages: a [`RawClick`] leaves the proxy, a [`ClickEvent`]
//! leaves enrichment and is what the queue stores and delivery renders.
//!
//! `RawClick` is built on the request path, so it holds only what the proxy already has:
//! the URI, the method and small copies of the header values enrichment reads; all
//! parsing, lookups and formatting happen later, on the enrichment threads. `ClickEvent`
//! is the native event format, documented field by field in the README; its serde shape
//! is the stored shape (written by `enrich::Enricher::write`) and the `native` webhook
//! payload, so a change here is a format change.

use http::{HeaderValue, Method, Uri};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;
use uuid::Uuid;

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
}

impl ClickKind {
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
}

/// The short link that was clicked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkRef {
    /// `scheme://host/path?query` as the visitor requested it.
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
