//! `clicktap relay --replay-dead <webhook>`: each dead letter of a webhook sent once
//! more, through the same sender as every attempt; the ones delivered are removed from
//! the dead-letter stream, the others stay as they were.
//!
//! It reads the dead letters of one webhook (the subject `<dead stream>.<webhook>`)
//! with an ephemeral consumer that the server removes once it is idle, sends one at a
//! time (each bounded by the webhook's `timeout`), and ends when the consumer has no
//! more, so that it finishes even while relays add new dead letters.

use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

use super::dead::{self, Record};
use crate::config::{Config, RelayConfig, WebhookConfig};
use crate::deliver::member::Member;
use crate::deliver::sender::{self, Sender};
use crate::metrics::Metrics;
use crate::queue::Stored;

/// Dead letters read at a time.
const READ: usize = 64;

/// What a replay did.
#[derive(Debug, Default)]
pub struct Replayed {
    pub delivered: usize,
    /// Each dead letter that failed again: its stream sequence and why.
    pub failed: Vec<(u64, String)>,
}

/// Replays the dead letters of `webhook` (one of `cfg`'s) once each.
pub fn replay(cfg: &Config, webhook: &WebhookConfig) -> anyhow::Result<Replayed> {
    let relay = super::relay_of(cfg)?;
    super::once(async {
        let client = crate::deliver::client(cfg.delivery.allow_private_targets)?;
        let sender = Sender::new(
            webhook,
            client,
            sender::links(cfg.links.clone()),
            Arc::new(Metrics::new()),
            &cfg.delivery,
        )
        .without_log();
        let (_client, js) =
            super::jetstream(relay, format!("clicktap relay replay {}", webhook.id)).await?;
        run(&js, relay, webhook, &sender).await
    })
}

async fn run(
    js: &jetstream::Context,
    relay: &RelayConfig,
    webhook: &WebhookConfig,
    sender: &Sender,
) -> anyhow::Result<Replayed> {
    let mut out = Replayed::default();
    let stream = match js.get_stream(&relay.dead_letter_stream).await {
        Ok(s) => s,
        // No dead-letter stream: no dead letter.
        Err(e) if crate::sink::stream::is_not_found(&e) => return Ok(out),
        Err(e) => anyhow::bail!("dead-letter stream {:?}: {e}", relay.dead_letter_stream),
    };
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: dead::subject(relay, &webhook.id),
            ack_policy: jetstream::consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await?;
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(READ)
            .expires(relay.nats.request_timeout)
            .messages()
            .await?;
        let mut read = 0;
        while let Some(msg) = batch.next().await {
            let msg = msg.map_err(|e| anyhow::anyhow!("reading dead letters: {e}"))?;
            read += 1;
            let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
            let record: Record = match serde_json::from_slice(&msg.payload) {
                Ok(r) => r,
                Err(e) => {
                    out.failed.push((seq, format!("not a dead letter: {e}")));
                    continue;
                }
            };
            let stored = Stored::detached(record.stream_seq, 0, record.event.get().as_bytes());
            let member = match Member::read(stored, sender::reads_whole_events(webhook)) {
                Ok(m) => m,
                Err(e) => {
                    out.failed.push((seq, format!("undecodable event: {e}")));
                    continue;
                }
            };
            let outcome = sender.send(webhook, std::slice::from_ref(&member)).await;
            if outcome.delivered() {
                stream.delete_message(seq).await.map_err(|e| {
                    anyhow::anyhow!("delivered, but cannot remove the dead letter at {seq}: {e}")
                })?;
                out.delivered += 1;
            } else {
                out.failed
                    .push((seq, outcome.error.unwrap_or_else(|| "failed".into())));
            }
        }
        if read == 0 {
            return Ok(out);
        }
    }
}
