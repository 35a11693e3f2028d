//! What one request to a webhook needs besides the webhook's config: the shared HTTP
//! client, the webhook's authentication (with its OAuth token cache), its rate limiter
//! and the `[[links]]` entries. A [`super::webhook::Webhook`] holds one and sends
//! from the queue; `clicktap relay` holds one per webhook and sends from a JetStream
//! stream. Both send through [`Sender::send`] (`attempt.rs`), so rendering, signing,
//! authentication, the SSRF guard, deadlines and size limits are the same code.

use std::sync::Arc;

use super::auth::Authenticator;
use super::filter::{self, Links};
use super::limiter::Limiter;
use super::member::Head;
use crate::config::{DeliveryConfig, Format, WebhookConfig};
use crate::metrics::Metrics;

pub struct Sender {
    pub(super) client: reqwest::Client,
    pub(super) auth: Authenticator,
    pub(super) limiter: Limiter,
    pub(super) links: Links,
    pub(super) allow_private_targets: bool,
    pub(super) log_body_bytes: usize,
    /// `delivery.log_body_max_bytes`, when what was sent is kept in a delivery log
    /// (request bodies up to this with it); `None` when no log keeps it (a relay).
    pub(super) log_body_max_bytes: Option<usize>,
}

impl Sender {
    pub fn new(
        cfg: &WebhookConfig,
        client: reqwest::Client,
        links: Links,
        metrics: Arc<Metrics>,
        delivery: &DeliveryConfig,
    ) -> Sender {
        Sender {
            auth: Authenticator::new(
                cfg.auth.clone(),
                &cfg.id,
                metrics,
                delivery.allow_private_targets,
                cfg.timeout,
            ),
            limiter: Limiter::new(cfg.rate_limit),
            client,
            links,
            allow_private_targets: delivery.allow_private_targets,
            log_body_bytes: delivery.log_body_bytes,
            log_body_max_bytes: Some(delivery.log_body_max_bytes),
        }
    }

    /// The same sender for a caller with no delivery log: what was sent is not captured.
    pub fn without_log(self) -> Sender {
        Sender {
            log_body_max_bytes: None,
            ..self
        }
    }

    /// Whether the webhook's filter takes the event.
    pub fn selects(&self, cfg: &WebhookConfig, head: &Head) -> bool {
        let links = self.links.load();
        filter::selects(&cfg.filter, head, filter::link_meta(&links, head))
    }
}

/// Whether the webhook's format rebuilds events field by field, and so needs them read
/// whole; the native format sends them as stored.
pub fn reads_whole_events(cfg: &WebhookConfig) -> bool {
    cfg.format != Format::Native
}

/// The `[[links]]` entries as a handle [`Sender::new`] takes.
pub fn links(entries: Vec<crate::config::LinkMeta>) -> Links {
    Arc::new(arc_swap::ArcSwap::from_pointee(entries))
}
