//! What a request carried, as the delivery log keeps it: the method, the URL and the
//! headers as they left clicktap, the body's size and SHA-256, and the body itself
//! while it is within `delivery.log_body_max_bytes`.
//!
//! Secrets are taken out here, before anything is stored: an `Authorization` value
//! keeps its scheme (`Bearer [redacted]`), a signature its version (`v1,[redacted]`),
//! the query its parameter names (`?api_key=[redacted]`), and any header marked
//! sensitive or named like a credential (`key`, `token`, `secret`, ...) shows only
//! `[redacted]`. The log, and so the admin API and the dashboard, never holds a secret.

use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::redact::REDACTED;

/// A request as sent, secrets redacted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sent {
    pub method: String,
    /// Without userinfo; query values redacted, their names kept.
    pub url: String,
    /// Header names (lower case) and values as sent; credentials redacted.
    pub headers: BTreeMap<String, String>,
    pub body_bytes: u64,
    /// Hex SHA-256 of the body as sent.
    pub body_sha256: String,
    /// The body, when it is at most `delivery.log_body_max_bytes` (and that is not 0).
    #[serde(default)]
    pub body: Option<String>,
}

impl Sent {
    /// What the log keeps of a request built to be sent.
    pub fn of(req: &reqwest::Request, body: &[u8], keep_body: usize) -> Sent {
        let mut headers = BTreeMap::new();
        add(&mut headers, req.headers());
        // Added by the connection, not the request builder: shown as the receiver gets them.
        headers
            .entry("content-length".into())
            .or_insert_with(|| body.len().to_string());
        if let Some(host) = req.url().host_str() {
            let host = match req.url().port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            };
            headers.entry("host".into()).or_insert(host);
        }
        // The client's defaults (`tls::client_builder`, reqwest's `accept`), added when
        // the request is sent unless it has its own.
        headers
            .entry("user-agent".into())
            .or_insert_with(|| crate::tls::USER_AGENT.into());
        headers
            .entry("accept".into())
            .or_insert_with(|| "*/*".into());
        Sent {
            method: req.method().to_string(),
            url: crate::redact::url_with_query_names(req.url()),
            headers,
            body_bytes: body.len() as u64,
            body_sha256: crate::hex::sha256(body),
            body: (keep_body > 0 && body.len() <= keep_body).then(|| text(body)),
        }
    }

    /// Bytes of it in the log's JSON, about: for the recorder's estimate of a value.
    pub fn size(&self) -> usize {
        64 + self.url.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + 6)
                .sum::<usize>()
            + self.body.as_ref().map_or(0, String::len)
    }
}

/// A body as text: checked as UTF-8 first (quick), replacing what is not only when it
/// is not.
fn text(body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

fn add(out: &mut BTreeMap<String, String>, headers: &HeaderMap) {
    for (name, value) in headers {
        let shown = shown(name.as_str(), value);
        out.entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&shown);
            })
            .or_insert(shown);
    }
}

/// Names that carry credentials in the formats and in receivers' conventions (but
/// `idempotency-key`, the message id clicktap sends with every request).
fn credential_name(name: &str) -> bool {
    name != "idempotency-key"
        && [
            "key",
            "token",
            "secret",
            "password",
            "auth",
            "cookie",
            "credential",
            "signature",
        ]
        .iter()
        .any(|w| name.contains(w))
}

/// A header's value as the log shows it.
fn shown(name: &str, value: &HeaderValue) -> String {
    match name {
        "authorization" | "proxy-authorization" => {
            let scheme = value
                .to_str()
                .ok()
                .and_then(|v| v.split_whitespace().next())
                .filter(|s| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or("");
            format!("{scheme} {REDACTED}").trim_start().to_string()
        }
        // `v1,<base64> v1a,<base64>`: each signature's version, never the signature.
        "webhook-signature" => value
            .to_str()
            .unwrap_or("")
            .split_whitespace()
            .map(|s| match s.split_once(',') {
                Some((v, _)) => format!("{v},{REDACTED}"),
                None => REDACTED.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ if value.is_sensitive() || credential_name(name) => REDACTED.into(),
        _ => value
            .to_str()
            .map_or_else(|_| "[not text]".into(), str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_their_kind_kept() {
        let client = crate::tls::client_builder().build().unwrap();
        let req = client
            .post("https://hooks.example:8443/in?api_key=s3cr3t&x=1")
            .bearer_auth("tok3n")
            .header("webhook-signature", "v1,abc= v1a,def=")
            .header("x-api-key", "k3y")
            .header("x-plain", "hello")
            .header("idempotency-key", "msg_1")
            .body("{}")
            .build()
            .unwrap();
        let s = Sent::of(&req, b"{}", 4096);
        let json = serde_json::to_string(&s).unwrap();
        for secret in ["s3cr3t", "tok3n", "abc=", "def=", "k3y"] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
        assert_eq!(s.headers["authorization"], "Bearer [redacted]");
        assert_eq!(
            s.headers["webhook-signature"],
            "v1,[redacted] v1a,[redacted]"
        );
        assert_eq!(s.headers["x-api-key"], REDACTED);
        assert_eq!(s.headers["x-plain"], "hello");
        assert_eq!(s.headers["idempotency-key"], "msg_1", "an id, not a secret");
        assert_eq!(s.headers["host"], "hooks.example:8443");
        assert_eq!(
            s.url,
            "https://hooks.example:8443/in?api_key=[redacted]&x=[redacted]"
        );
        let with_userinfo = url::Url::parse("https://user:pw@hooks.example/in").unwrap();
        assert_eq!(
            crate::redact::url_with_query_names(&with_userinfo),
            "https://hooks.example/in"
        );
        assert_eq!(s.body.as_deref(), Some("{}"));
        assert_eq!(s.body_bytes, 2);
        assert_eq!(
            s.body_sha256,
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(Sent::of(&req, b"{}", 1).body, None, "over the bound");
        assert_eq!(Sent::of(&req, b"{}", 0).body, None, "0: never");
    }
}
