//! A relay's admin listener (`[admin]`): `/healthz`, `/readyz`, `/metrics` and
//! `/api/v1/status`, nothing else. A relay has no queue, delivery log or webhooks API
//! of its own, so it does not run the sidecar's admin service; this answers one request
//! per connection, reads a head of at most [`MAX_HEAD`] bytes within [`READ_TIMEOUT`],
//! and closes. `/api/v1/status` needs `Authorization: Bearer <admin.token>`, and
//! `/metrics` too unless `admin.metrics_public`, as on a sidecar.

use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::webhook::Webhook;
use crate::config::{AdminConfig, RelayConfig};
use crate::metrics::Metrics;

const MAX_HEAD: usize = 8 << 10;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Admin {
    pub cfg: AdminConfig,
    pub metrics: Arc<Metrics>,
    pub webhooks: Vec<Arc<Webhook>>,
    pub relay: Arc<RelayConfig>,
    /// The configuration file and its SHA-256.
    pub config: (String, String),
    pub started: std::time::Instant,
}

impl Admin {
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(READ_TIMEOUT * 2, me.answer(conn)).await;
            });
        }
    }

    async fn answer(&self, mut conn: TcpStream) {
        let mut buf = vec![0u8; MAX_HEAD];
        let mut len = 0;
        let (status, content_type, body) = loop {
            let n = match tokio::time::timeout(READ_TIMEOUT, conn.read(&mut buf[len..])).await {
                Ok(Ok(n)) if n > 0 => n,
                _ => return,
            };
            len += n;
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf[..len]) {
                Ok(httparse::Status::Complete(_)) => break self.route(&req),
                Ok(httparse::Status::Partial) if len < MAX_HEAD => continue,
                _ => break (400, "text/plain", b"bad request\n".to_vec()),
            }
        };
        let head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
            reason(status),
            body.len()
        );
        let _ = conn.write_all(head.as_bytes()).await;
        let _ = conn.write_all(&body).await;
        let _ = conn.shutdown().await;
    }

    fn route(&self, req: &httparse::Request<'_, '_>) -> (u16, &'static str, Vec<u8>) {
        let path = req.path.unwrap_or("").split('?').next().unwrap_or("");
        if req.method != Some("GET") {
            return (405, "text/plain", b"GET only\n".to_vec());
        }
        match path {
            "/healthz" => (200, "text/plain", b"ok\n".to_vec()),
            "/readyz" => {
                let waiting: Vec<&str> = self
                    .webhooks
                    .iter()
                    .filter(|w| !w.consuming.load(std::sync::atomic::Ordering::Relaxed))
                    .map(|w| w.cfg.id.as_str())
                    .collect();
                if waiting.is_empty() {
                    (200, "text/plain", b"ready\n".to_vec())
                } else {
                    let body = format!("not consuming: {}\n", waiting.join(", "));
                    (503, "text/plain", body.into_bytes())
                }
            }
            "/api/v1/status" => {
                if !self.authorized(req) {
                    self.metrics.admin_auth_failures.inc();
                    return (
                        401,
                        "text/plain",
                        b"send Authorization: Bearer <admin.token>\n".to_vec(),
                    );
                }
                (
                    200,
                    "application/json",
                    self.status().to_string().into_bytes(),
                )
            }
            "/metrics" => {
                if self.cfg.metrics_public || self.authorized(req) {
                    (
                        200,
                        "text/plain; version=0.0.4",
                        self.metrics.render().into_bytes(),
                    )
                } else {
                    self.metrics.admin_auth_failures.inc();
                    (
                        401,
                        "text/plain",
                        b"send Authorization: Bearer <admin.token>\n".to_vec(),
                    )
                }
            }
            _ => (
                404,
                "text/plain",
                b"a relay answers /healthz, /readyz and /metrics\n".to_vec(),
            ),
        }
    }

    /// What `clicktap status` shows of a relay.
    fn status(&self) -> serde_json::Value {
        let webhooks: Vec<serde_json::Value> = self
            .webhooks
            .iter()
            .map(|w| {
                let consuming = w.consuming.load(std::sync::atomic::Ordering::Relaxed);
                let mut v = serde_json::to_value(w.status()).unwrap_or_default();
                v["id"] = w.cfg.id.clone().into();
                v["consumer"] = super::consumer::name(&w.cfg.id).into();
                v["state"] = match (w.disabled(), consuming) {
                    (Some(d), _) => {
                        v["disabled_reason"] = d.reason.into();
                        v["disabled_since_ms"] = d.since_ms.into();
                        "disabled"
                    }
                    (None, true) => "consuming",
                    (None, false) => "connecting",
                }
                .into();
                v
            })
            .collect();
        serde_json::json!({
            "role": "relay",
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "uptime_ms": self.started.elapsed().as_millis() as u64,
            "config": { "path": self.config.0, "hash": self.config.1 },
            "stream": self.relay.stream,
            "dead_letter_stream": self.relay.dead_letter_stream,
            "webhooks": webhooks,
        })
    }

    fn authorized(&self, req: &httparse::Request<'_, '_>) -> bool {
        let Some(token) = &self.cfg.token else {
            return false;
        };
        let given = req
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("authorization"))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim_start())
            .unwrap_or("");
        crate::admin::constant_time_eq(given.as_bytes(), token.expose().as_bytes())
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    }
}
