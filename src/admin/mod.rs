//! The admin listener: health, metrics, the admin API and the dashboard, on its own
//! address, never on the proxy's.
//!
//! It is a second Pingora service in the same server, so it starts, stops and
//! upgrades with the proxy. Routes other than the health checks, the API's OpenAPI
//! description, the dashboard's assets and sign-in (and `/metrics` when
//! `admin.metrics_public`) need `Authorization: Bearer <admin.token>`, compared in
//! constant time, or the cookie of a dashboard session (`session.rs`), which for a
//! request that changes something must come from the dashboard's own page; without a
//! token configured they are refused; a wrong token is slowed per client address,
//! logged without itself and counted (`throttle.rs`). The token is read from the
//! configuration in use, so a reload changes it. `HEAD` is answered as `GET` without
//! the body (`serve.rs`). Bodies are read only by the routes that take one, up to
//! [`request::MAX_BODY`]. Every answer is JSON, errors as `{"error": code, "message"}`
//! (`answer.rs`); the routes are described in `openapi.json`.

mod answer;
mod deliveries;
mod messages;
mod page;
mod reload;
mod request;
mod serve;
mod session;
mod stats;
mod status;
mod throttle;
pub mod times;
mod webhooks;

pub use answer::constant_time_eq;

use http::{Method, StatusCode};
use pingora::protocols::http::ServerSession;
use std::sync::{Arc, OnceLock};

use crate::config::AdminConfig;
use crate::deliver::Handle;
use crate::deliver::event_query::EventQuery;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::queue::Queue;
use answer::{Answer, error, method_not_allowed, not_found, queue_error, respond};
use request::{BodyError, Request};

/// The API's OpenAPI 3.1 description, served at `/api/v1/openapi.json` without a token;
/// a test checks the running API against it (schemathesis).
const OPENAPI: &str = include_str!("openapi.json");

pub struct Admin {
    live: Arc<Live>,
    metrics: Arc<Metrics>,
    ready: Arc<OnceLock<Ready>>,
    sessions: session::Sessions,
    throttle: throttle::Throttle,
}

/// What the API needs of the running stages, there once the queue is open (during an
/// upgrade, after the old process let go of it; until then those routes answer 503).
pub struct Ready {
    pub queue: Queue,
    pub delivery: Handle,
    pub sinks: crate::sink::SinksHandle,
}

impl Admin {
    pub fn new(live: Arc<Live>, metrics: Arc<Metrics>, ready: Arc<OnceLock<Ready>>) -> Admin {
        Admin {
            live,
            metrics,
            ready,
            sessions: session::Sessions::default(),
            throttle: throttle::Throttle::default(),
        }
    }
}

impl Ready {
    /// `GET /api/v1/events`: the newest events that match the filters (`since`,
    /// `until`, `link`, `type`, `kind`), oldest first, as JSON lines; with `meta=true`
    /// each line has the event's `seq` and `message_ids` in front.
    /// A filtered listing may read up to `event_lines::SCAN_MAX` events: it runs among
    /// delivery's threads for blocking work, never on the admin listener's.
    async fn events(&self, live: &Live, req: &Request) -> Answer {
        let limit = match req.number("limit") {
            Ok(n) => n.unwrap_or(100).min(deliveries::MAX_LIMIT) as usize,
            Err(e) => return answer::bad_request(&e),
        };
        let (query, meta) = match event_query(req) {
            Ok(q) => q,
            Err(e) => return answer::bad_request(&e),
        };
        let selected = if query.is_empty() {
            Some(self.queue.tail(limit))
        } else {
            let queue = self.queue.clone();
            webhooks::off_admin(&self.delivery, move || {
                crate::deliver::event_lines::select(&queue, &query, limit)
            })
            .await
        };
        let Some(selected) = selected else {
            return webhooks::not_running();
        };
        let loaded = live.loaded();
        match selected {
            Ok(events) => {
                let mut body = Vec::new();
                for e in events {
                    if meta {
                        body.extend(crate::deliver::event_lines::annotated(
                            &e,
                            &loaded.cfg.webhooks,
                            &loaded.cfg.links,
                        ));
                    } else {
                        body.extend_from_slice(e.bytes());
                    }
                    body.push(b'\n');
                }
                respond(StatusCode::OK, "application/x-ndjson", body)
            }
            Err(e) => queue_error(&e),
        }
    }

