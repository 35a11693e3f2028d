//! Payload formats: one file per format, each a pure function from events to a body
//! and the format's own headers. (contract; bodies being written)

use http::{HeaderName, HeaderValue};
use std::time::SystemTime;

use crate::click::ClickEvent;
use crate::config::{Format, LinkMeta, WebhookConfig};

/// One event to render, with what delivery knows about it.
pub struct Item<'a> {
    pub event: &'a ClickEvent,
    /// The first `[[links]]` entry matching the event's host and path.
    pub link: Option<&'a LinkMeta>,
}

/// What is the same for every item of one request.
pub struct Envelope<'a> {
    pub webhook: &'a WebhookConfig,
    /// The request's message id: stable per (event, webhook) for single-event
    /// requests, per batch for batches. Also the T.LY delivery id.
    pub message_id: &'a str,
    /// When this attempt is sent.
    pub sent_at: SystemTime,
}

/// A rendered request: JSON body and format-specific headers (not the signature or
/// auth headers, which delivery adds).
pub struct Rendered {
    pub body: Vec<u8>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Renders `items` (one, or several for batching formats) in `format`.
pub fn render(format: Format, items: &[Item<'_>], env: &Envelope<'_>) -> Rendered {
    let _ = (format, items, env);
    Rendered {
        body: b"{}".to_vec(),
        headers: Vec::new(),
    }
}
