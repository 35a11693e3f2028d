//! One sink's consumer of the queue: read from its cursor, publish, move the cursor
//! past what the stream acknowledged.
//!
//! Events are published in order, each with `Nats-Msg-Id` set to the event id, and up
//! to `max_in_flight` events (and `max_in_flight_bytes` of them) wait for their
//! acknowledgement at once. Acknowledgements are taken in publishing order, and the
//! cursor moves past an event only once it and every event before it were acknowledged:
//! never past one that was not. Any failure (a publish or an ack that fails or misses
//! its deadline, a lost connection) ends the session: the client is dropped, and after a
//! back-off the sink connects again and publishes again from its cursor. Events sent in
//! the failed session that were stored after all are sent again with the same id, and
//! the stream's duplicate window removes them (counted as `duplicate`); the same holds
//! for a crash, which loses at most the cursor moves since the queue's last flush.
//!
//! While NATS is down the events stay in the queue, bounded by the queue's own limits
//! and retention; events the retention removed before the sink published them are
//! counted as `missed`.

use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

use super::health::{Health, State};
use super::{SinkError, connect, stream};
use crate::config::SinkConfig;
use crate::metrics::Metrics;
use crate::queue::{Queue, Stored};

/// Events read from the queue at a time.
const READ: usize = 256;
/// How often the cursor is written while acks keep coming (it is also written whenever
/// the sink waits for new events).
const CURSOR_EVERY: Duration = Duration::from_millis(100);
/// The first back-off after a failure; doubled up to `max_backoff`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The queue consumer name of a sink.
pub fn consumer_name(id: &str) -> String {
    format!("sink:{id}")
}

pub struct Publisher {
    pub cfg: SinkConfig,
    /// The config key of this sink (`sinks[0]`), for messages.
    pub key: String,
    pub queue: Queue,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

/// Why a session ended.
enum Ended {
    Stopped,
}

impl Publisher {
    fn consumer(&self) -> String {
        consumer_name(&self.cfg.id)
    }

