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
use crate::deliver::log::DeliveryLog;
use crate::deliver::webhook::Webhook;
use crate::metrics::Metrics;
use crate::queue::Queue;

pub struct Admin {
    cfg: AdminConfig,
    metrics: Arc<Metrics>,
    queue: Queue,
    webhooks: Vec<Arc<Webhook>>,
    log: DeliveryLog,
}

impl Admin {
    pub fn new(
        cfg: AdminConfig,
        metrics: Arc<Metrics>,
        queue: Queue,
        webhooks: Vec<Arc<Webhook>>,
        log: DeliveryLog,
    ) -> Admin {
        Admin {
            cfg,
            metrics,
            queue,
            webhooks,
            log,
        }
    }

    fn webhook(&self, id: &str) -> Option<&Arc<Webhook>> {
        self.webhooks.iter().find(|w| w.cfg.id == id)
    }

    fn list_webhooks(&self) -> Response<Vec<u8>> {
        let head = self.queue.head();
        let list: Vec<_> = self
            .webhooks
            .iter()
            .map(|w| {
                let cursor = self
                    .queue
                    .cursor(&w.consumer)
                    .ok()
                    .flatten()
                    .unwrap_or(head);
                serde_json::json!({
                    "id": w.cfg.id,
                    "url": crate::redact::url(&w.cfg.url),
                    "format": w.cfg.format.as_str(),
                    "health": w.health(),
                    "lag": head.saturating_sub(cursor),
                    "dead_letters": w.dead_letters().ok(),
                    "retries": w.retries().ok(),
                })
            })
            .collect();
        json(StatusCode::OK, &serde_json::json!({ "webhooks": list }))
    }

    fn webhook_route(
        &self,
        method: &http::Method,
        rest: &str,
        query: Option<&str>,
    ) -> Response<Vec<u8>> {
        let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(w) = self.webhook(id) else {
            return error(
                StatusCode::NOT_FOUND,
                "unknown_webhook",
                "no running webhook has that id",
            );
        };
        match (method.as_str(), action) {
            ("GET", "deliveries") => {
                let limit = param(query, "limit").unwrap_or(100).min(10_000) as usize;
                let since = param(query, "since_ms").unwrap_or(0);
                let list = self.log.list(id, since, limit);
                let ok = list.iter().filter(|a| a.answer.error.is_none()).count();
                let rate = if list.is_empty() {
                    None
                } else {
                    Some(ok as f64 / list.len() as f64)
                };
                json(
                    StatusCode::OK,
                    &serde_json::json!({ "deliveries": list, "success_rate": rate }),
                )
            }
            ("POST", "reactivate") => {
                w.reactivate();
                json(
                    StatusCode::OK,
                    &serde_json::json!({ "id": id, "health": w.health() }),
                )
            }
            ("POST", "dead-letters/replay") => match w.replay_dead() {
                Ok(n) => json(
                    StatusCode::OK,
                    &serde_json::json!({ "id": id, "replayed": n }),
                ),
                Err(e) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "queue_error",
                    &e.to_string(),
                ),
            },
            _ => error(StatusCode::NOT_FOUND, "not_found", "no such route"),
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

fn param(query: Option<&str>, name: &str) -> Option<u64> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.parse().ok())
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response<Vec<u8>> {
    respond(status, "application/json", v.to_string().into_bytes())
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
        let method = req.method.clone();
        let get = method == http::Method::GET;
        if let Some(rest) = path.strip_prefix("/api/v1/webhooks") {
            if !self.authorized(session) {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send Authorization: Bearer <admin.token>",
                );
            }
            return match rest.strip_prefix('/') {
                None if get && rest.is_empty() => self.list_webhooks(),
                Some(rest) if !rest.is_empty() => {
                    self.webhook_route(&method, rest, query.as_deref())
                }
                _ => error(StatusCode::NOT_FOUND, "not_found", "no such route"),
            };
        }
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
