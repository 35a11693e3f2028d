//! One message of the stream to one webhook: read, filter, send, and settle, the one
//! place that decides what becomes of a message a relay was handed.
//!
//! - A 2xx: acked.
//! - A failure (or a back-off answer: 429, 502, 503, 504) before the last attempt: nak'd
//!   with the retry schedule's delay (or the answer's `Retry-After`, capped at
//!   `retry.max_backoff`), so that the server hands it out again then, to whichever
//!   relay asks first. The attempt number is the server's delivery count.
//! - A 410: the webhook is disabled for every relay (`health.rs`) and the message nak'd,
//!   to wait for the reactivation with the others.
//! - The last attempt failed, or an event that does not decode: published as a
//!   dead letter (`dead.rs`), then termed. When the dead letter cannot be published the
//!   message is nak'd instead and dead-lettered on its next delivery.
//! - An event the webhook's filter does not take: acked, counted `filtered`.
//!
//! While an attempt is under way the relay tells the server so every half `ack_wait`,
//! so that a slow attempt is not handed to another relay at the same time.
//!
//! An ack or nak that is lost leaves the message to `ack_wait`: it is handed out again
//! (at least once). Nothing here moves past a message it did not settle.

use async_nats::jetstream::{self, AckKind, kv};
use std::time::Duration;

use super::dead::{self, Letter};
use super::health::{self, Disabled};
use super::webhook::Webhook;
use crate::deliver::member::Member;
use crate::deliver::{Class, Outcome, retry, sender};
use crate::queue::Stored;

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Delivered,
    Retried,
    Dead,
    Filtered,
    /// Its ack, nak or term did not reach the server (or a stop cut it short): the
    /// server hands it out again after `ack_wait`.
    Unsettled,
}

impl Settled {
    /// The `outcome` label of `clicktap_relay_messages_total`.
    pub fn label(self) -> &'static str {
        match self {
            Settled::Delivered => "delivered",
            Settled::Retried => "retried",
            Settled::Dead => "dead",
            Settled::Filtered => "filtered",
            Settled::Unsettled => "unsettled",
        }
    }
}

impl Webhook {
    pub async fn settle(
        &self,
        js: &jetstream::Context,
        health: &kv::Store,
        msg: jetstream::Message,
    ) -> Settled {
        let id = self.cfg.id.as_str();
        self.count("received");
        let (seq, attempts) = match msg.info() {
            Ok(i) => (i.stream_sequence, i.delivered.max(1)),
            Err(_) => (0, 1),
        };
        let stored = Stored::detached(seq, 0, &msg.payload);
        let member = match Member::read(stored, sender::reads_whole_events(&self.cfg)) {
            Ok(m) => m,
            Err(e) => {
                let why = format!("undecodable event: {e}");
                return self.dead(js, &msg, seq, attempts, &why).await;
            }
        };
        if !self.sender.selects(&self.cfg, &member.head) {
            return self.ack(&msg, AckKind::Ack, Settled::Filtered).await;
        }
        // Taken by a pull made before the webhook was disabled: not sent, handed back.
        if self.disabled().is_some() {
            let wait = AckKind::Nak(Some(self.relay.ack_wait));
            return self.ack(&msg, wait, Settled::Retried).await;
        }
        let outcome = self.attempt(&msg, &member).await;
        let m = &self.metrics;
        m.delivery_attempts
            .with_label_values(&[id, outcome.class.label()])
            .inc();
        m.delivery_latency
            .with_label_values(&[id])
            .observe(outcome.latency.as_secs_f64());
        let reason = outcome.error.clone().unwrap_or_default();
        match outcome.class {
            Class::Delivered => self.ack(&msg, AckKind::Ack, Settled::Delivered).await,
            // The webhook disabled for every relay; this message waits for the
            // reactivation like the others.
            Class::Gone => {
                let mark = Disabled {
                    reason: "answered 410 Gone: the receiver wants no more webhooks".into(),
                    since_ms: crate::clock::now_ms(),
                };
                if let Err(e) = health::disable(health, id, &mark).await {
                    tracing::error!(webhook = id, error = %e, "cannot mark the webhook disabled for the other relays");
                }
                self.set_disabled(Some(mark));
                // Back after every relay has looked at the mark, so that none sends it.
                let wait = (super::session::CHECK_EVERY * 2).max(self.relay.ack_wait);
                self.ack(&msg, AckKind::Nak(Some(wait)), Settled::Retried)
                    .await
            }
            _ if attempts >= self.cfg.retry.max_attempts as i64 => {
                let why = format!("{reason} (attempt {attempts}, the last)");
                self.dead(js, &msg, seq, attempts, &why).await
            }
            class => {
                let schedule = retry::delay(&self.cfg.retry, attempts as u32);
                let delay = match outcome.retry_after {
                    Some(asked) => asked.min(self.cfg.retry.max_backoff),
                    None => schedule,
                };
                // An overloaded receiver is not asked again at once, whatever it said.
                let delay = if class == Class::Backoff {
                    delay.max(crate::config::MIN_BACKOFF)
                } else {
                    delay
                };
                tracing::debug!(webhook = id, seq, attempts, error = %reason, retry_in = %crate::logging::duration(delay), "attempt failed; retried");
                self.ack(&msg, AckKind::Nak(Some(delay)), Settled::Retried)
                    .await
            }
        }
    }

