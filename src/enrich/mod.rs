//! Enrichment: turns a [`RawClick`] into a [`ClickEvent`] on plain threads, off the
//! request path.
//!
//! Everything that costs (header parsing, GeoIP, user agent rules, the event's type,
//! formatting) happens here and not in the proxy. GeoIP is looked up on the full address
//! before it is anonymised; only the anonymised address is kept unless
//! `enrich.keep_raw_ip` is on. Whether a click is a visitor's first on its link
//! (`unique`) is decided here too, on the full address, against a table the threads
//! share ([`unique`]).

pub mod agent;
mod agent_cache;
pub mod bots;
mod client_ip;
mod event_type;
pub mod geo;
mod host;
mod link_cache;
mod memo;
mod privacy;
mod request;
mod spool;
mod stored;
pub mod unique;
mod worker;

pub use client_ip::{client_ip, is_trusted};
pub use event_type::TypeRules;
pub use geo::GeoDb;
pub use privacy::anonymize;
pub use unique::UniqueTable;
pub use worker::{Batcher, Workers, start};

use arc_swap::ArcSwapOption;
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::click::{BotKind, ClickEvent, ClickKind, Cut, RawClick};
use crate::config::EnrichConfig;
use stored::Stored;

/// The GeoIP database in use, swapped whole when a new one is loaded.
pub type GeoHandle = Arc<ArcSwapOption<GeoDb>>;

/// The enrichment settings in use, swapped whole by a reload; the threads read them
/// once per batch.
pub type EnricherHandle = Arc<arc_swap::ArcSwap<Enricher>>;

/// Everything enrichment needs besides the click.
pub struct Enricher {
    pub trusted: Vec<IpNet>,
    pub geo: GeoHandle,
    pub keep_raw_ip: bool,
    pub v4_prefix: u8,
    pub v6_prefix: u8,
    /// `[qr]`, `[[pages]]` and the QR keys of `[[links]]`.
    pub types: TypeRules,
    /// The visitors seen, shared by every thread and kept across reloads; `None`: no
    /// event is marked.
    pub unique: Option<Arc<UniqueTable>>,
    /// `enrich.unique_window`; zero: no event is marked.
    pub unique_window: Duration,
}

impl Enricher {
    /// The settings of `cfg`, marking unique clicks in `unique` (the process's one
    /// table, which a reload hands on).
    pub fn new(
        cfg: &EnrichConfig,
        trusted: Vec<IpNet>,
        geo: GeoHandle,
        unique: Option<Arc<UniqueTable>>,
    ) -> Enricher {
        Enricher {
            trusted,
            geo,
            keep_raw_ip: cfg.keep_raw_ip,
            v4_prefix: cfg.ipv4_prefix,
            v6_prefix: cfg.ipv6_prefix,
            types: TypeRules::default(),
            unique,
            unique_window: cfg.unique_window,
        }
    }

    /// These settings with the type rules `types`.
    pub fn with_types(self, types: TypeRules) -> Enricher {
        Enricher { types, ..self }
    }

    /// Whether this click is its visitor's first on the link within the window; `None`
    /// with the window off. A HEAD request or a prefetch sends no one anywhere: it is
    /// never unique, and does not take the place of the visit that may follow.
    fn unique(&self, raw: &RawClick, kind: ClickKind, ip: Option<IpAddr>) -> Option<bool> {
        let table = self
            .unique
            .as_ref()
            .filter(|_| !self.unique_window.is_zero())?;
        if matches!(kind, ClickKind::Head | ClickKind::Prefetch) {
            return Some(false);
        }
        let host = raw
            .host
            .as_ref()
            .map(http::HeaderValue::as_bytes)
            .or_else(|| raw.uri.authority().map(|a| a.as_str().as_bytes()));
        let visitor = table.visitor(
            ip,
            raw.user_agent.as_ref().map(http::HeaderValue::as_bytes),
            host,
            raw.uri.path(),
        );
        Some(table.first(visitor, self.unique_window))
    }

