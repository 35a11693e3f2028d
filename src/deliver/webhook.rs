//! One webhook: a consumer of the queue with its own cursor, so a slow or dead
//! receiver never delays another.
//!
//! Each turn of its loop sends the retries that are due, then reads new events from
//! its cursor ([`super::select`]), sends them in requests of the format's size, up to
//! `concurrency` at once ([`super::dispatch`]), and settles every event's outcome
//! before the cursor moves past it ([`super::settle`]). A crash between a send and the
//! cursor's move means the events are sent again after a restart: at-least-once, with
//! the same message ids. The loop waits for new events, due retries, a reactivation or
//! the stop, whichever comes first, and notices the stop inside every wait. While the
//! webhook is disabled or backing off ([`super::health`]) it sends nothing, and its
//! cursor stays before every event it has not settled.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

use super::attempt::Outcome;
use super::health::{Health, Hold};
use super::log::{DeliveryLog, Recorder};
use super::member::Member;
use super::select::Progress;
use super::sender::Sender;
use super::state::WebhookState;
use crate::config::{DeliveryConfig, WebhookConfig};
use crate::metrics::Metrics;
use crate::notice::Notices;
use crate::queue::Queue;
use crate::shutdown::Stop;

/// How often a webhook prunes its delivery log and expires dead letters. Often, so that
/// each prune is small: pruning reads every value it removes, and a minute of a busy
/// log at once (300,000 attempts at 5,000 clicks/s) lifted resident memory from ~65 MiB
/// to up to 254 MiB for a few seconds, once a minute, in the soak.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

pub struct Webhook {
    pub cfg: WebhookConfig,
    pub consumer: String,
    pub(super) queue: Queue,
    pub(super) state: WebhookState,
    pub(super) recorder: Recorder,
    pub(super) sender: Sender,
    pub(super) metrics: Arc<Metrics>,
    pub(super) delivery: DeliveryConfig,
    pub(super) notices: Notices,
    pub(super) health: parking_lot::Mutex<Health>,
    pub reactivated: Notify,
    pub replays: Replays,
    /// Whether new events are held back because delivery state is at its bound.
    pub(super) held: std::sync::atomic::AtomicBool,
}

