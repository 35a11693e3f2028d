//! A webhook's sessions against NATS, each taking messages from the webhook's
//! consumer and settling them, up to the webhook's `concurrency` at once.
//!
//! A session connects, makes sure the dead-letter stream and the consumer exist (the
//! consumer is created again when it is gone: counted in
//! `clicktap_relay_consumer_recreated_total`), then pulls: each pull asks for as many
//! messages as there are free slots and lasts at most [`PULL_WAIT`], so that every
//! request to the server is bounded and an error comes back as an error, not as a
//! stream that keeps yielding (async-nats' `messages()` after a reconnect with its
//! consumer gone yields heartbeat and "no responders" errors for ever, nats.rs #1584).
//! A pull that ends empty says nothing about the consumer (idle and gone look alike), so
//! after an error and every [`CHECK_EVERY`] the session asks the server whether the
//! consumer exists. A consumer gone, or [`MAX_ERRORS`] pulls or checks failing in a
//! row, end the session: the client is dropped, and after a back-off (doubling up to
//! `relay.max_backoff`) the next session connects again and creates the consumer again
//! if it is gone.
//!
//! On a stop, no new pull is made and the attempts in flight get `relay.stop_timeout`;
//! what they did not settle is handed out again by the server after `ack_wait`.

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;

use super::health;
use super::settle::Settled;
use super::webhook::Webhook;
use super::{RelayError, advisory, consumer, dead};

/// How long one pull waits on the server for messages.
pub const PULL_WAIT: Duration = Duration::from_secs(2);
/// Pulls failing in a row that end a session.
pub const MAX_ERRORS: u32 = 3;
/// How often a session asks whether its consumer still exists.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);
/// The first back-off after a failed session; doubled up to `relay.max_backoff`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

enum Ended {
    Stopped,
}

