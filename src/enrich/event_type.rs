//! The type rules: which [`EventType`] a captured click is, decided on the enrichment
//! threads from `[qr]`, the QR keys of `[[links]]` and `[[pages]]`.
//!
//! The proxy decides only whether to capture (a wanted redirect, or a 200 on a page's
//! path); everything here (query parsing, globs, the `Referer`) is done off the request
//! path. A redirect is read in this order: a QR scan (`[qr]` paths or parameters, the
//! first matching `[[links]]` entry's `qr` or `qr_params`), then a click on a page's
//! link (under a page's path, or referred by a page), else a link click. With no rules
//! configured, a redirect costs one test of a flag.

use globset::GlobMatcher;
use http::HeaderValue;

use super::request::url_parts;
use crate::click::{EventType, RawClick};
use crate::config::{Config, LinkMeta, Page, bare_host};

/// The rules in use; part of the enrichment settings a reload swaps.
#[derive(Debug, Clone)]
pub struct TypeRules {
    qr_params: Vec<String>,
    qr_paths: Vec<GlobMatcher>,
    /// Every `[[links]]` entry, in order, when any has a QR key (the first entry
    /// matching a link decides, as for its metadata); empty otherwise.
    links: Vec<LinkMeta>,
    pages: Vec<Page>,
    /// No rule at all: every redirect is a link click.
    none: bool,
}

/// No rules: every redirect is a link click.
impl Default for TypeRules {
    fn default() -> Self {
        TypeRules {
            qr_params: Vec::new(),
            qr_paths: Vec::new(),
            links: Vec::new(),
            pages: Vec::new(),
            none: true,
        }
    }
}

impl TypeRules {
    pub fn new(cfg: &Config) -> TypeRules {
        let qr_links = cfg.links.iter().any(|l| l.qr || !l.qr_params.is_empty());
        let none = !qr_links && cfg.qr.params.is_empty() && cfg.qr.paths.is_empty();
        TypeRules {
            qr_params: cfg.qr.params.clone(),
            qr_paths: cfg.qr.paths.clone(),
            links: if qr_links {
                cfg.links.clone()
            } else {
                Vec::new()
            },
            pages: cfg.pages.clone(),
            none: none && cfg.pages.is_empty(),
        }
    }

    /// The type of `raw`, whose `Referer` (as text) is `referer`.
    pub fn type_of(&self, raw: &RawClick, referer: Option<&str>) -> EventType {
        // Only a page's path makes a 200 answer an event (`proxy::capture`).
        if raw.status == 200 {
            return EventType::PageViewed;
        }
        if self.none {
            return EventType::LinkClicked;
        }
        let host = raw
            .host
            .as_ref()
            .map(HeaderValue::as_bytes)
            .or_else(|| raw.uri.authority().map(|a| a.as_str().as_bytes()))
            .and_then(|h| std::str::from_utf8(h).ok())
            .unwrap_or("");
        let path = raw.uri.path();
        if self.scanned(host, path, raw.uri.query()) {
            EventType::LinkScanned
        } else if self.on_page(host, path, referer) {
            EventType::PageLinkClicked
        } else {
            EventType::LinkClicked
        }
    }

    fn scanned(&self, host: &str, path: &str, query: Option<&str>) -> bool {
        if self.qr_paths.iter().any(|g| g.is_match(path)) {
            return true;
        }
        let entry = if self.links.is_empty() {
            None
        } else {
            let host = bare_host(host);
            self.links.iter().find(|l| l.matches(host, path))
        };
        if entry.is_some_and(|l| l.qr) {
            return true;
        }
        let own = entry.map_or(&[][..], |l| l.qr_params.as_slice());
        let Some(query) = query.filter(|_| !self.qr_params.is_empty() || !own.is_empty()) else {
            return false;
        };
        url::form_urlencoded::parse(query.as_bytes())
            .any(|(name, _)| self.qr_params.iter().chain(own).any(|p| *p == name))
    }

