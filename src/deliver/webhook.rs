//! One webhook's delivery loop: a consumer of the queue with its own cursor, so a
//! slow or dead receiver never delays another.
//!
//! Each turn it first sends retries that are due, then reads new events from its
//! cursor, keeps those its filter selects, groups them (one per request, or batches),
//! sends up to `concurrency` requests at once, and records failures as pending
//! retries *before* moving the cursor past them. A crash between a send and the
//! cursor's move means the events are sent again after a restart: at-least-once, with
//! the same message ids.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::attempt::Outcome;
use super::auth::Authenticator;
use super::filter;
use super::health::{Health, State};
use super::log::{Answer, DeliveryLog, Recorder, Request};
use super::member::Member;
use super::state::{Dead, Pending, WebhookState};
use crate::config::{Format, LinkMeta, WebhookConfig};
use crate::metrics::Metrics;
use crate::queue::{Queue, Stored};
use crate::run::now_ms;

/// Spaces requests `1 / rate_limit` seconds apart.
pub struct Limiter {
    interval: Option<Duration>,
    next: parking_lot::Mutex<Instant>,
}

impl Limiter {
    fn new(rate: Option<f64>) -> Limiter {
        Limiter {
            interval: rate.map(|r| Duration::from_secs_f64(1.0 / r)),
            next: parking_lot::Mutex::new(Instant::now()),
        }
    }

