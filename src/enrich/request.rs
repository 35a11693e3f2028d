//! What the request itself says: the link clicked, its query, where it sent the
//! visitor and where the visitor came from.

use http::HeaderValue;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use url::Url;

use super::host::is_valid_authority;
use crate::click::{Destination, LinkRef};

/// Header bytes as text; invalid UTF-8 is replaced rather than refused, so a broken
/// header never costs the event. Checked with `str::from_utf8` first: its validation
/// is several times faster than the lossy decoder's, and almost every header is valid.
pub fn text(v: &HeaderValue) -> Cow<'_, str> {
    match std::str::from_utf8(v.as_bytes()) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(v.as_bytes()),
    }
}

/// The link clicked: `scheme://host/path?query`. Without a `Host` that names a host
/// ([`is_valid_authority`]), the host is empty and the URL is the path and query alone,
/// so that no visitor can put a URL of their choosing into the event.
pub fn link(scheme: &str, host: Option<&HeaderValue>, uri: &http::Uri) -> LinkRef {
    let host = host
        .map(HeaderValue::as_bytes)
        .or_else(|| uri.authority().map(|a| a.as_str().as_bytes()))
        .filter(|h| is_valid_authority(h))
        .map(|h| String::from_utf8_lossy(h).to_ascii_lowercase())
        .unwrap_or_default();
    let path = uri.path().to_string();
    let query = uri.query().map(str::to_string);
    let mut url = String::with_capacity(
        scheme.len() + 3 + host.len() + path.len() + query.as_ref().map_or(0, |q| q.len() + 1),
    );
    if !host.is_empty() {
        url.push_str(scheme);
        url.push_str("://");
        url.push_str(&host);
    }
    url.push_str(&path);
    if let Some(q) = &query {
        url.push('?');
        url.push_str(q);
    }
    LinkRef {
        url,
        scheme: scheme.to_string(),
        host,
        path,
        query,
    }
}

/// Query parameters; a repeated name keeps its last value.
pub fn params(query: Option<&str>) -> BTreeMap<String, String> {
    query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The `Location` header, made absolute against the link when it is relative (and the
/// link has a host to resolve it against). An absolute one is kept as the shortener
/// wrote it.
pub fn destination(location: Option<&HeaderValue>, link: &LinkRef) -> Option<Destination> {
    let raw = text(location?).into_owned();
    if let Some(host) = url_host(&raw) {
        return Some(Destination {
            host: Some(host.into_owned()),
            url: raw,
        });
    }
    if link.host.is_empty() {
        return Some(Destination {
            url: raw,
            host: None,
        });
    }
    let resolved = Url::parse(&link.url).and_then(|base| base.join(&raw));
    Some(match resolved {
        Ok(u) => Destination {
            host: u.host_str().map(str::to_ascii_lowercase),
            url: u.into(),
        },
        Err(_) => Destination {
            url: raw,
            host: None,
        },
    })
}

/// The event's `referrer`, borrowing from the header: the shape of
/// [`crate::click::Referrer`].
#[derive(Debug, Serialize)]
pub struct Referrer<'a> {
    pub url: Option<&'a str>,
    pub host: Cow<'a, str>,
}

pub fn referrer(referer: Option<&str>) -> Referrer<'_> {
    let url = referer.filter(|s| !s.trim().is_empty());
    let host = url.and_then(url_host).unwrap_or(Cow::Borrowed("direct"));
    Referrer { url, host }
}

/// The host of an absolute URL (`scheme://[userinfo@]host[:port]/...`), lower case,
/// without a full URL parse: this runs for every click.
fn url_host(s: &str) -> Option<Cow<'_, str>> {
    url_parts(s).map(|(host, _)| host)
}

/// The host (as [`url_host`]) and the path of an absolute URL; the path is `/` when
/// the URL has none.
pub fn url_parts(s: &str) -> Option<(Cow<'_, str>, &str)> {
    let (scheme, rest) = s.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(end);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.split_inclusive(']').next()?
    } else {
        host_port.split(':').next()?
    };
    let path = after.split(['?', '#']).next().unwrap_or("");
    let path = if path.is_empty() { "/" } else { path };
    (!host.is_empty()).then(|| (lower(host), path))
}