    fn on_page(&self, host: &str, path: &str, referer: Option<&str>) -> bool {
        if self.pages.is_empty() {
            return false;
        }
        let referred = referer.and_then(url_parts);
        self.pages.iter().any(|page| {
            let under = page.under && page.on_host(host, host) && page.path.holds(path);
            let referred = page.referer
                && referred
                    .as_ref()
                    .is_some_and(|(h, p)| page.on_host(h, host) && page.path.matches(p));
            under || referred
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::click::Cut;
    use std::time::SystemTime;

    fn rules(toml: &str) -> TypeRules {
        let text = format!("[queue]\npath = \"/tmp/clicktap-types-test\"\n{toml}");
        TypeRules::new(&crate::config::from_str(&text, std::path::Path::new("t.toml")).unwrap())
    }

    fn raw(status: u16, target: &str, referer: Option<&str>) -> RawClick {
        RawClick {
            at: SystemTime::now(),
            method: http::Method::GET,
            tls: true,
            host: Some(HeaderValue::from_static("Sho.rt:8443")),
            uri: target.parse().unwrap(),
            status,
            location: None,
            user_agent: None,
            referer: referer.map(|r| HeaderValue::from_str(r).unwrap()),
            peer: None,
            forwarded_for: None,
            forwarded_proto: None,
            real_ip: None,
            purpose: None,
            cut: Cut::default(),
        }
    }

    fn type_of(
        rules: &TypeRules,
        status: u16,
        target: &str,
        referer: Option<&str>,
    ) -> &'static str {
        rules
            .type_of(&raw(status, target, referer), referer)
            .as_str()
    }

    #[test]
    fn without_rules_every_redirect_is_a_link_click() {
        let none = rules("");
        assert_eq!(
            type_of(&none, 302, "/r/x?qr=1", Some("https://sho.rt/alice")),
            "link.clicked"
        );
        assert_eq!(type_of(&none, 200, "/alice", None), "page.viewed");
    }

    #[test]
    fn scans_are_marked_by_parameter_path_or_link_entry() {
        let r = rules(
            r#"[qr]
params = ["qr", "src"]
paths = ["/q/*"]
[[links]]
path = "/menu"
qr = true
[[links]]
host = "sho.rt"
path = "/flyer*"
qr_params = ["f"]
[[links]]
path = "/*"
"#,
        );
        assert_eq!(type_of(&r, 302, "/r/x?qr", None), "link.scanned");
        assert_eq!(
            type_of(&r, 302, "/r/x?a=1&src=poster", None),
            "link.scanned"
        );
        assert_eq!(
            type_of(&r, 302, "/r/x?%71r=1", None),
            "link.scanned",
            "names are decoded"
        );
        assert_eq!(type_of(&r, 302, "/r/x?qrx=1", None), "link.clicked");
        assert_eq!(
            type_of(&r, 302, "/r/x?a=qr", None),
            "link.clicked",
            "names, not values"
        );
        assert_eq!(type_of(&r, 302, "/q/abc", None), "link.scanned");
        assert_eq!(type_of(&r, 302, "/menu", None), "link.scanned");
        assert_eq!(type_of(&r, 302, "/flyer-2?f=1", None), "link.scanned");
        assert_eq!(type_of(&r, 302, "/flyer-2", None), "link.clicked");
        assert_eq!(
            type_of(&r, 302, "/other?f=1", None),
            "link.clicked",
            "a link entry's parameters are its links' only"
        );
    }

    #[test]
    fn page_links_are_clicks_under_the_page_or_from_it() {
        let r = rules(
            r#"[[pages]]
path = "/alice"
[[pages]]
path = "/@*"
under = false
[[pages]]
host = "me.example"
path = "/"
under = false
[[pages]]
path = "/bob"
referer = false
"#,
        );
        assert_eq!(type_of(&r, 302, "/alice/github", None), "page.link_clicked");
        assert_eq!(
            type_of(&r, 302, "/r/x", Some("https://sho.rt/alice")),
            "page.link_clicked"
        );
        assert_eq!(
            type_of(&r, 302, "/r/x", Some("https://sho.rt/alice/?utm=1")),
            "page.link_clicked"
        );
        assert_eq!(
            type_of(&r, 302, "/r/x", Some("https://other.example/alice")),
            "link.clicked"
        );
        assert_eq!(
            type_of(&r, 302, "/r/x", Some("https://sho.rt/@carol")),
            "page.link_clicked"
        );
        assert_eq!(
            type_of(&r, 302, "/@carol/x", None),
            "link.clicked",
            "under = false"
        );
        assert_eq!(
            type_of(&r, 302, "/r/x", Some("https://me.example/")),
            "page.link_clicked"
        );
        assert_eq!(
            type_of(&r, 302, "/r/x", Some("https://me.example/blog")),
            "link.clicked"
        );
        assert_eq!(type_of(&r, 302, "/bob/x", None), "page.link_clicked");
        assert_eq!(
            type_of(&r, 302, "/r/x", Some("https://sho.rt/bob")),
            "link.clicked",
            "referer = false"
        );
        assert_eq!(type_of(&r, 302, "/r/x", None), "link.clicked");
    }

    #[test]
    fn a_scan_wins_over_a_page_link() {
        let r = rules("[qr]\nparams = [\"qr\"]\n[[pages]]\npath = \"/alice\"\n");
        assert_eq!(type_of(&r, 302, "/alice/github?qr=1", None), "link.scanned");
    }
}