    /// Enriches `raw` and appends the event's stored JSON to `out`. On error `out` may
    /// hold part of it: the caller truncates.
    pub fn write(
        &self,
        raw: &RawClick,
        geo: Option<&GeoDb>,
        out: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        let (ip, source) = client_ip(
            raw.peer,
            raw.forwarded_for
                .as_ref()
                .map(|v| forwarded_chain(v, raw.cut)),
            raw.real_ip.as_ref(),
            &self.trusted,
        );
        let peer_trusted = raw.peer.is_some_and(|p| is_trusted(&self.trusted, p));
        let scheme = match raw.forwarded_proto.as_ref().map(request::text) {
            Some(p) if peer_trusted && (p == "https" || p == "http") => p,
            _ if raw.tls => "https".into(),
            _ => "http".into(),
        };
        let link = link_cache::read(&scheme, raw.host.as_ref(), &raw.uri, raw.location.as_ref())?;
        let user_agent = raw.user_agent.as_ref().map(request::text);
        let agent = agent_cache::classify(user_agent.as_deref())?;
        let prefetch = raw.purpose.as_ref().is_some_and(|p| {
            let p = request::text(p).to_ascii_lowercase();
            p.contains("prefetch") || p.contains("prerender") || p.contains("preview")
        });
        let kind = if raw.method == http::Method::HEAD {
            ClickKind::Head
        } else if prefetch {
            ClickKind::Prefetch
        } else {
            match agent.bot_kind {
                Some(BotKind::Preview | BotKind::Scanner) => ClickKind::Preview,
                Some(BotKind::Crawler | BotKind::Tool) => ClickKind::Bot,
                None => ClickKind::Human,
            }
        };
        let at = crate::clock::writable(raw.at);
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        // UUIDv7 from the capture time; its random bits from the thread's generator
        // rather than a system call per event.
        let id = uuid::Builder::from_unix_timestamp_millis(
            since.as_millis() as u64,
            &rand::random::<[u8; 10]>(),
        )
        .into_uuid();
        let referer = raw.referer.as_ref().map(request::text);
        let event = Stored {
            id,
            timestamp: humantime::format_rfc3339_millis(at),
            event_type: self.types.type_of(raw, referer.as_deref()),
            kind,
            method: raw.method.as_str(),
            status: raw.status,
            link: &link.link,
            params: &link.params,
            destination: &link.destination,
            referrer: request::referrer(referer.as_deref()),
            client: stored::Client {
                ip: ip.map(|ip| anonymize(ip, self.v4_prefix, self.v6_prefix)),
                ip_version: ip.map(|ip| if ip.is_ipv4() { 4 } else { 6 }),
                raw_ip: ip.filter(|_| self.keep_raw_ip),
                ip_source: source.as_str(),
                user_agent: user_agent.as_deref(),
                prefetch,
            },
            agent: &agent.agent,
            bot: &agent.bot,
            geo: ip.and_then(|ip| geo.and_then(|g| g.lookup(ip))),
            truncated: stored::Truncated(raw.cut),
            unique: self.unique(raw, kind, ip),
        };
        serde_json::to_writer(out, &event)
    }

    /// The event [`Enricher::write`] stores, read back as the rest of clicktap sees it.
    pub fn enrich(&self, raw: &RawClick, geo: Option<&GeoDb>) -> serde_json::Result<ClickEvent> {
        let mut out = Vec::new();
        self.write(raw, geo, &mut out)?;
        serde_json::from_slice(&out)
    }
}