/// `s` in lower case, copied only when it is not already.
fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn link_is_rebuilt_from_host_and_uri() {
        let uri: http::Uri = "/abc?utm_source=x&a=1&a=2".parse().unwrap();
        let l = link("https", Some(&hv("Sho.RT")), &uri);
        assert_eq!(l.url, "https://sho.rt/abc?utm_source=x&a=1&a=2");
        assert_eq!(l.host, "sho.rt");
        let p = params(l.query.as_deref());
        assert_eq!(p["utm_source"], "x");
        assert_eq!(p["a"], "2");
    }

    #[test]
    fn a_host_that_is_no_host_is_left_out_of_the_link() {
        let uri: http::Uri = "/r/x?a=1".parse().unwrap();
        for planted in ["evil.example/phish?x=", "sho.rt evil", "user@evil.example"] {
            let l = link("https", Some(&hv(planted)), &uri);
            assert_eq!(l.host, "", "{planted}");
            assert_eq!(l.url, "/r/x?a=1", "{planted}");
            assert_eq!(l.path, "/r/x");
            let d = destination(Some(&hv("/landing")), &l).unwrap();
            assert_eq!(
                (d.url.as_str(), d.host),
                ("/landing", None),
                "stays relative"
            );
        }
        let none = link("http", None, &uri);
        assert_eq!((none.host.as_str(), none.url.as_str()), ("", "/r/x?a=1"));
        let port = link("http", Some(&hv("Sho.rt:8080")), &uri);
        assert_eq!(port.url, "http://sho.rt:8080/r/x?a=1");
    }

    #[test]
    fn relative_locations_are_made_absolute() {
        let l = link("http", Some(&hv("sho.rt")), &"/x".parse().unwrap());
        let d = destination(Some(&hv("/landing?y=1")), &l).unwrap();
        assert_eq!(d.url, "http://sho.rt/landing?y=1");
        let d = destination(Some(&hv("https://Example.com/p")), &l).unwrap();
        assert_eq!(d.host.as_deref(), Some("example.com"));
        assert_eq!(
            d.url, "https://Example.com/p",
            "kept as the shortener wrote it"
        );
    }

    #[test]
    fn hosts_are_read_from_absolute_urls() {
        for (url, host) in [
            ("https://Example.com/p?q#f", Some("example.com")),
            ("http://user:pw@h.example:8080/x", Some("h.example")),
            ("https://[2001:db8::1]:443/", Some("[2001:db8::1]")),
            ("android-app://com.slack/", Some("com.slack")),
            ("/relative/path", None),
            ("mailto:a@b.example", None),
            ("https:///nohost", None),
        ] {
            assert_eq!(url_host(url).as_deref(), host, "{url}");
        }
    }

    #[test]
    fn paths_are_read_from_absolute_urls() {
        for (url, parts) in [
            ("https://Sho.rt/alice?x=1#top", Some(("sho.rt", "/alice"))),
            ("https://sho.rt", Some(("sho.rt", "/"))),
            ("https://sho.rt?x", Some(("sho.rt", "/"))),
            ("http://u@[::1]:80/a/b", Some(("[::1]", "/a/b"))),
            ("/alice", None),
        ] {
            let got = url_parts(url);
            assert_eq!(got.as_ref().map(|(h, p)| (h.as_ref(), *p)), parts, "{url}");
        }
    }

    #[test]
    fn no_referer_is_direct() {
        assert_eq!(referrer(None).host, "direct");
        assert_eq!(referrer(Some("  ")).host, "direct");
        assert_eq!(referrer(Some("  ")).url, None);
        let r = referrer(Some("https://News.ycombinator.com/item?id=1"));
        assert_eq!(r.host, "news.ycombinator.com");
        assert_eq!(referrer(Some("android-app://com.slack")).host, "com.slack");
    }

    #[test]
    fn invalid_utf8_headers_are_kept_lossily() {
        let v = HeaderValue::from_bytes(b"https://x.example/\xff").unwrap();
        let text = text(&v);
        assert!(
            referrer(Some(&text))
                .url
                .unwrap()
                .starts_with("https://x.example/")
        );
    }
}