    pub async fn wait(&self) {
        let Some(iv) = self.interval else { return };
        let slot = {
            let mut next = self.next.lock();
            let slot = (*next).max(Instant::now());
            *next = slot + iv;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

pub struct Webhook {
    pub cfg: WebhookConfig,
    pub consumer: String,
    pub(super) queue: Queue,
    pub(super) state: WebhookState,
    recorder: Recorder,
    pub(super) client: reqwest::Client,
    pub(super) auth: Authenticator,
    pub(super) links: Arc<Vec<LinkMeta>>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) allow_private: bool,
    pub(super) limiter: Limiter,
    pub(super) log_body_bytes: usize,
    pub(super) log_retention: Duration,
    pub(super) poll_interval: Duration,
    health: parking_lot::Mutex<Health>,
    pub reactivated: Notify,
}

/// The cursor name of a webhook in the queue.
pub fn consumer_name(id: &str) -> String {
    format!("webhook:{id}")
}

pub struct Parts {
    pub queue: Queue,
    pub log: DeliveryLog,
    pub client: reqwest::Client,
    pub links: Arc<Vec<LinkMeta>>,
    pub metrics: Arc<Metrics>,
    pub allow_private: bool,
    pub log_body_bytes: usize,
    pub log_retention: Duration,
    pub poll_interval: Duration,
}

enum Progress {
    Worked,
    /// A batch is filling: look again after this long at the latest.
    Filling(Duration),
    Idle,
}

impl Webhook {
    pub fn new(cfg: WebhookConfig, p: Parts) -> Result<Webhook, crate::queue::QueueError> {
        let state = WebhookState::open(&p.queue, &cfg.id)?;
        let health = state.health();
        p.metrics
            .delivery_state
            .with_label_values(&[cfg.id.as_str()])
            .set(health.state.as_gauge());
        Ok(Webhook {
            consumer: consumer_name(&cfg.id),
            recorder: Recorder::new(p.log, &cfg.id),
            auth: Authenticator::new(
                cfg.auth.clone(),
                &cfg.id,
                p.metrics.clone(),
                p.allow_private,
            ),
            limiter: Limiter::new(cfg.rate_limit),
            cfg,
            queue: p.queue,
            state,
            client: p.client,
            links: p.links,
            metrics: p.metrics,
            allow_private: p.allow_private,
            log_body_bytes: p.log_body_bytes,
            log_retention: p.log_retention,
            poll_interval: p.poll_interval,
            health: parking_lot::Mutex::new(health),
            reactivated: Notify::new(),
        })
    }

    fn id(&self) -> &str {
        &self.cfg.id
    }

    /// Events per request.
    fn per_request(&self) -> usize {
        if self.cfg.format.batches() {
            self.cfg.batch.max_events.max(1)
        } else {
            1
        }
    }

    /// Whether this webhook's format rebuilds events field by field, and so needs them
    /// read whole; the native format sends them as stored.
    fn reads_whole_events(&self) -> bool {
        self.cfg.format != Format::Native
    }

    /// Events read from the queue per turn.
    fn window(&self) -> usize {
        (self.per_request() * self.cfg.concurrency * 4).clamp(64, 4096)
    }

    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut head = self.queue.subscribe();
        let mut last_prune: Option<Instant> = None;
        tracing::info!(webhook = self.id(), url = %redacted(&self.cfg.url), format = self.cfg.format.as_str(), "delivering");
        loop {
            if *stop.borrow() {
                break;
            }
            if self.health.lock().state == State::Disabled {
                tokio::select! {
                    _ = stop.changed() => {}
                    _ = self.reactivated.notified() => {}
                }
                continue;
            }
            if last_prune.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                self.prune_log();
                last_prune = Some(Instant::now());
            }
            let now = now_ms();
            let (due, next_due) = self.state.due(now, self.window());
            let mut worked = false;
            if !due.is_empty() {
                self.retry(due).await;
                worked = true;
            }
            let mut wait = self.poll_interval;
            match self.read_new().await {
                Progress::Worked => worked = true,
                Progress::Filling(d) => wait = wait.min(d),
                Progress::Idle => {}
            }
            if let Some(at) = next_due {
                wait = wait.min(Duration::from_millis(at.saturating_sub(now_ms())));
            }
            if !worked {
                tokio::select! {
                    _ = head.changed() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
            }
        }
        self.flush_log();
        tracing::info!(webhook = self.id(), "delivery stopped");
    }

    /// New events from the cursor on.
    async fn read_new(self: &Arc<Self>) -> Progress {
        let first = self.queue.first();
        let head = self.queue.head();
        let cursor = match self.queue.cursor(&self.consumer) {
            Ok(c) => c.unwrap_or(head).max(first),
            Err(e) => {
                tracing::error!(webhook = self.id(), error = %e, "cannot read the cursor");
                return Progress::Idle;
            }
        };
        self.metrics
            .delivery_lag
            .with_label_values(&[self.id()])
            .set(head.saturating_sub(cursor) as i64);
        if cursor >= head {
            return Progress::Idle;
        }
        let window = self.window();
        let stored = match self.queue.read(cursor, window) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(webhook = self.id(), error = %e, "cannot read the queue");
                return Progress::Idle;
            }
        };
        let Some(last) = stored.last().map(|s| s.seq) else {
            return Progress::Idle;
        };
        let reached_head = stored.len() < window;
        let members = self.select(stored);
        let per = self.per_request();
        if per > 1 && reached_head && !members.is_empty() && members.len() < per {
            let oldest = members[0].event_age();
            if oldest < self.cfg.batch.max_wait {
                return Progress::Filling(self.cfg.batch.max_wait - oldest);
            }
        }
        self.deliver(members).await;
        if let Err(e) = self.queue.set_cursor(&self.consumer, last + 1) {
            tracing::error!(webhook = self.id(), error = %e, "cannot move the cursor");
        }
        Progress::Worked
    }

    /// Decodes stored events and keeps those the filter selects.
    fn select(&self, stored: Vec<Stored>) -> Vec<Member> {
        let mut out = Vec::with_capacity(stored.len());
        let mut skipped = 0u64;
        for s in stored {
            let seq = s.seq;
            let member = match Member::read(s, self.reads_whole_events()) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(webhook = self.id(), seq, error = %e, "undecodable event; moved to dead letters");
                    self.dead(seq, 0, &format!("undecodable event: {e}"));
                    continue;
                }
            };
            let meta = filter::link_meta(&self.links, &member.head);
            if filter::selects(&self.cfg.filter, &member.head, meta) {
                out.push(member);
            } else {
                skipped += 1;
            }
        }
        if skipped > 0 {
            self.metrics
                .delivery_skipped
                .with_label_values(&[self.id()])
                .inc_by(skipped);
        }
        out
    }

    /// Retries that are due.
    async fn retry(self: &Arc<Self>, due: Vec<(u64, Pending)>) {
        let mut members = Vec::with_capacity(due.len());
        for (seq, p) in due {
            match self.queue.get(seq) {
                Ok(Some(s)) => match Member::read(s, self.reads_whole_events()) {
                    Ok(m) => members.push(Member {
                        attempts_before: p.attempts,
                        pending: true,
                        ..m
                    }),
                    Err(e) => self.dead(seq, p.attempts, &format!("undecodable event: {e}")),
                },
                Ok(None) => self.dead(
                    seq,
                    p.attempts,
                    &format!(
                        "left the queue (retention or room) before delivery; last error: {}",
                        p.last_error
                    ),
                ),
                Err(e) => {
                    tracing::error!(webhook = self.id(), error = %e, "cannot read a retry");
                    return;
                }
            }
        }
        self.deliver(members).await;
    }

    /// Sends `members` in groups, `concurrency` requests at a time, and records the
    /// outcome of each.
    async fn deliver(self: &Arc<Self>, members: Vec<Member>) {
        let per = self.per_request();
        let mut groups: Vec<Vec<Member>> = Vec::new();
        for m in members {
            match groups.last_mut() {
                Some(g) if g.len() < per => g.push(m),
                _ => groups.push(vec![m]),
            }
        }
        let mut running = JoinSet::new();
        for g in groups {
            if running.len() >= self.cfg.concurrency {
                let _ = running.join_next().await;
            }
            let me = self.clone();
            running.spawn(async move {
                let outcome = me.send(&g).await;
                me.settle(&g, &outcome);
            });
        }
        while running.join_next().await.is_some() {}
        self.flush_log();
    }

    fn flush_log(&self) {
        if let Err(e) = self.recorder.flush() {
            tracing::error!(webhook = self.id(), error = %e, "cannot write the delivery log");
        }
    }

    /// Records one request's outcome for each of its events.
    fn settle(&self, group: &[Member], o: &Outcome) {
        let now = now_ms();
        let id = self.id();
        let m = &self.metrics;
        let outcome = if o.delivered { "success" } else { "failure" };
        m.delivery_attempts.with_label_values(&[id, outcome]).inc();
        m.delivery_latency
            .with_label_values(&[id])
            .observe(o.latency.as_secs_f64());
        let request = Request {
            at_ms: now,
            answer: Answer {
                at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
                status: o.status,
                latency_ms: o.latency.as_millis() as u64,
                error: o.error.clone(),
                response: o.response.clone(),
            },
            events: group
                .iter()
                .map(|m| (m.seq, m.attempts_before + 1, m.head.id.to_string()))
                .collect(),
        };
        if let Err(e) = self.recorder.record(request) {
            tracing::error!(webhook = id, error = %e, "cannot write the delivery log");
        }
        for member in group {
            let attempt = member.attempts_before + 1;
            let error = o.error.as_deref().unwrap_or("");
            let result = if o.delivered {
                m.delivery_delivered.with_label_values(&[id]).inc();
                if member.pending {
                    self.state.clear_pending(member.seq)
                } else {
                    Ok(())
                }
            } else if attempt >= self.cfg.retry.max_attempts {
                self.dead(member.seq, attempt, error);
                Ok(())
            } else {
                m.delivery_retried.with_label_values(&[id]).inc();
                let delay = o
                    .retry_after
                    .unwrap_or_else(|| super::retry::delay(&self.cfg.retry, attempt));
                self.state.set_pending(
                    member.seq,
                    &Pending {
                        attempts: attempt,
                        next_at_ms: now + delay.as_millis() as u64,
                        last_error: error.to_string(),
                    },
                )
            };
            if let Err(e) = result {
                tracing::error!(webhook = id, seq = member.seq, error = %e, "cannot record a delivery outcome");
            }
        }
        self.update_health(o, now);
    }

    fn dead(&self, seq: u64, attempts: u32, error: &str) {
        let d = Dead {
            attempts,
            at_ms: now_ms(),
            last_error: error.to_string(),
        };
        // Stored before it is counted: a dead letter the metric shows can be replayed.
        if let Err(e) = self.state.add_dead(seq, &d) {
            tracing::error!(webhook = self.id(), error = %e, "cannot write a dead letter");
        }
        self.metrics
            .delivery_dead
            .with_label_values(&[self.id()])
            .inc();
        tracing::warn!(
            webhook = self.id(),
            seq,
            attempts,
            error,
            "event moved to dead letters"
        );
    }

    fn update_health(&self, o: &Outcome, now: u64) {
        let mut h = self.health.lock();
        let changed = if o.delivered {
            h.success(now)
        } else {
            let error = o.error.as_deref().unwrap_or("failed");
            let c = h.failure(now, self.cfg.disable_after.as_millis() as u64, error);
            if c.is_none() {
                // Keep the failure times durable even without a transition, so that
                // `disable_after` counts across restarts.
                let _ = self.state.set_health(&h);
            }
            c
        };
        let Some(state) = changed else { return };
        let _ = self.state.set_health(&h);
        self.metrics
            .delivery_state
            .with_label_values(&[self.id()])
            .set(state.as_gauge());
        match state {
            State::Healthy => tracing::info!(webhook = self.id(), "webhook healthy again"),
            State::Alerting => {
                tracing::warn!(webhook = self.id(), error = ?h.last_error, "webhook failing: alerting")
            }
            State::Disabled => tracing::error!(
                webhook = self.id(),
                disable_after = ?self.cfg.disable_after,
                error = ?h.last_error,
                "webhook failed without a success for disable_after: disabled; its events are kept until it is reactivated"
            ),
        }
    }

    /// Back to healthy by hand: attempts resume from where they stopped.
    pub fn reactivate(&self) {
        let mut h = self.health.lock();
        if h.reactivate().is_some() {
            let _ = self.state.set_health(&h);
            self.metrics
                .delivery_state
                .with_label_values(&[self.id()])
                .set(State::Healthy.as_gauge());
            tracing::info!(webhook = self.id(), "webhook reactivated");
        }
        self.reactivated.notify_one();
    }

    pub fn dead_letters(&self) -> usize {
        self.state.dead().len()
    }

    /// Puts every dead letter back in line for an attempt now.
    pub fn replay_dead(&self) -> Result<usize, crate::queue::QueueError> {
        let n = self.state.replay_dead(now_ms())?;
        tracing::info!(webhook = self.id(), replayed = n, "dead letters replayed");
        self.reactivated.notify_one();
        Ok(n)
    }

    pub fn health(&self) -> Health {
        self.health.lock().clone()
    }

    fn prune_log(&self) {
        let cutoff = now_ms().saturating_sub(self.log_retention.as_millis() as u64);
        if let Err(e) = self.recorder.prune(cutoff) {
            tracing::error!(webhook = self.id(), error = %e, "cannot prune the delivery log");
        }
    }
}

/// A URL fit for logs: no userinfo, no query (either may hold a credential).
pub fn redacted(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    let had_query = u.query().is_some();
    u.set_query(None);
    if had_query {
        format!("{u}?…")
    } else {
        u.to_string()
    }
}
