//! Dead letters of a relay: messages whose last attempt failed, published to a stream
//! of their own (`relay.dead_letter_stream`, by default `<STREAM>_DEAD`) before the
//! message is termed, so that what was given up on is kept, with why, for an operator
//! to read and send again.
//!
//! Each dead letter is a JSON object on the subject `<dead stream>.<webhook id>`:
//! `webhook`, `stream`, `stream_seq`, `attempts`, `reason`, `at` (RFC 3339) and
//! `event` (the event as the sidecar published it). Its `Nats-Msg-Id` is
//! `<webhook>.<stream>.<stream_seq>`, so a publish that timed out although the server
//! stored it, sent again, is not stored twice within the stream's duplicate window.

use async_nats::jetstream::{self, message::PublishMessage, stream};
use bytes::Bytes;
use serde_json::value::RawValue;
use std::time::{Duration, SystemTime};

use super::RelayError;
use crate::config::RelayConfig;

/// How long the dead-letter stream removes a repeated `Nats-Msg-Id`.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The subject dead letters of `webhook` are published on.
pub fn subject(relay: &RelayConfig, webhook: &str) -> String {
    format!("{}.{webhook}", relay.dead_letter_stream)
}

/// Makes sure the dead-letter stream exists: created when absent (file storage, kept
/// until removed), used as it is when present and its subjects take the dead letters
/// (else the relay does not consume: a failed event would have nowhere to go).
pub async fn ensure(js: &jetstream::Context, relay: &RelayConfig) -> Result<(), RelayError> {
    let name = &relay.dead_letter_stream;
    match js.get_stream(name).await {
        // One made otherwise (by an operator) must still take the dead letters.
        Ok(s) => {
            let example = subject(relay, "webhook");
            if s.cached_info()
                .config
                .subjects
                .iter()
                .any(|f| crate::config::subject_matches(f, &example))
            {
                Ok(())
            } else {
                Err(RelayError::Stream(format!(
                    "the dead-letter stream {name:?} does not take the subject {example:?} (its subjects: {:?}); add \"{name}.>\" to it or set relay.dead_letter_stream",
                    s.cached_info().config.subjects
                )))
            }
        }
        Err(e) if crate::sink::stream::is_not_found(&e) => {
            let config = stream::Config {
                name: name.clone(),
                subjects: vec![format!("{name}.>")],
                num_replicas: relay.dead_letter_replicas,
                storage: stream::StorageType::File,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            };
            js.create_stream(config).await.map_err(|e| {
                RelayError::Stream(format!(
                    "cannot create the dead-letter stream {name:?}: {e}"
                ))
            })?;
            tracing::info!(stream = name, "created the dead-letter stream");
            Ok(())
        }
        Err(e) => Err(RelayError::Stream(format!(
            "dead-letter stream {name:?}: {e}"
        ))),
    }
}

/// A dead letter as stored (and read back by a replay).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub webhook: String,
    pub stream: String,
    pub stream_seq: u64,
    pub attempts: i64,
    pub reason: String,
    pub at: String,
    /// The event as the sidecar published it.
    pub event: Box<RawValue>,
}

/// One dead letter.
pub struct Letter<'a> {
    pub webhook: &'a str,
    pub stream_seq: u64,
    pub attempts: i64,
    pub reason: &'a str,
    pub event: &'a [u8],
}

/// Publishes `letter` and waits for the stream's acknowledgement, within
/// `relay.request_timeout`.
pub async fn publish(
    js: &jetstream::Context,
    relay: &RelayConfig,
    letter: &Letter<'_>,
) -> Result<(), RelayError> {
    // The event byte for byte when it is JSON (a replay sends it as it came), else as
    // text (an event no sidecar wrote).
    let event: Box<RawValue> = std::str::from_utf8(letter.event)
        .ok()
        .and_then(|t| RawValue::from_string(t.to_string()).ok())
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(letter.event).into_owned();
            serde_json::value::to_raw_value(&text).unwrap_or_default()
        });
    let record = Record {
        webhook: letter.webhook.to_string(),
        stream: relay.stream.clone(),
        stream_seq: letter.stream_seq,
        attempts: letter.attempts,
        reason: letter.reason.to_string(),
        at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        event,
    };
    let body = serde_json::to_vec(&record)
        .map_err(|e| RelayError::Publish(format!("cannot write a dead letter: {e}")))?;
    let id = format!("{}.{}.{}", letter.webhook, relay.stream, letter.stream_seq);
    let message = PublishMessage::build()
        .payload(Bytes::from(body))
        .message_id(id);
    let deadline = relay.nats.request_timeout;
    let sent = tokio::time::timeout(
        deadline,
        js.send_publish(subject(relay, letter.webhook), message),
    )
    .await
    .map_err(|_| {
        RelayError::Publish(format!(
            "publishing a dead letter took longer than {deadline:?}"
        ))
    })?
    .map_err(|e| RelayError::Publish(format!("cannot publish a dead letter: {e}")))?;
    tokio::time::timeout(deadline, sent)
        .await
        .map_err(|_| {
            RelayError::Publish(format!(
                "no acknowledgement of a dead letter within {deadline:?} (it may be stored; sent again it is removed as a duplicate)"
            ))
        })?
        .map_err(|e| RelayError::Publish(format!("no acknowledgement of a dead letter: {e}")))?;
    Ok(())
}
