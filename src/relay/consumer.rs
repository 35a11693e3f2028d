//! A webhook's durable pull consumer on the stream: one per webhook, shared by every
//! relay, so that relays split its messages and a relay that dies hands its
//! unacknowledged ones to the others.
//!
//! Its name is derived from the webhook's id (`clicktap-<id>`), so that every relay
//! with the same `[[webhooks]]` finds the same consumer. Its settings come from the
//! webhook: the retry schedule becomes the consumer's `backoff`, after a first step of
//! `ack_wait` (nats-server 2.9 takes the first step as the consumer's ack wait) and
//! each step at least `ack_wait`, and
//! `max_deliver` leaves [`SPARE_DELIVERIES`] beyond `retry.max_attempts` (the server
//! requires more deliveries than back-off steps). A failed attempt is nak'd with the
//! schedule's delay itself (`settle.rs`); the back-off only times the redelivery of a
//! message whose relay went away without settling it.
//!
//! Creating it each session is create-or-update on the server: a changed schedule or
//! `ack_wait` takes effect with the next relay that starts.

use async_nats::jetstream::{self, consumer::pull, stream::Stream};
use std::time::Duration;

use super::RelayError;
use crate::config::{DeliverFrom, RelayConfig, WebhookConfig};

/// Deliveries beyond `retry.max_attempts`: room for a relay that died during the last
/// attempt, and for a dead letter whose publishing failed, to settle the message
/// before the server stops handing it out.
pub const SPARE_DELIVERIES: i64 = 2;

/// The consumer's name for a webhook.
pub fn name(webhook: &str) -> String {
    format!("clicktap-{webhook}")
}

/// The consumer's settings for `webhook`.
pub fn config(webhook: &WebhookConfig, relay: &RelayConfig) -> pull::Config {
    let attempts = webhook.retry.max_attempts.max(1);
    // backoff[n]: how long the server waits for the settling of delivery n + 1 before
    // handing the message out again. The first delivery gets ack_wait; delivery n + 1
    // (retry n) the delay of retry n, or ack_wait when that is longer.
    let backoff: Vec<Duration> = (0..attempts as usize)
        .map(|n| match n {
            0 => relay.ack_wait,
            n => {
                let step = webhook
                    .retry
                    .schedule
                    .get(n - 1)
                    .or(webhook.retry.schedule.last())
                    .copied()
                    .unwrap_or_default();
                step.max(relay.ack_wait)
            }
        })
        .collect();
    pull::Config {
        durable_name: Some(name(&webhook.id)),
        description: Some(format!("clicktap relay: webhook {}", webhook.id)),
        deliver_policy: match relay.deliver {
            DeliverFrom::All => jetstream::consumer::DeliverPolicy::All,
            DeliverFrom::New => jetstream::consumer::DeliverPolicy::New,
        },
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: relay.ack_wait,
        max_deliver: attempts as i64 + SPARE_DELIVERIES,
        backoff,
        ..Default::default()
    }
}

/// Creates (or updates) the consumer; `Ok(true)` when it did not exist before.
pub async fn ensure(
    stream: &Stream,
    webhook: &WebhookConfig,
    relay: &RelayConfig,
) -> Result<(jetstream::consumer::PullConsumer, bool), RelayError> {
    let name = name(&webhook.id);
    let existed = info(stream, &webhook.id).await?.is_some();
    let consumer = stream
        .create_consumer(config(webhook, relay))
        .await
        .map_err(|e| RelayError::Consumer(format!("cannot create the consumer {name}: {e}")))?;
    Ok((consumer, !existed))
}

/// What the server says of the consumer of `webhook`; `None` when it does not exist.
pub async fn info(
    stream: &Stream,
    webhook: &str,
) -> Result<Option<jetstream::consumer::Info>, RelayError> {
    let name = name(webhook);
    match stream.consumer_info(&name).await {
        Ok(i) => Ok(Some(i)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(RelayError::Consumer(format!("consumer {name}: {e}"))),
    }
}

fn is_not_found(e: &jetstream::context::ConsumerInfoError) -> bool {
    e.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_has_fewer_steps_than_max_deliver_and_none_below_ack_wait() {
        let cfg = crate::config::from_str(
            r#"
[relay]
urls = ["nats://127.0.0.1:4222"]
stream = "CLICKS"
ack_wait = "10s"
[[webhooks]]
id = "a"
url = "https://hooks.example.com/a"
retry.max_attempts = 4
retry.schedule = ["1s", "30s"]
"#,
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let c = config(&cfg.webhooks[0], cfg.relay.as_ref().unwrap());
        assert_eq!(c.durable_name.as_deref(), Some("clicktap-a"));
        let secs: Vec<u64> = c.backoff.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, [10, 10, 30, 30]);
        assert!(c.max_deliver > c.backoff.len() as i64);
        assert_eq!(c.max_deliver, 4 + SPARE_DELIVERIES);
    }
}
