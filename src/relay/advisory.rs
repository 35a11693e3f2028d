//! The last net under a webhook's messages: nats-server stops handing out a message
//! after `max_deliver` deliveries and says so in an advisory
//! (`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>`). A relay settles
//! every message well before that (`settle.rs` dead-letters on the last attempt, and
//! [`super::consumer::SPARE_DELIVERIES`] leave room), so the advisory comes only when
//! relays died or could not publish a dead letter on every spare delivery too. Each
//! relay listens for it while it consumes, reads the message back from the stream by
//! its sequence, and publishes it as a dead letter with that reason; with several
//! relays listening, the dead letter's `Nats-Msg-Id` keeps one. Advisories are not
//! stored: one that comes while no relay is connected is missed, and the stream still
//! holds the message (until its `max_age`).

use async_nats::jetstream::{self, stream::Stream};
use futures_util::StreamExt;
use std::sync::Arc;

use super::consumer;
use super::dead::{self, Letter};
use crate::config::RelayConfig;
use crate::metrics::Metrics;

/// The advisory's fields a relay reads.
#[derive(serde::Deserialize)]
struct MaxDeliveries {
    stream_seq: u64,
    deliveries: i64,
}

/// The advisory subject of `webhook`'s consumer.
pub fn subject(relay: &RelayConfig, webhook: &str) -> String {
    format!(
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}",
        relay.stream,
        consumer::name(webhook)
    )
}

/// Listens until the subscription ends (the connection closes) or the task is aborted.
pub async fn listen(
    client: async_nats::Client,
    js: jetstream::Context,
    stream: Stream,
    relay: Arc<RelayConfig>,
    webhook: String,
    metrics: Arc<Metrics>,
) {
    let Ok(mut sub) = client.subscribe(subject(&relay, &webhook)).await else {
        tracing::warn!(
            webhook,
            "cannot listen for max-deliveries advisories; this session goes without"
        );
        return;
    };
    while let Some(m) = sub.next().await {
        let Ok(a) = serde_json::from_slice::<MaxDeliveries>(&m.payload) else {
            continue;
        };
        let deadline = relay.nats.request_timeout;
        let event = match tokio::time::timeout(deadline, stream.get_raw_message(a.stream_seq)).await
        {
            Ok(Ok(msg)) => msg.payload,
            _ => {
                tracing::error!(
                    webhook,
                    seq = a.stream_seq,
                    "the server gave up on a message after max_deliver and it cannot be read back: no dead letter (the stream holds it until its max_age)"
                );
                continue;
            }
        };
        let reason = format!(
            "not settled after {} deliveries: the server stopped handing it out (max_deliver)",
            a.deliveries
        );
        let letter = Letter {
            webhook: &webhook,
            stream_seq: a.stream_seq,
            attempts: a.deliveries,
            reason: &reason,
            event: &event,
        };
        match dead::publish(&js, &relay, &letter).await {
            Ok(()) => {
                metrics
                    .relay_messages
                    .with_label_values(&[webhook.as_str(), "max_deliver"])
                    .inc();
                tracing::warn!(
                    webhook,
                    seq = a.stream_seq,
                    reason,
                    "dead letter: the event was not delivered and is kept in the dead-letter stream"
                );
            }
            Err(e) => tracing::error!(
                webhook,
                seq = a.stream_seq,
                error = %e,
                "the server gave up on a message after max_deliver and its dead letter cannot be published (the stream holds it until its max_age)"
            ),
        }
    }
}
