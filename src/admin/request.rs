//! An admin request as the routes read it: method, path segments, query parameters,
//! and a body read only by the routes that take one, within a size and a time limit.

use pingora::protocols::http::ServerSession;
use std::time::Duration;

/// The largest body a route reads.
pub const MAX_BODY: usize = 64 * 1024;
/// The longest a client may take to send its body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Request {
    pub method: http::Method,
    /// The path below `/api/v1/`, split at `/` (empty for other paths).
    pub segments: Vec<String>,
    pub path: String,
    query: Vec<(String, String)>,
}

/// Why a body could not be read.
pub enum BodyError {
    TooLarge,
    Unreadable(String),
}

impl Request {
    pub fn of(session: &ServerSession) -> Request {
        let req = session.req_header();
        let path = req.uri.path().to_string();
        let segments = path
            .strip_prefix("/api/v1/")
            .map(|rest| rest.split('/').map(str::to_string).collect())
            .unwrap_or_default();
        let query = req
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Request {
            method: req.method.clone(),
            segments,
            path,
            query,
        }
    }

    /// The query parameter `name`, if given.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A time parameter, as the API takes times everywhere (`times.rs`): `Ok(None)`
    /// when absent. An offset's `+` arrives as a space when the client did not encode
    /// it (`since=2026-12-04T10:00:00+01:00`): read it as the `+` it was.
    pub fn time(&self, name: &str) -> Result<Option<u64>, String> {
        let Some(v) = self.param(name) else {
            return Ok(None);
        };
        let mut text = v.to_string();
        if text.len() > 19 && text.as_bytes()[text.len() - 6] == b' ' {
            let at = text.len() - 6;
            text.replace_range(at..=at, "+");
        }
        super::times::parse_text(&text)
            .map(Some)
            .map_err(|e| format!("{name}: {e}"))
    }

    /// A numeric query parameter: `Ok(None)` when absent, an error naming it when not
    /// a number.
    pub fn number(&self, name: &str) -> Result<Option<u64>, String> {
        match self.param(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("{name}={v:?} is not a whole number")),
        }
    }
}

/// A request header's value, when it is there and text.
pub fn header<'a>(session: &'a ServerSession, name: &str) -> Option<&'a str> {
    session
        .req_header()
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
}

/// Reads the request body, at most [`MAX_BODY`] bytes within [`BODY_TIMEOUT`].
pub async fn body(session: &mut ServerSession) -> Result<Vec<u8>, BodyError> {
    session.set_read_timeout(Some(BODY_TIMEOUT));
    let mut out = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if out.len() + chunk.len() > MAX_BODY {
                    return Err(BodyError::TooLarge);
                }
                out.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(BodyError::Unreadable(e.to_string())),
        }
    }
}
