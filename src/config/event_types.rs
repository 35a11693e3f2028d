//! `[qr]`, `[[pages]]` and the QR keys of `[[links]]`, validated: the rules that give an
//! event its type ([`crate::click::EventType`]).
//!
//! A page's path is an exact path or a prefix ending in `*`, never a full glob: the
//! proxy asks whether a 200 answer is a page view on the request path, where only a
//! comparison of strings is cheap enough (a glob is a regular expression, whose cache
//! pool takes a lock). Everything else here runs on the enrichment threads.

use globset::GlobMatcher;

use super::problems::Problems;
use super::webhook::glob;
use super::webhook_file::{PageFile, QrFile};

/// `[qr]`: what marks a redirect of any link as a QR scan.
#[derive(Debug, Clone, Default)]
pub struct QrConfig {
    /// Query parameter names whose presence marks a scan.
    pub params: Vec<String>,
    /// Globs of link paths that are only ever scanned.
    pub paths: Vec<GlobMatcher>,
}

/// A bio page (`[[pages]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Lower case, without a port; `None`: every host.
    pub host: Option<String>,
    pub path: PagePath,
    /// A redirect whose path is under the page's is a click on its links.
    pub under: bool,
    /// A redirect whose `Referer` is the page is a click on its links.
    pub referer: bool,
}

/// Which paths a page answers on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PagePath {
    /// This path, with or without a trailing `/`.
    Exact(String),
    /// Every path starting with this (`/@` of `/@*`).
    Prefix(String),
}

impl PagePath {
    /// Hot path: string comparisons only.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PagePath::Exact(p) => path == p || path.strip_suffix('/') == Some(p.as_str()),
            PagePath::Prefix(p) => path.starts_with(p.as_str()),
        }
    }

    /// Whether `path` is a link under the page: `/alice/github` under `/alice`; any
    /// path of a prefix page (its pages answer 200, its links redirect).
    pub fn holds(&self, path: &str) -> bool {
        match self {
            PagePath::Exact(p) => path
                .strip_prefix(p.trim_end_matches('/'))
                .is_some_and(|rest| rest.len() > 1 && rest.starts_with('/')),
            PagePath::Prefix(p) => path.starts_with(p.as_str()),
        }
    }
}

impl Page {
    /// Hot path: whether a 200 answer to a request for `host` (the `Host` header, as
    /// sent) and `path` is a view of this page. No lock, no allocation.
    pub fn shows(&self, host: Option<&[u8]>, path: &str) -> bool {
        self.path.matches(path)
            && self.host.as_deref().is_none_or(|want| {
                host.and_then(|h| std::str::from_utf8(h).ok())
                    .is_some_and(|h| same_host(h, want))
            })
    }

    /// Whether this page's host is `host` (a link's or a referrer's, port allowed);
    /// `link_host` stands in for a page that names none.
    pub fn on_host(&self, host: &str, link_host: &str) -> bool {
        same_host(host, self.host.as_deref().unwrap_or(bare_host(link_host)))
    }
}

/// Whether `host` (port allowed, any case) is `want` (lower case, no port).
fn same_host(host: &str, want: &str) -> bool {
    let host = bare_host(host);
    host.strip_suffix('.')
        .unwrap_or(host)
        .eq_ignore_ascii_case(want)
}

/// The host without its port, as filters, link entries and pages name it.
pub fn bare_host(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| &h[1..]);
    }
    host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    })
}

pub(super) fn qr(f: QrFile, p: &mut Problems) -> QrConfig {
    let params = params(f.params, "qr.params", p);
    let mut paths = Vec::new();
    for (i, g) in f.paths.iter().enumerate() {
        if let Some(m) = p.check(&format!("qr.paths[{i}]"), glob(g)) {
            paths.push(m);
        }
    }
    QrConfig { params, paths }
}

/// Query parameter names: each must be one.
pub(super) fn params(names: Vec<String>, key: &str, p: &mut Problems) -> Vec<String> {
    for (i, n) in names.iter().enumerate() {
        if n.is_empty() {
            p.push(format!("{key}[{i}]"), "is empty: no parameter is named so");
        } else if n.contains(['&', '=', '#']) || n.chars().any(char::is_whitespace) {
            p.push(
                format!("{key}[{i}]"),
                format!("{n:?} is not a query parameter name (no &, =, # or spaces)"),
            );
        }
    }
    names
}