    /// One attempt, telling the server every half `ack_wait` that it is still under way
    /// (`+WPI`): the webhook's `rate_limit` or an OAuth token fetch can hold an attempt
    /// longer than `ack_wait`, and the message must not go to another relay meanwhile.
    async fn attempt(&self, msg: &jetstream::Message, member: &Member) -> Outcome {
        let send = self.sender.send(&self.cfg, std::slice::from_ref(member));
        tokio::pin!(send);
        let half = (self.relay.ack_wait / 2).max(Duration::from_millis(1));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + half, half);
        loop {
            tokio::select! {
                outcome = &mut send => return outcome,
                _ = tick.tick() => {
                    let deadline = self.relay.nats.request_timeout.min(half);
                    if !matches!(tokio::time::timeout(deadline, msg.ack_with(AckKind::Progress)).await, Ok(Ok(()))) {
                        tracing::debug!(webhook = self.cfg.id, "cannot tell the server an attempt is under way");
                    }
                }
            }
        }
    }

    /// Sends `kind` for `msg`, within `relay.request_timeout`; `ok` when it went out.
    async fn ack(&self, msg: &jetstream::Message, kind: AckKind, ok: Settled) -> Settled {
        let deadline = self.relay.nats.request_timeout;
        match tokio::time::timeout(deadline, msg.ack_with(kind)).await {
            Ok(Ok(())) => ok,
            Ok(Err(e)) => {
                tracing::warn!(webhook = self.cfg.id, error = %e, "cannot settle a message: it is handed out again after ack_wait");
                Settled::Unsettled
            }
            Err(_) => {
                tracing::warn!(
                    webhook = self.cfg.id,
                    "settling a message took too long: it is handed out again after ack_wait"
                );
                Settled::Unsettled
            }
        }
    }

    /// Publishes a dead letter for `msg`, then terms it; when the dead letter cannot be
    /// published, naks it so that a later delivery tries again.
    async fn dead(
        &self,
        js: &jetstream::Context,
        msg: &jetstream::Message,
        seq: u64,
        attempts: i64,
        reason: &str,
    ) -> Settled {
        let letter = Letter {
            webhook: &self.cfg.id,
            stream_seq: seq,
            attempts,
            reason,
            event: &msg.payload,
        };
        match dead::publish(js, &self.relay, &letter).await {
            Ok(()) => {
                tracing::warn!(
                    webhook = self.cfg.id,
                    seq,
                    attempts,
                    reason,
                    "dead letter: the event was not delivered and is kept in the dead-letter stream"
                );
                self.ack(msg, AckKind::Term, Settled::Dead).await
            }
            Err(e) => {
                tracing::error!(webhook = self.cfg.id, seq, error = %e, "cannot record a dead letter; the message is handed out again");
                let wait = self.relay.ack_wait.min(Duration::from_secs(5));
                self.ack(msg, AckKind::Nak(Some(wait)), Settled::Unsettled)
                    .await
            }
        }
    }

    fn count(&self, outcome: &str) {
        self.metrics
            .relay_messages
            .with_label_values(&[self.cfg.id.as_str(), outcome])
            .inc();
    }
}
