//! The admin listener: health, metrics and recent events, on its own address, never
//! on the proxy's.
//!
//! It is a second Pingora service in the same server, so it starts, stops and
//! upgrades with the proxy. Routes other than the health checks (and `/metrics` when
//! `admin.metrics_public`) need `Authorization: Bearer <admin.token>`, compared in
//! constant time; without a token configured they are refused.

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use std::sync::Arc;

use crate::config::AdminConfig;
use crate::metrics::Metrics;
use crate::queue::Queue;

pub struct Admin {
    cfg: AdminConfig,
    metrics: Arc<Metrics>,
    queue: Queue,
}

impl Admin {
    pub fn new(cfg: AdminConfig, metrics: Arc<Metrics>, queue: Queue) -> Admin {
        Admin {
            cfg,
            metrics,
            queue,
        }
    }

    fn authorized(&self, session: &ServerSession) -> bool {
        let Some(token) = &self.cfg.token else {
            return false;
        };
        let given = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        constant_time_eq(given.as_bytes(), token.expose().as_bytes())
    }

    fn events(&self, query: Option<&str>) -> Response<Vec<u8>> {
        let limit = query
            .and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "limit")
                    .and_then(|(_, v)| v.parse::<usize>().ok())
            })
            .unwrap_or(100)
            .min(10_000);
        match self.queue.tail(limit) {
            Ok(events) => {
                let mut body = Vec::new();
                for e in events {
                    body.extend_from_slice(e.bytes());
                    body.push(b'\n');
                }
                respond(StatusCode::OK, "application/x-ndjson", body)
            }
            Err(e) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "queue_error",
                &e.to_string(),
            ),
        }
    }
}

/// Compares without stopping at the first difference, so the time taken does not
/// tell how much of a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(body)
        .unwrap_or_default()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Vec<u8>> {
    let body = serde_json::json!({ "error": code, "message": message });
    respond(status, "application/json", body.to_string().into_bytes())
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let path = req.uri.path().to_string();
        let query = req.uri.query().map(str::to_string);
        let get = req.method == http::Method::GET;
        match (get, path.as_str()) {
            (true, "/healthz") => respond(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            (true, "/readyz") => match self.queue.size_on_disk() {
                Ok(_) => respond(StatusCode::OK, "text/plain", b"ready\n".to_vec()),
                Err(e) => error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "queue_error",
                    &e.to_string(),
                ),
            },
            (true, "/metrics") if self.cfg.metrics_public || self.authorized(session) => respond(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.metrics.render().into_bytes(),
            ),
            (true, "/metrics" | "/api/v1/events") if !self.authorized(session) => error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send Authorization: Bearer <admin.token>",
            ),
            (true, "/api/v1/events") => self.events(query.as_deref()),
            _ => error(StatusCode::NOT_FOUND, "not_found", "no such route"),
        }
    }
}
