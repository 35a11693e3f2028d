//! One request: render, sign, authenticate, POST, and read what came back.

use http::header::CONTENT_TYPE;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::formats::{self, Envelope, Item, StoredItem};
use super::guard;
use super::log::Answer;
use super::member::Member;
use super::retry;
use super::sender::Sender;
use super::sent::Sent;
use crate::click::ClickKind;
use crate::config::{Format, LinkMeta, WebhookConfig};

/// What an answer means for delivery, as the Standard Webhooks spec reads statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// A 2xx within the timeout.
    Delivered,
    /// Anything else that came back, or nothing (a timeout, a refused connection): an
    /// attempt used up, toward dead letters and toward `disable_after`.
    Failed,
    /// 429, 502, 503 or 504: the receiver is overloaded. The webhook backs off (its
    /// `Retry-After`, or the retry schedule) and the attempt counts toward neither.
    Backoff,
    /// 410 Gone: the receiver wants no more webhooks. The webhook is disabled at once.
    Gone,
    /// Cut short by a stop, or not sent: no answer (delivery log only).
    Interrupted,
}

impl Class {
    /// The class of an HTTP status.
    pub fn of(status: u16) -> Class {
        match status {
            200..=299 => Class::Delivered,
            410 => Class::Gone,
            429 | 502 | 503 | 504 => Class::Backoff,
            _ => Class::Failed,
        }
    }

    /// The `outcome` label of `clicktap_delivery_attempts_total`.
    pub fn label(self) -> &'static str {
        match self {
            Class::Delivered => "success",
            Class::Failed => "failure",
            Class::Backoff => "backoff",
            Class::Gone => "gone",
            Class::Interrupted => "interrupted",
        }
    }
}

/// How one request ended.
pub struct Outcome {
    pub class: Class,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// The receiver's `Retry-After` (seconds or an HTTP date), on any answer but a 2xx.
    pub retry_after: Option<Duration>,
    pub latency: Duration,
    /// The first bytes of the response body.
    pub response: String,
    /// What was sent, secrets redacted; `None` when nothing was.
    pub sent: Option<Sent>,
}

impl Outcome {
    pub fn failed(error: String, latency: Duration) -> Outcome {
        Outcome {
            class: Class::Failed,
            status: None,
            error: Some(error),
            retry_after: None,
            latency,
            response: String::new(),
            sent: None,
        }
    }

    pub fn delivered(&self) -> bool {
        self.class == Class::Delivered
    }

    /// What the delivery log keeps of it.
    pub fn answer(&self) -> Answer {
        Answer {
            at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            outcome: Some(self.class),
            status: self.status,
            latency_ms: self.latency.as_millis() as u64,
            error: self.error.clone(),
            response: self.response.clone(),
        }
    }
}

/// The Standard Webhooks message id: stable for one event and one webhook across
/// attempts and restarts; for a batch, derived from its events' ids.
pub fn message_id(webhook: &str, members: &[Member]) -> String {
    formats::message_id(webhook, members.iter().map(|m| &m.head.id))
}

/// What a request's body is made from: stored events for the native format, events
/// read whole for the others.
enum Body<'a> {
    Stored(Vec<StoredItem<'a>>),
    Read(Format, Vec<Item<'a>>),
}

impl<'a> Body<'a> {
    fn new(format: Format, members: &'a [Member], links: &'a [LinkMeta]) -> Body<'a> {
        let link = |m: &Member| super::filter::link_meta(links, &m.head);
        if format == Format::Native {
            return Body::Stored(
                members
                    .iter()
                    .map(|m| StoredItem {
                        json: m.stored.bytes(),
                        link: link(m),
                    })
                    .collect(),
            );
        }
        // Members of a format other than native are read whole (`Member::read`).
        Body::Read(
            format,
            members
                .iter()
                .filter_map(|m| {
                    Some(Item {
                        event: m.event.as_ref()?,
                        link: link(m),
                    })
                })
                .collect(),
        )
    }

    fn render(&self, env: &Envelope<'_>) -> formats::Rendered {
        match self {
            Body::Stored(items) => formats::render_stored(items, env),
            Body::Read(format, items) => formats::render(*format, items, env),
        }
    }
}