/// What became of replayed events since the webhook started: each is counted once,
/// when it is delivered or fails its last attempt again, so that an operator's replay
/// can tell what was delivered from what was only put in line.
#[derive(Default, Debug, serde::Serialize)]
pub struct Replays {
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl Replays {
    pub fn delivered(&self, replay: bool) {
        if replay {
            self.delivered.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn failed_again(&self, replay: bool) {
        if replay {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The cursor name of a webhook in the queue.
pub fn consumer_name(id: &str) -> String {
    format!("webhook:{id}")
}

/// What every webhook shares.
pub struct Parts {
    pub queue: Queue,
    pub log: DeliveryLog,
    pub client: reqwest::Client,
    pub links: super::filter::Links,
    pub metrics: Arc<Metrics>,
    pub delivery: DeliveryConfig,
    pub notices: Notices,
}

impl Webhook {
    pub fn new(cfg: WebhookConfig, p: &Parts) -> Result<Webhook, crate::queue::QueueError> {
        let state = WebhookState::open(&p.queue, &cfg.id)?;
        let health = state.health();
        p.metrics
            .delivery_state
            .with_label_values(&[cfg.id.as_str()])
            .set(health.state.as_gauge());
        Ok(Webhook {
            consumer: consumer_name(&cfg.id),
            recorder: Recorder::new(p.log.clone(), &cfg.id),
            sender: Sender::new(
                &cfg,
                p.client.clone(),
                p.links.clone(),
                p.metrics.clone(),
                &p.delivery,
            ),
            notices: p.notices.clone(),
            cfg,
            queue: p.queue.clone(),
            state,
            metrics: p.metrics.clone(),
            delivery: p.delivery.clone(),
            health: parking_lot::Mutex::new(health),
            reactivated: Notify::new(),
            replays: Replays::default(),
            held: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn id(&self) -> &str {
        &self.cfg.id
    }

    /// Events per request.
    pub(super) fn per_request(&self) -> usize {
        if self.cfg.format.batches() {
            self.cfg.batch.max_events.max(1)
        } else {
            1
        }
    }

    /// Whether this webhook's format rebuilds events field by field, and so needs them
    /// read whole; the native format sends them as stored.
    pub(super) fn reads_whole_events(&self) -> bool {
        super::sender::reads_whole_events(&self.cfg)
    }

    /// Sends `members` as one request ([`Sender::send`]).
    pub async fn send(&self, members: &[Member]) -> Outcome {
        self.sender.send(&self.cfg, members).await
    }

    /// Events read from the queue per turn.
    pub(super) fn window(&self) -> usize {
        (self.per_request() * self.cfg.concurrency * 4).clamp(64, 4096)
    }

    pub async fn run(self: Arc<Self>, mut stop: Stop) {
        let mut head = self.queue.subscribe();
        let mut last_upkeep: Option<Instant> = None;
        tracing::info!(webhook = self.id(), url = %crate::redact::url(&self.cfg.url), format = self.cfg.format.as_str(), "delivering");
        while !stop.is_stopped() {
            match self.holding() {
                Some(Hold::Disabled) => {
                    self.flush_state();
                    tokio::select! {
                        _ = stop.stopped() => {}
                        _ = self.reactivated.notified() => {}
                    }
                    continue;
                }
                // Backing off: no request until it ends (a reactivation ends it too);
                // events wait in the queue and in their retries meanwhile.
                Some(Hold::Backoff(left)) => {
                    let wait = match self.flush_state() {
                        Some(d) => d.min(left),
                        None => left,
                    };
                    tokio::select! {
                        _ = stop.stopped() => {}
                        _ = self.reactivated.notified() => {}
                        _ = tokio::time::sleep(wait) => {}
                    }
                    continue;
                }
                None => {}
            }
            if last_upkeep.is_none_or(|t| t.elapsed() > UPKEEP_EVERY) {
                self.upkeep();
                last_upkeep = Some(Instant::now());
            }
            let mut wait = self.delivery.poll_interval;
            let mut worked = false;
            match self.retry_due(&mut stop).await {
                Progress::Worked => worked = true,
                Progress::Wait(d) => wait = wait.min(d),
                Progress::Idle => {}
            }
            if !stop.is_stopped() {
                match self.read_new(&mut stop).await {
                    Progress::Worked => worked = true,
                    Progress::Wait(d) => wait = wait.min(d),
                    Progress::Idle => {}
                }
            }
            if let Some(d) = self.flush_state() {
                wait = wait.min(d);
            }
            if !worked {
                tokio::select! {
                    _ = head.changed() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.stopped() => {}
                    _ = self.reactivated.notified() => {}
                }
            }
        }
        self.flush_log();
        tracing::info!(webhook = self.id(), "delivery stopped");
    }

    /// Puts the cursor and delivery state on disk within `queue.flush_interval` of
    /// their change, even when no new click comes to flush them. Returns how long
    /// until waiting changes are due.
    fn flush_state(&self) -> Option<Duration> {
        match self.queue.flush_if_due() {
            Ok(wait) => wait,
            Err(e) => {
                tracing::error!(webhook = self.id(), error = %e, "cannot flush delivery state");
                Some(self.delivery.poll_interval)
            }
        }
    }

    pub(super) fn flush_log(&self) {
        if let Err(e) = self.recorder.flush() {
            tracing::error!(webhook = self.id(), error = %e, "cannot write the delivery log");
        }
    }

    /// Prunes the delivery log to `delivery.log_retention` and removes dead letters
    /// whose events the queue no longer holds.
    fn upkeep(&self) {
        if let Err(e) = self.recorder.prune(self.delivery.log_retention) {
            tracing::error!(webhook = self.id(), error = %e, "cannot prune the delivery log");
        }
        match self.state.expire_dead(self.queue.first()) {
            Ok(0) => {}
            Ok(n) => {
                self.metrics
                    .delivery_dead_expired
                    .with_label_values(&[self.id()])
                    .inc_by(n as u64);
                tracing::info!(
                    webhook = self.id(),
                    expired = n,
                    "dead letters removed: the queue no longer holds their events"
                );
            }
            Err(e) => {
                tracing::error!(webhook = self.id(), error = %e, "cannot expire dead letters")
            }
        }
    }
}
