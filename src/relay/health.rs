//! A webhook's health shared by every relay, in a JetStream key-value bucket
//! (`<stream>_HEALTH`, key = webhook id): a receiver that answers 410 Gone wants no
//! more webhooks, so the relay that gets the answer marks the webhook disabled there,
//! and every relay stops taking its messages once it sees the mark (it looks every
//! [`super::session::CHECK_EVERY`]). The messages wait in the stream, and the one
//! answered 410 is handed out again, until an operator reactivates the webhook
//! (`clicktap relay --reactivate <webhook>`, which removes the mark).
//!
//! A sidecar disables a webhook the same way on a 410; one failing for
//! `disable_after` has no counterpart here (failures end as dead letters).

use async_nats::jetstream::{self, kv};
use bytes::Bytes;

use super::RelayError;
use crate::config::RelayConfig;

/// Why and since when a webhook is disabled.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Disabled {
    pub reason: String,
    /// Milliseconds since the Unix epoch.
    pub since_ms: u64,
}

/// The bucket's name for `relay`'s stream.
pub fn bucket_name(relay: &RelayConfig) -> String {
    format!("{}_HEALTH", relay.stream)
}

/// The bucket, created when absent (its replicas those of the dead-letter stream).
///
/// Created as the stream a key-value bucket is (`KV_<bucket>`, subjects
/// `$KV.<bucket>.>`, one message per key), rather than through async-nats'
/// `create_key_value`, which first reads the account's JetStream info in a shape
/// nats-server 2.9 does not answer with.
pub async fn bucket(js: &jetstream::Context, relay: &RelayConfig) -> Result<kv::Store, RelayError> {
    let name = bucket_name(relay);
    let fail = |e: String| RelayError::Stream(format!("health bucket {name:?}: {e}"));
    let stream = format!("KV_{name}");
    match js.get_stream(&stream).await {
        Ok(_) => {}
        Err(e) if crate::sink::stream::is_not_found(&e) => {
            let config = jetstream::stream::Config {
                name: stream.clone(),
                description: Some("clicktap relay: webhooks disabled by a 410".into()),
                subjects: vec![format!("$KV.{name}.>")],
                max_messages_per_subject: 1,
                storage: jetstream::stream::StorageType::File,
                num_replicas: relay.dead_letter_replicas,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: jetstream::stream::DiscardPolicy::New,
                ..Default::default()
            };
            js.create_stream(config)
                .await
                .map_err(|e| fail(e.to_string()))?;
        }
        Err(e) => return Err(fail(e.to_string())),
    }
    js.get_key_value(&name)
        .await
        .map_err(|e| fail(e.to_string()))
}

/// The mark of `webhook`, if it is disabled.
pub async fn disabled(store: &kv::Store, webhook: &str) -> Result<Option<Disabled>, RelayError> {
    let value = store
        .get(webhook)
        .await
        .map_err(|e| RelayError::Stream(format!("health of {webhook}: {e}")))?;
    Ok(value.and_then(|v| serde_json::from_slice(&v).ok()))
}

/// Marks `webhook` disabled for every relay.
pub async fn disable(store: &kv::Store, webhook: &str, mark: &Disabled) -> Result<(), RelayError> {
    let value = serde_json::to_vec(mark).unwrap_or_default();
    store
        .put(webhook, Bytes::from(value))
        .await
        .map(|_| ())
        .map_err(|e| RelayError::Publish(format!("cannot mark {webhook} disabled: {e}")))
}

/// Removes the mark of `webhook`; whether there was one.
pub async fn reactivate(store: &kv::Store, webhook: &str) -> Result<bool, RelayError> {
    let was = disabled(store, webhook).await?.is_some();
    if was {
        store
            .delete(webhook)
            .await
            .map_err(|e| RelayError::Publish(format!("cannot reactivate {webhook}: {e}")))?;
    }
    Ok(was)
}