    /// `GET /api/v1/events/{seq}`: one event as stored, while the queue holds it (with
    /// `meta=true`, its `seq` and `message_ids` in front).
    fn event(&self, live: &Live, req: &Request, seq: &str) -> Answer {
        let meta = match event_query(req) {
            Ok((_, meta)) => meta,
            Err(e) => return answer::bad_request(&e),
        };
        let Ok(seq) = seq.parse::<u64>() else {
            return answer::bad_request(&format!("{seq:?} is not an event's sequence number"));
        };
        match self.queue.get(seq) {
            Ok(Some(e)) if meta => {
                let loaded = live.loaded();
                let line = crate::deliver::event_lines::annotated(
                    &e,
                    &loaded.cfg.webhooks,
                    &loaded.cfg.links,
                );
                respond(StatusCode::OK, "application/json", line)
            }
            Ok(Some(e)) => respond(StatusCode::OK, "application/json", e.bytes().to_vec()),
            Ok(None) => error(
                StatusCode::NOT_FOUND,
                "unknown_event",
                "the queue holds no event with that sequence number (never stored, or removed by retention)",
            ),
            Err(e) => queue_error(&e),
        }
    }

    /// The `/api/v1/` routes that need the queue, for an authorized request.
    async fn api(&self, live: &Live, session: &mut ServerSession, req: &Request) -> Answer {
        let takes_body = matches!(req.method, Method::POST | Method::DELETE | Method::PUT);
        let body = if takes_body {
            match request::body(session).await {
                Ok(b) => Some(b),
                Err(BodyError::TooLarge) => {
                    session.set_keepalive(None);
                    return error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        &format!("bodies are at most {} bytes", request::MAX_BODY),
                    );
                }
                Err(BodyError::Unreadable(why)) => {
                    session.set_keepalive(None);
                    return answer::bad_request(&format!("the body could not be read: {why}"));
                }
            }
        } else {
            None
        };
        let seg: Vec<&str> = req.segments.iter().map(String::as_str).collect();
        let get = req.method == Method::GET;
        match seg.as_slice() {
            ["status"] if get => status::status(live, &self.delivery, &self.sinks, &self.queue),
            ["events"] if get => self.events(live, req).await,
            ["events", seq] if get => self.event(live, req, seq),
            ["events", _] => method_not_allowed("GET"),
            ["stats"] if get => stats::stats(live.loaded().cfg.stats.enabled, &self.queue, req),
            ["deliveries"] if get => deliveries::list(&self.delivery, req, None),
            ["webhooks"] if get => webhooks::list(&self.delivery, &self.queue),
            ["status" | "events" | "stats" | "deliveries" | "webhooks"] => {
                method_not_allowed("GET")
            }
            ["reload"] if req.method == Method::POST => reload::reload(live),
            ["reload"] => method_not_allowed("POST"),
            ["webhooks", id, ..] if !id.is_empty() => {
                webhooks::route(
                    &self.delivery,
                    &self.queue,
                    req,
                    id,
                    &req.segments[2..],
                    body,
                )
                .await
            }
            _ => not_found(),
        }
    }
}

/// The filters of `GET /api/v1/events`, and whether `meta=true`.
fn event_query(req: &Request) -> Result<(EventQuery, bool), String> {
    // A reversed range selects nothing, as in the delivery log's listing.
    let (since_ms, until_ms) = (req.time("since")?, req.time("until")?);
    let meta = match req.param("meta") {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => return Err(format!("meta={v:?}: give true or false")),
    };
    Ok((
        EventQuery {
            since_ms,
            until_ms,
            link: req.param("link").map(str::to_string),
            event_type: req.param("type").map(EventQuery::event_type).transpose()?,
            kind: req.param("kind").map(EventQuery::kind).transpose()?,
        },
        meta,
    ))
}