/// The `X-Forwarded-For` chain to read. When the proxy kept only its tail, the leftmost
/// entry may be a cut address (`1.2.3.4` of `81.2.3.4`) and is left out.
fn forwarded_chain(v: &http::HeaderValue, cut: Cut) -> &[u8] {
    let chain = v.as_bytes();
    if !cut.contains(Cut::FORWARDED_FOR) {
        return chain;
    }
    chain
        .iter()
        .position(|b| *b == b',')
        .map_or(&[], |comma| &chain[comma + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::net::IpAddr;
    use std::time::SystemTime;

    fn hv(s: &[u8]) -> Option<HeaderValue> {
        Some(HeaderValue::from_bytes(s).unwrap())
    }

    fn click(peer: &str, ua: Option<&[u8]>) -> RawClick {
        RawClick {
            at: SystemTime::now(),
            method: http::Method::GET,
            tls: false,
            host: hv(b"Sho.rt"),
            uri: "/abc?utm_source=x&q=%C3%A9t%C3%A9".parse().unwrap(),
            status: 302,
            location: hv(b"/landing?y=1"),
            user_agent: ua.and_then(hv),
            referer: hv(b"https://Mail.example.org/inbox"),
            peer: Some(peer.parse::<IpAddr>().unwrap()),
            forwarded_for: None,
            forwarded_proto: None,
            real_ip: None,
            purpose: None,
            cut: Cut::default(),
        }
    }

    fn enricher(trusted: Vec<IpNet>, keep_raw_ip: bool) -> Enricher {
        Enricher {
            trusted,
            geo: GeoHandle::default(),
            keep_raw_ip,
            v4_prefix: 24,
            v6_prefix: 48,
            types: TypeRules::default(),
            unique: None,
            unique_window: Duration::ZERO,
        }
    }

    /// An enricher marking unique clicks within `window`.
    fn counting(window: Duration) -> Enricher {
        let table = UniqueTable::new(1 << 20, &crate::metrics::Metrics::new());
        Enricher {
            unique: Some(Arc::new(table)),
            unique_window: window,
            ..enricher(Vec::new(), false)
        }
    }

    fn geo() -> GeoDb {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/geo/test/clicktap-test-city.mmdb"
        );
        GeoDb::open(&[path.into()]).unwrap()
    }

    /// The stored JSON is [`ClickEvent`]'s own, byte for byte: read back and written
    /// again, nothing changes. This is what keeps `Stored` and `ClickEvent` one format.
    #[test]
    fn the_stored_event_is_click_events_json() {
        let geo = geo();
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let plain = enricher(trusted.clone(), false);
        let keep = Enricher {
            trusted,
            keep_raw_ip: true,
            ..counting(Duration::from_secs(3600))
        };
        let chrome = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
        let mut proxied = click("10.1.2.3", Some(chrome));
        proxied.forwarded_for = hv(b"2001:db8::1, 10.9.9.9");
        proxied.forwarded_proto = hv(b"https");
        let mut head = click("81.2.69.142", Some(b"curl/8.5.0"));
        head.method = http::Method::HEAD;
        head.location = None;
        head.referer = hv(b"   ");
        let mut prefetch = click("81.2.69.142", Some(chrome));
        prefetch.purpose = hv(b"Prefetch");
        prefetch.referer = hv(b"https://x.example/\xff\"quoted\"");
        prefetch.location = hv(b"https://Example.com/p");
        let mut cut = click("10.1.2.3", Some(chrome));
        cut.cut = Cut::LINK.mark(Cut::USER_AGENT, true);
        let mut head_cut = click("10.1.2.3", Some(chrome));
        head_cut.cut = Cut::FORWARDED_FOR;
        let clicks = [
            cut,
            head_cut,
            click("81.2.69.142", Some(chrome)),
            click("81.2.69.142", None),
            click("::ffff:81.2.69.142", Some(b"Slackbot-LinkExpanding 1.0")),
            proxied,
            head,
            prefetch,
        ];
        let mut kinds = Vec::new();
        for enricher in [&plain, &keep] {
            for raw in &clicks {
                let mut stored = Vec::new();
                enricher.write(raw, Some(&geo), &mut stored).unwrap();
                let event: ClickEvent = serde_json::from_slice(&stored).unwrap();
                assert_eq!(
                    String::from_utf8(serde_json::to_vec(&event).unwrap()).unwrap(),
                    String::from_utf8(stored).unwrap()
                );
                kinds.push(event.kind);
            }
        }
        for kind in ClickKind::ALL {
            assert!(kinds.contains(&kind), "{kind:?} covered");
        }
    }

    #[test]
    fn a_visitors_first_click_on_a_link_is_unique_and_heads_and_prefetches_never_are() {
        let e = counting(Duration::from_secs(3600));
        let chrome = b"Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0.0.0 Safari/537.36";
        let unique = |raw: &RawClick| e.enrich(raw, None).unwrap().unique;
        let mut head = click("81.2.69.142", Some(chrome));
        head.method = http::Method::HEAD;
        let mut prefetch = click("81.2.69.142", Some(chrome));
        prefetch.purpose = hv(b"prefetch");
        // Neither takes the place of the visit that follows.
        assert_eq!(unique(&head), Some(false));
        assert_eq!(unique(&prefetch), Some(false));
        let get = click("81.2.69.142", Some(chrome));
        assert_eq!(unique(&get), Some(true));
        assert_eq!(unique(&get), Some(false));
        assert_eq!(unique(&head), Some(false));
        // Another query on the same link is the same link; another path, address or
        // agent is another first click.
        let mut query = click("81.2.69.142", Some(chrome));
        query.uri = "/abc?utm_source=y".parse().unwrap();
        assert_eq!(unique(&query), Some(false));
        let mut path = click("81.2.69.142", Some(chrome));
        path.uri = "/abd".parse().unwrap();
        assert_eq!(unique(&path), Some(true));
        assert_eq!(unique(&click("81.2.69.143", Some(chrome))), Some(true));
        assert_eq!(
            unique(&click("81.2.69.142", Some(b"curl/8.5.0"))),
            Some(true)
        );
        // Addresses are told apart in full, not by the anonymised prefix events keep.
        assert_eq!(
            e.enrich(&click("81.2.69.143", Some(chrome)), None)
                .unwrap()
                .client
                .ip,
            e.enrich(&get, None).unwrap().client.ip
        );
        // With the window off, no event is marked and the field is absent.
        let off = counting(Duration::ZERO);
        let mut json = Vec::new();
        off.write(&get, None, &mut json).unwrap();
        assert!(!String::from_utf8(json).unwrap().contains("unique"));
        assert_eq!(
            enricher(Vec::new(), false)
                .enrich(&get, None)
                .unwrap()
                .unique,
            None
        );
    }

    #[test]
    fn an_event_names_what_was_cut() {
        let e = enricher(Vec::new(), false);
        let mut raw = click("81.2.69.142", Some(b"curl/8.5.0"));
        assert_eq!(
            e.enrich(&raw, None).unwrap().truncated,
            Vec::<String>::new()
        );
        let mut json = Vec::new();
        e.write(&raw, None, &mut json).unwrap();
        assert!(!String::from_utf8(json).unwrap().contains("truncated"));
        raw.cut = Cut::REFERRER
            .mark(Cut::LINK, true)
            .mark(Cut::FORWARDED_FOR, true);
        assert_eq!(
            e.enrich(&raw, None).unwrap().truncated,
            ["link", "referrer"]
        );
    }

    #[test]
    fn a_forwarded_for_cut_at_its_head_loses_its_first_entry() {
        let e = enricher(vec!["10.0.0.0/8".parse().unwrap()], true);
        let mut raw = click("10.0.0.1", None);
        // `81.2.69.142` cut to `1.2.69.142`: a valid address, but not the visitor's.
        raw.forwarded_for = hv(b"1.2.69.142, 10.0.0.9");
        raw.cut = Cut::FORWARDED_FOR;
        let event = e.enrich(&raw, None).unwrap();
        assert_eq!(event.client.raw_ip.as_deref(), Some("10.0.0.9"));
        raw.cut = Cut::default();
        let event = e.enrich(&raw, None).unwrap();
        assert_eq!(event.client.raw_ip.as_deref(), Some("1.2.69.142"));
    }

    #[test]
    fn an_event_reads_the_whole_click() {
        let event = enricher(Vec::new(), false)
            .enrich(&click("81.2.69.142", Some(b"curl/8.5.0")), Some(&geo()))
            .unwrap();
        assert_eq!(event.kind, ClickKind::Bot);
        assert_eq!(
            event.link.url,
            "http://sho.rt/abc?utm_source=x&q=%C3%A9t%C3%A9"
        );
        assert_eq!(event.params["q"], "été");
        let dest = event.destination.unwrap();
        assert_eq!(dest.url, "http://sho.rt/landing?y=1");
        assert_eq!(event.referrer.host, "mail.example.org");
        assert_eq!(
            event.referrer.url.as_deref(),
            Some("https://Mail.example.org/inbox")
        );
        assert_eq!(event.client.ip.as_deref(), Some("81.2.69.0"));
        assert_eq!(event.client.raw_ip, None);
        assert_eq!(event.bot.unwrap().name, "curl");
        assert_eq!(event.geo.unwrap().country_code.as_deref(), Some("GB"));
    }
}
