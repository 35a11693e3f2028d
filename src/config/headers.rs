//! A webhook's extra static `headers`, refused where they would contradict what
//! clicktap itself sends.
//!
//! A request carries the same header twice when a user header repeats one of
//! clicktap's: receivers then read either value, or reject the request (two
//! `Content-Length`s are a smuggling signature; a second `webhook-signature` or
//! `Authorization` silently replaces the real one for some servers and not others).
//! `User-Agent` is the one exception: a user value replaces clicktap's default.

use http::{HeaderName, HeaderValue};

use super::problems::Problems;
use super::values::Headers;
use super::webhook::Format;

/// Headers delivery sets on every request, or that belong to the connection.
const CLICKTAP_HEADERS: [&str; 7] = [
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "authorization",
    "idempotency-key",
];

/// The Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`) and any later ones of the same family.
const STANDARD_WEBHOOKS_PREFIX: &str = "webhook-";

pub(super) fn headers(
    headers: &Headers,
    format: Option<Format>,
    key: &str,
    p: &mut Problems,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    for (name, value) in headers {
        let k = format!("{key}.headers.{name}");
        let parsed = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        );
        let (n, v) = match parsed {
            (Ok(n), Ok(v)) => (n, v),
            (Err(_), _) => {
                p.push(k, "is not a valid header name");
                continue;
            }
            (_, Err(_)) => {
                p.push(k, "has a value that is not a valid header value");
                continue;
            }
        };
        // HeaderName is lower case whatever the file wrote.
        let lower = n.as_str();
        if CLICKTAP_HEADERS.contains(&lower) || lower.starts_with(STANDARD_WEBHOOKS_PREFIX) {
            p.push(k, format!("is set by clicktap itself{}", hint(lower)));
        } else if let Some(f) = format
            && f.own_headers().contains(&lower)
        {
            p.push(
                k,
                format!(
                    "is set by the {} format itself (from secret and the event)",
                    f.as_str()
                ),
            );
        } else {
            out.push((n, v));
        }
    }
    out
}

/// Where the operator can set what they were after.
fn hint(lower: &str) -> &'static str {
    match lower {
        "authorization" => "; use [webhooks.auth]",
        h if h.starts_with(STANDARD_WEBHOOKS_PREFIX) => " (Standard Webhooks); set secret to sign",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::formats::fixtures;

    /// The list that refuses user headers is the list the formats render: a format
    /// that gains a header must name it in `Format::own_headers`.
    #[test]
    fn each_format_names_every_header_it_renders() {
        let event = fixtures::chrome_mac_london();
        for format in Format::ALL {
            let webhook = fixtures::webhook(format);
            let (_, out) = fixtures::render_one(format, &webhook, &event, None);
            for (name, _) in &out.headers {
                assert!(
                    format.own_headers().contains(&name.as_str()),
                    "{} renders {name} without naming it",
                    format.as_str()
                );
            }
            assert_eq!(out.headers.len(), format.own_headers().len());
        }
    }

    #[test]
    fn user_agent_and_other_headers_pass_whatever_their_case() {
        let mut p = Problems::new(std::path::Path::new("t.toml"));
        let hs: Headers = [
            ("user-agent", "acme/2"),
            ("X-Team", "growth"),
            ("CONTENT-type", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let kept = headers(&hs, Some(Format::Native), "webhooks[0]", &mut p);
        let names: Vec<&str> = kept.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-team", "user-agent"]);
        assert_eq!(p.list.len(), 1);
        assert_eq!(p.list[0].key, "webhooks[0].headers.CONTENT-type");
    }
}
