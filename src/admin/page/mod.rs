//! The dashboard: one HTML page, one script and one style sheet, built into the
//! binary so that it works on a network with no way out, and the routes that sign an
//! operator in and out (`session.rs` keeps the sessions).
//!
//! The page is the same for everyone; what it shows comes from the admin API, which
//! answers only a signed-in browser. Every asset goes out with a Content-Security-Policy
//! that allows nothing but this origin (no inline script, no other host), `nosniff`
//! and `X-Frame-Options: DENY`. Sign-in is a plain form post answered with a redirect,
//! so it works before the script runs and the token never passes through script.

use http::{Method, StatusCode};
use pingora::protocols::http::ServerSession;

use super::answer::{Answer, method_not_allowed};
use super::request::{self, header};
use super::session::{self, Sessions};
use crate::config::AdminConfig;

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");

const CSP: &str = "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The dashboard's routes: `GET /`, `/app.js`, `/app.css`, `POST /login`, `/logout`.
/// `None` for any other path.
pub async fn route(
    session: &mut ServerSession,
    path: &str,
    cfg: &AdminConfig,
    sessions: &Sessions,
) -> Option<Answer> {
    let method = session.req_header().method.clone();
    let get = method == Method::GET;
    let post = method == Method::POST;
    Some(match path {
        "/" | "/index.html" if get => asset("text/html; charset=utf-8", INDEX),
        "/app.js" if get => asset("text/javascript; charset=utf-8", SCRIPT),
        "/app.css" if get => asset("text/css; charset=utf-8", STYLE),
        "/" | "/index.html" | "/app.js" | "/app.css" => method_not_allowed("GET"),
        "/login" if post => sign_in(session, cfg, sessions).await,
        "/logout" if post => sign_out(session, sessions),
        "/login" | "/logout" => method_not_allowed("POST"),
        _ => return None,
    })
}

fn secured(mut a: Answer) -> Answer {
    let h = a.headers_mut();
    for (k, v) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        h.insert(k, http::HeaderValue::from_static(v));
    }
    a
}

fn asset(content_type: &str, body: &str) -> Answer {
    secured(super::answer::respond(
        StatusCode::OK,
        content_type,
        body.as_bytes().to_vec(),
    ))
}

/// A `303 See Other` to `location`, with a cookie to set when there is one.
fn see_other(location: &'static str, cookie: Option<String>) -> Answer {
    let mut a = super::answer::respond(StatusCode::SEE_OTHER, "text/plain", Vec::new());
    let h = a.headers_mut();
    h.insert(
        http::header::LOCATION,
        http::HeaderValue::from_static(location),
    );
    if let Some(c) = cookie.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
        h.insert(http::header::SET_COOKIE, c);
    }
    secured(a)
}

/// Whether the request comes from this listener's own pages (`session::same_origin`).
pub fn from_own_page(session: &ServerSession) -> bool {
    session::same_origin(
        header(session, "sec-fetch-site"),
        header(session, "origin"),
        header(session, "host"),
    )
}

/// The session the request's cookie names, if it is live under the token in force.
pub fn session_of<'a>(
    session: &'a ServerSession,
    cfg: &AdminConfig,
    sessions: &Sessions,
) -> Option<&'a str> {
    let token = cfg.token.as_ref()?;
    session::cookie(header(session, "cookie")).filter(|id| sessions.valid(id, token.expose()))
}

pub fn cross_site() -> Answer {
    secured(super::answer::error(
        StatusCode::FORBIDDEN,
        "cross_site",
        "a request with the session cookie must come from the dashboard's own page",
    ))
}

/// `POST /login`, a form with `token`, from the dashboard's page or from a client that
/// is not a browser (`session::sign_in_allowed`): on the right token a session cookie
/// and back to the page; on a wrong one, after a delay that grows with recent failures, back to
/// the page with `?signin=failed`. The token given is never logged.
async fn sign_in(session: &mut ServerSession, cfg: &AdminConfig, sessions: &Sessions) -> Answer {
    let allowed = session::sign_in_allowed(
        header(session, "sec-fetch-site"),
        header(session, "origin"),
        header(session, "host"),
    );
    if !allowed {
        return secured(super::answer::error(
            StatusCode::FORBIDDEN,
            "cross_site",
            "a sign-in must come from the dashboard's own page: this one's Origin or Sec-Fetch-Site names another site",
        ));
    }
    let body = match request::body(session).await {
        Ok(b) => b,
        Err(_) => {
            session.set_keepalive(None);
            return super::answer::bad_request("the sign-in form could not be read");
        }
    };
    let given = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    match &cfg.token {
        Some(token) if super::constant_time_eq(given.as_bytes(), token.expose().as_bytes()) => {
            let id = sessions.open(token.expose());
            tracing::info!(sessions = sessions.count(), "dashboard sign-in");
            see_other("/", Some(session::set_cookie(&id)))
        }
        _ => {
            let (delay, failures) = sessions.failed();
            tracing::warn!(
                failures,
                delay_ms = delay.as_millis() as u64,
                "dashboard sign-in refused: wrong token"
            );
            tokio::time::sleep(delay).await;
            see_other("/?signin=failed", None)
        }
    }
}

/// `POST /logout`: the session ended and the cookie cleared.
fn sign_out(session: &ServerSession, sessions: &Sessions) -> Answer {
    if !from_own_page(session) {
        return cross_site();
    }
    if let Some(id) = session::cookie(header(session, "cookie")) {
        sessions.close(id);
    }
    see_other("/", Some(session::clear_cookie()))
}