    /// Runs sessions until stopped, backing off between failed ones.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let id = self.cfg.id.clone();
        let mut backoff = FIRST_BACKOFF;
        loop {
            if *stop.borrow() {
                break;
            }
            let started = Instant::now();
            let error = match self.session(&mut stop).await {
                Ok(Ended::Stopped) => break,
                Err(e) => e,
            };
            let refused = matches!(error, SinkError::Refused(_));
            let state = if refused {
                State::Refused
            } else {
                State::Connecting
            };
            let message = error.to_string();
            if self.health.set(state, Some(message.clone())) || refused {
                if refused {
                    tracing::error!(sink = id, error = %message, "sink refused: events wait in the queue");
                } else {
                    tracing::warn!(sink = id, error = %message, "sink cannot publish: events wait in the queue; trying again");
                }
            }
            self.metrics
                .sink_state
                .with_label_values(&[id.as_str()])
                .set(state.gauge());
            let head = self.queue.head();
            let cursor = self
                .queue
                .cursor(&self.consumer())
                .ok()
                .flatten()
                .unwrap_or(head);
            self.metrics
                .sink_lag
                .with_label_values(&[id.as_str()])
                .set(head.saturating_sub(cursor) as i64);
            // A session that published a while resets the back-off.
            if started.elapsed() > self.cfg.max_backoff {
                backoff = FIRST_BACKOFF;
            }
            let wait = backoff;
            backoff = (backoff * 2).min(self.cfg.max_backoff);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => break,
            }
        }
        self.health.set(State::Stopped, None);
        if let Err(e) = self.queue.flush_if_due() {
            tracing::error!(sink = id, error = %e, "sink: cannot flush its cursor");
        }
        tracing::info!(sink = id, "sink stopped");
    }

    async fn session(&self, stop: &mut watch::Receiver<bool>) -> Result<Ended, SinkError> {
        let cfg = &self.cfg;
        let id = cfg.id.as_str();
        let client = tokio::select! {
            c = connect::connect(&cfg.nats, format!("clicktap sink {id}")) => c?,
            _ = stop.changed() => return Ok(Ended::Stopped),
        };
        let js = jetstream::ContextBuilder::new()
            .timeout(cfg.publish_timeout)
            .max_ack_inflight(cfg.max_in_flight)
            .backpressure_on_inflight(true)
            .ack_timeout(cfg.publish_timeout)
            .build(client.clone());
        let key = format!("{}.stream", self.key);
        tokio::select! {
            r = tokio::time::timeout(cfg.publish_timeout * 2, stream::ensure(&js, &cfg.stream, &key)) => {
                r.map_err(|_| SinkError::Stream(format!("no answer about the stream within {:?}", cfg.publish_timeout * 2)))??
            }
            _ = stop.changed() => return Ok(Ended::Stopped),
        }
        if self.health.set(State::Publishing, None) {
            tracing::info!(sink = id, stream = cfg.stream.name, "sink publishing");
        }
        let m = &self.metrics;
        m.sink_state
            .with_label_values(&[id])
            .set(State::Publishing.gauge());
        let events = |outcome: &str| m.sink_events.with_label_values(&[id, outcome]);
        let in_flight_bytes = m.sink_in_flight_bytes.with_label_values(&[id]);
        let lag = m.sink_lag.with_label_values(&[id]);

        let consumer = self.consumer();
        let mut cursor = self.queue.cursor(&consumer)?.unwrap_or(self.queue.head());
        let generation = self.queue.generation();
        let mut sent = cursor;
        let mut batch: std::collections::VecDeque<Stored> = Default::default();
        let mut acks = FuturesOrdered::new();
        let mut bytes_held: u64 = 0;
        let mut cursor_dirty = false;
        let mut cursor_written = Instant::now();
        let mut head = self.queue.subscribe();
        let result = loop {
            // A reopened queue lost the writes since its last flush, the cursor's among
            // them: start again from what it kept (the stream removes re-sends).
            if self.queue.generation() != generation {
                break Err(SinkError::Publish(
                    "the queue's storage was opened again; publishing again from the stored cursor"
                        .into(),
                ));
            }
            // Publish while there is room.
            let mut failure = None;
            while acks.len() < cfg.max_in_flight
                && bytes_held < cfg.max_in_flight_bytes
                && !*stop.borrow()
            {
                if batch.is_empty() {
                    batch.extend(self.queue.read(sent, READ)?);
                }
                let Some(ev) = batch.pop_front() else { break };
                if ev.seq > sent {
                    events("missed").inc_by(ev.seq - sent);
                    tracing::warn!(
                        sink = id,
                        from = sent,
                        to = ev.seq,
                        "events removed by the queue's retention before the sink published them"
                    );
                }
                let (subject, msg_id) = self.address(&ev);
                let payload = Bytes::copy_from_slice(ev.bytes());
                let size = payload.len() as u64;
                let mut publish = PublishMessage::build().payload(payload);
                if let Some(msg_id) = &msg_id {
                    publish = publish.message_id(msg_id);
                }
                let sending =
                    tokio::time::timeout(cfg.publish_timeout, js.send_publish(subject, publish));
                let future = match sending.await {
                    Ok(Ok(f)) => f,
                    Ok(Err(e)) => {
                        failure = Some(SinkError::Publish(format!(
                            "cannot publish the event at seq {}: {e}",
                            ev.seq
                        )));
                        break;
                    }
                    Err(_) => {
                        failure = Some(SinkError::Publish(format!(
                            "publishing the event at seq {} took longer than {:?}",
                            ev.seq, cfg.publish_timeout
                        )));
                        break;
                    }
                };
                events("published").inc();
                bytes_held += size;
                in_flight_bytes.set(bytes_held as i64);
                let seq = ev.seq;
                acks.push_back(async move { (seq, size, future.await) });
                sent = seq + 1;
            }
            if let Some(e) = failure {
                break Err(e);
            }
            if cursor_dirty && (acks.is_empty() || cursor_written.elapsed() >= CURSOR_EVERY) {
                self.queue.set_cursor(&consumer, cursor)?;
                cursor_dirty = false;
                cursor_written = Instant::now();
            }
            lag.set(self.queue.head().saturating_sub(cursor) as i64);
            let flush_in = self.queue.flush_if_due()?.unwrap_or(Duration::from_secs(1));
            // With room to publish, a new event wakes the sink at once: also when events
            // came in between the read above and here (the head's watch has moved past
            // what it saw), which under a steady stream of clicks is nearly always.
            // Without room, the next acknowledgement does.
            let room = acks.len() < cfg.max_in_flight && bytes_held < cfg.max_in_flight_bytes;
            tokio::select! {
                biased;
                _ = stop.changed() => break Ok(Ended::Stopped),
                Some((seq, size, outcome)) = acks.next(), if !acks.is_empty() => {
                    bytes_held -= size;
                    in_flight_bytes.set(bytes_held as i64);
                    match outcome {
                        Ok(ack) => {
                            events("acked").inc();
                            if ack.duplicate {
                                events("duplicate").inc();
                            }
                            cursor = seq + 1;
                            cursor_dirty = true;
                        }
                        Err(e) => break Err(SinkError::Publish(format!("no acknowledgement for the event at seq {seq}: {e}"))),
                    }
                }
                _ = head.changed(), if room => {}
                _ = tokio::time::sleep(flush_in.min(Duration::from_secs(1))) => {}
            }
        };
        // The session ends: on a stop, the acks in flight get the stop's bound to come
        // in; on a failure none is awaited (they are counted failed and sent again).
        if matches!(result, Ok(Ended::Stopped)) {
            let deadline = tokio::time::Instant::now() + cfg.stop_timeout;
            while let Ok(Some((seq, size, outcome))) =
                tokio::time::timeout_at(deadline, acks.next()).await
            {
                bytes_held = bytes_held.saturating_sub(size);
                match outcome {
                    Ok(ack) => {
                        events("acked").inc();
                        if ack.duplicate {
                            events("duplicate").inc();
                        }
                        cursor = seq + 1;
                    }
                    Err(_) => break,
                }
            }
        }
        debug_assert!(bytes_held == 0 || !acks.is_empty());
        // Published and not acknowledged: sent again by the next session.
        events("failed").inc_by(sent.saturating_sub(cursor));
        in_flight_bytes.set(0);
        if self.queue.generation() == generation {
            self.queue.set_cursor(&consumer, cursor)?;
        }
        lag.set(self.queue.head().saturating_sub(cursor) as i64);
        drop(acks);
        drop(js);
        drop(client);
        result
    }

    /// The subject and message id of an event. An event whose JSON does not parse (never
    /// written by clicktap) is published without an id, to the subject with its
    /// placeholders as `_`, and logged.
    fn address(&self, ev: &Stored) -> (String, Option<String>) {
        #[derive(serde::Deserialize)]
        struct Id {
            id: String,
        }
        if self.cfg.subject.is_fixed() {
            let id = serde_json::from_slice::<Id>(ev.bytes()).ok().map(|i| i.id);
            if id.is_none() {
                tracing::warn!(
                    sink = self.cfg.id,
                    seq = ev.seq,
                    "an event without an id: published without Nats-Msg-Id"
                );
            }
            return (self.cfg.subject.example(), id);
        }
        let value: serde_json::Value =
            serde_json::from_slice(ev.bytes()).unwrap_or(serde_json::Value::Null);
        let id = value.get("id").and_then(|v| v.as_str()).map(str::to_string);
        if id.is_none() {
            tracing::warn!(
                sink = self.cfg.id,
                seq = ev.seq,
                "an event without an id: published without Nats-Msg-Id"
            );
        }
        (self.cfg.subject.render(&value), id)
    }
}