pub(super) fn pages(files: Vec<PageFile>, p: &mut Problems) -> Vec<Page> {
    let mut out = Vec::new();
    for (i, f) in files.into_iter().enumerate() {
        let key = format!("pages[{i}]");
        let path = page_path(&f.path).map_err(|e| p.push(format!("{key}.path"), e));
        let host = match f.host {
            Some(h)
                if h.is_empty()
                    || h.contains(['/', ':', '@'])
                    || h.contains(char::is_whitespace) =>
            {
                p.push(
                    format!("{key}.host"),
                    format!("{h:?} is not a host name (no port, path or spaces)"),
                );
                None
            }
            h => h.map(|h| h.trim_end_matches('.').to_ascii_lowercase()),
        };
        if let Ok(path) = path {
            out.push(Page {
                host,
                path,
                under: f.under,
                referer: f.referer,
            });
        }
    }
    out
}

fn page_path(s: &str) -> Result<PagePath, String> {
    if !s.starts_with('/') {
        return Err(if s.is_empty() {
            "is missing: the page's path, such as \"/alice\" or \"/@*\"".into()
        } else {
            format!("{s:?} does not start with /")
        });
    }
    if s.contains(['?', '#']) || s.chars().any(char::is_whitespace) {
        return Err(format!(
            "{s:?} is not a path (no query, fragment or spaces)"
        ));
    }
    match s.find('*') {
        None => Ok(PagePath::Exact(s.to_string())),
        Some(at) if at == s.len() - 1 => Ok(PagePath::Prefix(s[..at].to_string())),
        Some(_) => Err(format!(
            "{s:?}: only a * at the end is read (a prefix); a page path is no glob"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(host: Option<&str>, path: &str) -> Page {
        Page {
            host: host.map(str::to_string),
            path: page_path(path).unwrap(),
            under: true,
            referer: true,
        }
    }

    #[test]
    fn a_page_is_shown_on_its_path_and_host_only() {
        let alice = page(Some("sho.rt"), "/alice");
        assert!(alice.shows(Some(b"sho.rt"), "/alice"));
        assert!(alice.shows(Some(b"Sho.RT:8080"), "/alice/"));
        assert!(!alice.shows(Some(b"other.example"), "/alice"));
        assert!(!alice.shows(None, "/alice"));
        assert!(!alice.shows(Some(b"sho.rt"), "/alice/github"));
        assert!(!alice.shows(Some(b"sho.rt"), "/alicex"));
        let any = page(None, "/@*");
        assert!(any.shows(None, "/@bob"));
        assert!(any.shows(Some(b"\xff"), "/@"));
        assert!(!any.shows(None, "/bob"));
    }

    #[test]
    fn links_under_a_page_are_below_its_path() {
        let alice = page_path("/alice").unwrap();
        assert!(alice.holds("/alice/github"));
        assert!(!alice.holds("/alice"));
        assert!(!alice.holds("/alice/"));
        assert!(!alice.holds("/alicex/y"));
        assert!(page_path("/alice/").unwrap().holds("/alice/x"));
        assert!(page_path("/").unwrap().holds("/x"));
        assert!(page_path("/@*").unwrap().holds("/@bob/x"));
    }

    #[test]
    fn a_page_without_a_host_is_on_the_links_host() {
        let anywhere = page(None, "/alice");
        assert!(anywhere.on_host("sho.rt", "sho.rt:8080"));
        assert!(!anywhere.on_host("evil.example", "sho.rt"));
        let own = page(Some("me.example"), "/");
        assert!(own.on_host("ME.example:443", "sho.rt"));
        assert!(!own.on_host("sho.rt", "sho.rt"));
    }

    #[test]
    fn page_paths_are_exact_or_a_prefix() {
        assert_eq!(page_path("/@*"), Ok(PagePath::Prefix("/@".into())));
        assert_eq!(page_path("/a"), Ok(PagePath::Exact("/a".into())));
        for bad in ["", "alice", "/a*b", "/*/x", "/a?b", "/a b"] {
            assert!(page_path(bad).is_err(), "{bad}");
        }
    }
}