impl Sender {
    /// Sends `members` as one request to the webhook `cfg`. Never panics, never returns
    /// a secret in an error.
    pub async fn send(&self, cfg: &WebhookConfig, members: &[Member]) -> Outcome {
        // The unit tests' stand-in for a bug: a webhook whose id says so panics here.
        #[cfg(test)]
        if cfg.id.starts_with("test-panic") {
            panic!("injected by a test");
        }
        let started = Instant::now();
        if let Err(e) = guard::check_url(&cfg.url, self.allow_private_targets) {
            return Outcome::failed(e.to_string(), started.elapsed());
        }
        self.limiter.wait().await;
        let msg_id = message_id(&cfg.id, members);
        let links = self.links.load_full();
        let body = Body::new(cfg.format, members, &links);
        let mut retried_auth = false;
        loop {
            let sent_at = SystemTime::now();
            let rendered = body.render(&Envelope {
                webhook: cfg,
                message_id: &msg_id,
                sent_at,
            });
            let ts = sent_at
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs() as i64;
            let mut req = self
                .client
                .post(self.auth.url(&cfg.url))
                .timeout(cfg.timeout)
                .header(CONTENT_TYPE, rendered.content_type)
                .header("idempotency-key", &msg_id);
            for (k, v) in rendered.headers.iter().chain(cfg.headers.iter()) {
                req = req.header(k, v);
            }
            if members
                .first()
                .is_some_and(|m| m.head.kind == ClickKind::Test)
            {
                req = req.header(super::test_event::HEADER, "true");
            }
            if !cfg.secrets.is_empty() || !cfg.secret_keys.is_empty() {
                req = req
                    .header("webhook-id", &msg_id)
                    .header("webhook-timestamp", ts.to_string())
                    .header(
                        "webhook-signature",
                        super::sign::signature(
                            &cfg.secrets,
                            &cfg.secret_keys,
                            &msg_id,
                            ts,
                            &rendered.body,
                        ),
                    );
            }
            let req = match self.auth.apply(&self.client, req).await {
                Ok(r) => r.body(rendered.body),
                Err(e) => return Outcome::failed(e, started.elapsed()),
            };
            let req = match req.build() {
                Ok(r) => r,
                Err(e) => return Outcome::failed(describe(&e), started.elapsed()),
            };
            let sent = self.log_body_max_bytes.map(|keep| {
                let body = req.body().and_then(reqwest::Body::as_bytes);
                Sent::of(&req, body.unwrap_or_default(), keep)
            });
            let resp = match self.client.execute(req).await {
                Ok(r) => r,
                Err(e) => {
                    let mut o = Outcome::failed(describe(&e), started.elapsed());
                    o.sent = sent;
                    return o;
                }
            };
            let status = resp.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && self.auth.is_oauth() && !retried_auth
            {
                // The token expired early or was revoked: one fresh token, same attempt.
                self.auth.invalidate();
                retried_auth = true;
                continue;
            }
            let class = Class::of(status.as_u16());
            let retry_after = (class != Class::Delivered)
                .then(|| resp.headers().get(http::header::RETRY_AFTER))
                .flatten()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry::retry_after(v, SystemTime::now()));
            let response = read_prefix(resp, self.log_body_bytes).await;
            let error = match class {
                Class::Delivered => None,
                Class::Gone => Some(format!(
                    "answered {status}: the receiver wants no more webhooks; disabled"
                )),
                Class::Backoff => Some(format!(
                    "answered {status}: the receiver is overloaded; backing off"
                )),
                _ if status.is_redirection() => {
                    Some(format!("answered {status}: redirects are not followed"))
                }
                _ => Some(format!("answered {status}")),
            };
            return Outcome {
                class,
                status: Some(status.as_u16()),
                error,
                retry_after,
                latency: started.elapsed(),
                response,
                sent,
            };
        }
    }
}

/// The error without its URL, which may carry an API key in the query, with its
/// causes: "error sending request" alone does not tell refused from unresolved.
pub(super) fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "request"
    };
    let mut msg = format!("{kind}: {}", strip_url(e));
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

fn strip_url(e: &reqwest::Error) -> String {
    // `without_url` needs ownership; the display of a URL-less error is its kind.
    let s = e.to_string();
    match s.find(" for url (") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Reads at most `limit` bytes of the body (then drains a bounded rest so that the
/// connection can be reused).
async fn read_prefix(mut resp: reqwest::Response, limit: usize) -> String {
    let mut kept = Vec::new();
    let mut read = 0usize;
    while let Ok(Some(chunk)) = resp.chunk().await {
        if kept.len() < limit {
            let n = (limit - kept.len()).min(chunk.len());
            kept.extend_from_slice(&chunk[..n]);
        }
        read += chunk.len();
        if read > 1 << 20 {
            break;
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}