/// How a request proved it may use the API.
enum Auth {
    Bearer,
    Cookie,
    None,
}

fn authorized(session: &ServerSession, cfg: &AdminConfig) -> bool {
    let Some(token) = &cfg.token else {
        return false;
    };
    let given = request::header(session, "authorization")
        .and_then(bearer)
        .unwrap_or("");
    constant_time_eq(given.as_bytes(), token.expose().as_bytes())
}

/// The token of an `Authorization: Bearer <token>` value. The scheme's name is
/// case-insensitive (RFC 9110, 11.1): `bearer` and `BEARER` are `Bearer`.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

/// The queue is not open yet: an upgrade waits for the old process to release it.
fn not_yet() -> Answer {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "starting: the queue is not open yet (an upgrade waits for the previous process to release it)",
    )
}

fn unauthorized() -> Answer {
    error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "send Authorization: Bearer <admin.token>",
    )
}

impl Admin {
    /// 401 for a request without a valid token or session. A token that was given and
    /// is wrong is counted, logged (never itself) and answered after a wait that grows
    /// with the recent failures from the same address.
    async fn refused(&self, session: &ServerSession, path: &str) -> Answer {
        if request::header(session, "authorization").is_some() {
            let peer = session.client_addr();
            let ip = peer
                .and_then(|a| a.as_inet())
                .map(|a| a.ip().to_canonical())
                .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
            let (delay, recent) = self.throttle.failed(ip);
            self.metrics.admin_auth_failures.inc();
            tracing::warn!(
                peer = %ip,
                path,
                recent,
                delay_ms = delay.as_millis() as u64,
                "admin API: wrong token refused"
            );
            tokio::time::sleep(delay).await;
        }
        unauthorized()
    }

    /// The answer to one request whose head has been read.
    async fn response(&self, session: &mut ServerSession) -> Answer {
        let req = Request::of(session);
        let loaded = self.live.loaded();
        let Some(cfg) = loaded.cfg.admin.as_ref() else {
            return not_found();
        };
        let get = req.method == Method::GET;
        match req.path.as_str() {
            "/healthz" if get => return respond(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            "/readyz" if get => {
                return match self.ready.get().map(|r| r.queue.size_on_disk()) {
                    Some(Ok(_)) => respond(StatusCode::OK, "text/plain", b"ready\n".to_vec()),
                    Some(Err(e)) => queue_error(&e),
                    None => not_yet(),
                };
            }
            "/metrics" if get => {
                return if cfg.metrics_public || authorized(session, cfg) {
                    respond(
                        StatusCode::OK,
                        "text/plain; version=0.0.4",
                        self.metrics.render().into_bytes(),
                    )
                } else {
                    self.refused(session, &req.path).await
                };
            }
            "/healthz" | "/readyz" | "/metrics" => return method_not_allowed("GET"),
            _ => {}
        }
        if req.segments == ["openapi.json"] {
            return if get {
                respond(
                    StatusCode::OK,
                    "application/json",
                    OPENAPI.as_bytes().to_vec(),
                )
            } else {
                method_not_allowed("GET")
            };
        }
        if let Some(a) = page::route(session, &req.path, cfg, &self.sessions).await {
            return a;
        }
        if req.segments.is_empty() {
            return not_found();
        }
        let auth = if authorized(session, cfg) {
            Auth::Bearer
        } else if page::session_of(session, cfg, &self.sessions).is_some() {
            Auth::Cookie
        } else {
            Auth::None
        };
        match auth {
            Auth::None => return self.refused(session, &req.path).await,
            Auth::Cookie if !get && !page::from_own_page(session) => return page::cross_site(),
            Auth::Cookie | Auth::Bearer => {}
        }
        match self.ready.get() {
            Some(ready) => ready.api(&self.live, session, &req).await,
            None => not_yet(),
        }
    }
}