/// A task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Webhook {
    /// Runs sessions until stopped, backing off between failed ones.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let id = self.cfg.id.clone();
        let mut backoff = FIRST_BACKOFF;
        let mut last_error = String::new();
        tracing::info!(webhook = id, url = %crate::redact::url(&self.cfg.url), consumer = %consumer::name(&id), "relaying");
        self.set_consuming(false);
        loop {
            if *stop.borrow() {
                break;
            }
            let started = Instant::now();
            match self.session(&mut stop).await {
                Ok(Ended::Stopped) => break,
                Err(e) => {
                    let message = e.to_string();
                    self.status.lock().last_error = Some(message.clone());
                    if message != last_error {
                        tracing::warn!(webhook = id, error = %message, "relay cannot consume; trying again");
                        last_error = message;
                    }
                }
            }
            self.set_consuming(false);
            if started.elapsed() > self.relay.max_backoff {
                backoff = FIRST_BACKOFF;
            }
            let wait = backoff;
            backoff = (backoff * 2).min(self.relay.max_backoff);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => break,
            }
        }
        self.set_consuming(false);
        tracing::info!(webhook = id, "relay stopped");
    }

    async fn session(&self, stop: &mut watch::Receiver<bool>) -> Result<Ended, RelayError> {
        let id = self.cfg.id.as_str();
        let relay = &self.relay;
        let (client, js) = tokio::select! {
            c = super::jetstream(relay, format!("clicktap relay {id}")) => c?,
            _ = stop.changed() => return Ok(Ended::Stopped),
        };
        let setup = async {
            dead::ensure(&js, relay).await?;
            let stream = js.get_stream(&relay.stream).await.map_err(|e| {
                RelayError::Stream(format!(
                    "stream {:?}: {e} (the sidecars' sinks create it)",
                    relay.stream
                ))
            })?;
            let (consumer, created) = consumer::ensure(&stream, &self.cfg, relay).await?;
            let health = health::bucket(&js, relay).await?;
            self.set_disabled(health::disabled(&health, &self.cfg.id).await?);
            Ok::<_, RelayError>((stream, consumer, created, health))
        };
        let bound = relay.nats.request_timeout * 5;
        let (stream, consumer, created, health) = tokio::select! {
            r = tokio::time::timeout(bound, setup) => r.map_err(|_| RelayError::Stream(format!("no answer about the streams and the consumer within {bound:?}")))??,
            _ = stop.changed() => return Ok(Ended::Stopped),
        };
        if created && self.seen.swap(true, Ordering::Relaxed) {
            self.metrics
                .relay_consumer_recreated
                .with_label_values(&[id])
                .inc();
            tracing::warn!(
                webhook = id,
                consumer = %consumer::name(id),
                "the consumer was gone: created again"
            );
        }
        self.seen.store(true, Ordering::Relaxed);
        self.counts(consumer.cached_info());
        self.set_consuming(true);
        tracing::info!(webhook = id, stream = relay.stream, "relay consuming");

        // Aborted when the session ends, however it ends.
        let advisories = AbortOnDrop(tokio::spawn(advisory::listen(
            client.clone(),
            js.clone(),
            stream.clone(),
            relay.clone(),
            self.cfg.id.clone(),
            self.metrics.clone(),
        )));

        let slots = self.cfg.concurrency.max(1);
        let mut in_flight = FuturesUnordered::new();
        let mut errors = 0u32;
        let mut checked = Instant::now();
        let result = 'session: loop {
            // Wait for a free slot.
            while in_flight.len() >= slots {
                tokio::select! {
                    biased;
                    _ = stop.changed() => break 'session Ok(Ended::Stopped),
                    Some(s) = in_flight.next() => self.settled(s),
                }
            }
            // A pull that ends empty looks the same whether the consumer is idle or gone:
            // after an error, and every CHECK_EVERY, ask the server whether it exists.
            if errors > 0 || checked.elapsed() >= CHECK_EVERY {
                match tokio::time::timeout(relay.nats.request_timeout, consumer::info(&stream, id))
                    .await
                {
                    Ok(Ok(Some(info))) => {
                        self.counts(&info);
                        let mark = tokio::time::timeout(
                            relay.nats.request_timeout,
                            health::disabled(&health, id),
                        )
                        .await;
                        match mark {
                            Ok(Ok(mark)) => self.set_disabled(mark),
                            _ => errors += 1,
                        }
                    }
                    Ok(Ok(None)) => {
                        break 'session Err(RelayError::Consumer(format!(
                            "the consumer {} is gone",
                            consumer::name(id)
                        )));
                    }
                    Ok(Err(e)) => {
                        errors += 1;
                        if errors >= MAX_ERRORS {
                            break 'session Err(e);
                        }
                    }
                    Err(_) => {
                        errors += 1;
                        if errors >= MAX_ERRORS {
                            break 'session Err(RelayError::Consumer(
                                "no answer about the consumer".into(),
                            ));
                        }
                    }
                }
                checked = Instant::now();
            }
            // Disabled for every relay: nothing taken until the mark is gone.
            if self.disabled().is_some() {
                let next_check = CHECK_EVERY.saturating_sub(checked.elapsed());
                tokio::select! {
                    biased;
                    _ = stop.changed() => break 'session Ok(Ended::Stopped),
                    Some(s) = in_flight.next(), if !in_flight.is_empty() => self.settled(s),
                    _ = tokio::time::sleep(next_check) => {}
                }
                continue;
            }
            let free = slots - in_flight.len();
            let pull = consumer
                .batch()
                .max_messages(free)
                .expires(PULL_WAIT)
                .messages();
            let mut batch = tokio::select! {
                biased;
                _ = stop.changed() => break 'session Ok(Ended::Stopped),
                b = tokio::time::timeout(relay.nats.request_timeout, pull) => match b {
                    Ok(Ok(b)) => b,
                    Ok(Err(e)) => {
                        errors += 1;
                        if errors >= MAX_ERRORS {
                            break 'session Err(RelayError::Pull(format!("{errors} pulls failed in a row, the last: {e}")));
                        }
                        continue;
                    }
                    Err(_) => {
                        errors += 1;
                        if errors >= MAX_ERRORS {
                            break 'session Err(RelayError::Pull(format!("{errors} pulls got no answer in a row")));
                        }
                        continue;
                    }
                },
            };
            loop {
                tokio::select! {
                    biased;
                    _ = stop.changed() => break 'session Ok(Ended::Stopped),
                    Some(s) = in_flight.next(), if !in_flight.is_empty() => self.settled(s),
                    m = batch.next() => match m {
                        // The pull ended as pulls do (its time was up, or it got what it
                        // asked for): the errors before it were not in a row.
                        None => {
                            errors = 0;
                            break;
                        }
                        Some(Ok(msg)) => {
                            errors = 0;
                            in_flight.push(self.settle(&js, &health, msg));
                        }
                        Some(Err(e)) => {
                            errors += 1;
                            if errors >= MAX_ERRORS {
                                break 'session Err(RelayError::Pull(format!("{errors} pulls failed in a row, the last: {e}")));
                            }
                            // A moment before the next pull, growing with the errors.
                            tokio::time::sleep(FIRST_BACKOFF * errors).await;
                            break;
                        }
                    },
                }
            }
        };
        // Attempts in flight finish within the stop's bound; on a failed session they
        // finish too (their answers are settled if the connection allows).
        let deadline = tokio::time::Instant::now() + relay.stop_timeout;
        while let Ok(Some(s)) = tokio::time::timeout_at(deadline, in_flight.next()).await {
            self.settled(s);
        }
        let left = in_flight.len();
        if left > 0 {
            self.metrics
                .relay_messages
                .with_label_values(&[id, Settled::Unsettled.label()])
                .inc_by(left as u64);
            tracing::warn!(
                webhook = id,
                left,
                "attempts cut short by the stop: handed out again after ack_wait"
            );
        }
        drop(in_flight);
        drop(advisories);
        drop(consumer);
        drop(health);
        drop(stream);
        drop(js);
        drop(client);
        result
    }

    fn settled(&self, s: Settled) {
        self.metrics
            .relay_messages
            .with_label_values(&[self.cfg.id.as_str(), s.label()])
            .inc();
    }
}
