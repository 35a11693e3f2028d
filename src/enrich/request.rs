//! What the request itself says: the link clicked, its query, where it sent the
//! visitor and where the visitor came from.

use http::HeaderValue;
use std::collections::BTreeMap;
use url::Url;

use crate::click::{Destination, LinkRef, Referrer};

/// Header bytes as text; invalid UTF-8 is replaced rather than refused, so a broken
/// header never costs the event.
pub fn text(v: &HeaderValue) -> String {
    match v.to_str() {
        Ok(s) => s.to_string(),
        Err(_) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
    }
}

pub fn link(scheme: &str, host: Option<&HeaderValue>, uri: &http::Uri) -> LinkRef {
    let host = host
        .map(text)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let path = uri.path().to_string();
    let query = uri.query().map(str::to_string);
    let url = match &query {
        Some(q) => format!("{scheme}://{host}{path}?{q}"),
        None => format!("{scheme}://{host}{path}"),
    };
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

/// The `Location` header, made absolute against the link when it is relative.
pub fn destination(location: Option<&HeaderValue>, link: &LinkRef) -> Option<Destination> {
    let raw = text(location?);
    let resolved =
        Url::parse(&raw).or_else(|_| Url::parse(&link.url).and_then(|base| base.join(&raw)));
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

pub fn referrer(referer: Option<&HeaderValue>) -> Referrer {
    let url = referer.map(text).filter(|s| !s.trim().is_empty());
    let host = url
        .as_deref()
        .and_then(|u| Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_else(|| "direct".to_string());
    Referrer { url, host }
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
    fn relative_locations_are_made_absolute() {
        let l = link("http", Some(&hv("sho.rt")), &"/x".parse().unwrap());
        let d = destination(Some(&hv("/landing?y=1")), &l).unwrap();
        assert_eq!(d.url, "http://sho.rt/landing?y=1");
        let d = destination(Some(&hv("https://Example.com/p")), &l).unwrap();
        assert_eq!(d.host.as_deref(), Some("example.com"));
    }

    #[test]
    fn no_referer_is_direct() {
        assert_eq!(referrer(None).host, "direct");
        let r = referrer(Some(&hv("https://news.ycombinator.com/item?id=1")));
        assert_eq!(r.host, "news.ycombinator.com");
        assert_eq!(
            referrer(Some(&hv("android-app://com.slack"))).host,
            "com.slack"
        );
    }

    #[test]
    fn invalid_utf8_headers_are_kept_lossily() {
        let v = HeaderValue::from_bytes(b"https://x.example/\xff").unwrap();
        assert!(
            referrer(Some(&v))
                .url
                .unwrap()
                .starts_with("https://x.example/")
        );
    }
}
