//! Enrichment: turns a [`RawClick`] into a [`ClickEvent`] on plain threads, off the
//! request path.
//!
//! Everything that costs (header parsing, GeoIP, user agent rules, formatting) happens
//! here and not in the proxy. GeoIP is looked up on the full address before it is
//! anonymised; only the anonymised address is kept unless `enrich.keep_raw_ip` is on.

pub mod agent;
mod agent_cache;
pub mod bots;
mod client_ip;
pub mod geo;
mod privacy;
mod request;
mod worker;

pub use client_ip::{client_ip, is_trusted};
pub use geo::GeoDb;
pub use privacy::anonymize;
pub use worker::{Batcher, Workers, start};

use arc_swap::ArcSwapOption;
use ipnet::IpNet;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use crate::click::{BotKind, ClickEvent, ClickKind, Client, RawClick};
use crate::config::EnrichConfig;

/// The GeoIP database in use, swapped whole when a new one is loaded.
pub type GeoHandle = Arc<ArcSwapOption<GeoDb>>;

/// Everything enrichment needs besides the click.
pub struct Enricher {
    pub trusted: Vec<IpNet>,
    pub geo: GeoHandle,
    pub keep_raw_ip: bool,
    pub v4_prefix: u8,
    pub v6_prefix: u8,
}

impl Enricher {
    pub fn new(cfg: &EnrichConfig, trusted: Vec<IpNet>, geo: GeoHandle) -> Enricher {
        Enricher {
            trusted,
            geo,
            keep_raw_ip: cfg.keep_raw_ip,
            v4_prefix: cfg.ipv4_prefix,
            v6_prefix: cfg.ipv6_prefix,
        }
    }

    pub fn enrich(&self, raw: &RawClick, geo: Option<&GeoDb>) -> ClickEvent {
        let (ip, source) = client_ip(
            raw.peer,
            raw.forwarded_for.as_ref(),
            raw.real_ip.as_ref(),
            &self.trusted,
        );
        let peer_trusted = raw.peer.is_some_and(|p| is_trusted(&self.trusted, p));
        let scheme = match raw.forwarded_proto.as_ref().map(request::text) {
            Some(p) if peer_trusted && (p == "https" || p == "http") => p,
            _ if raw.tls => "https".to_string(),
            _ => "http".to_string(),
        };
        let link = request::link(&scheme, raw.host.as_ref(), &raw.uri);
        let params = request::params(link.query.as_deref());
        let destination = request::destination(raw.location.as_ref(), &link);
        let user_agent = raw.user_agent.as_ref().map(request::text);
        let (agent, bot) = agent_cache::classify(user_agent.as_deref());
        let prefetch = raw.purpose.as_ref().is_some_and(|p| {
            let p = request::text(p).to_ascii_lowercase();
            p.contains("prefetch") || p.contains("prerender") || p.contains("preview")
        });
        let kind = if raw.method == http::Method::HEAD {
            ClickKind::Head
        } else if prefetch {
            ClickKind::Prefetch
        } else {
            match bot.as_ref().map(|b| b.kind) {
                Some(BotKind::Preview | BotKind::Scanner) => ClickKind::Preview,
                Some(BotKind::Crawler | BotKind::Tool) => ClickKind::Bot,
                None => ClickKind::Human,
            }
        };
        let geo = ip.and_then(|ip| geo.and_then(|g| g.lookup(ip)));
        let since = raw.at.duration_since(UNIX_EPOCH).unwrap_or_default();
        // UUIDv7 from the capture time; its random bits from the thread's generator
        // rather than a system call per event.
        let id = uuid::Builder::from_unix_timestamp_millis(
            since.as_millis() as u64,
            &rand::random::<[u8; 10]>(),
        )
        .into_uuid();
        ClickEvent {
            id,
            timestamp: humantime::format_rfc3339_millis(raw.at).to_string(),
            kind,
            method: raw.method.as_str().to_string(),
            status: raw.status,
            link,
            params,
            destination,
            referrer: request::referrer(raw.referer.as_ref()),
            client: Client {
                ip: ip.map(|ip| anonymize(ip, self.v4_prefix, self.v6_prefix).to_string()),
                ip_version: ip.map(|ip| if ip.is_ipv4() { 4 } else { 6 }),
                raw_ip: ip.filter(|_| self.keep_raw_ip).map(|ip| ip.to_string()),
                ip_source: source.as_str().to_string(),
                user_agent,
                prefetch,
            },
            agent,
            bot,
            geo,
        }
    }
}
