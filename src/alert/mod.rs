//! Alerts: telling a person, by mail or chat, that a webhook turned alerting, was
//! disabled or recovered, and that clicks are being dropped.
//!
//! The alert task runs on a thread and a small runtime of its own, so that an SMTP
//! server or a chat that hangs costs it alone: delivery hands it [`Notice`]s over a
//! bounded channel that never waits ([`crate::notice`]), and the request path hands it
//! nothing at all. Drops are read off the counters every [`DROP_LOOK`] (capture
//! channel full, queue full, disk below `queue.min_free_bytes`, spool full, evicted to
//! make room): one message when a spell of drops begins, one when none has come for
//! [`DROPS_OVER`].
//!
//! Each `[[alerts]]` entry has its own rate limit ([`limit`]) and sends each message in
//! a task of its own with its `timeout`, so a slow mail server delays no chat message.
//! A reload swaps the entries; an entry whose id stays keeps its rate limit's history.
//! The stop waits at most [`STOP_WAIT`] for the task: messages still being sent then
//! are abandoned.

mod chat;
mod email;
pub mod limit;
pub mod message;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{AlertConfig, Channel, Config};
use crate::metrics::Metrics;
use crate::notice::{Notice, Notices};
use crate::shutdown::{Stop, Stopper};
use limit::Limit;
use message::Message;

/// How often the drop counters are read.
pub const DROP_LOOK: Duration = Duration::from_secs(1);
/// A spell of drops is over when none has come for this long.
pub const DROPS_OVER: Duration = Duration::from_secs(60);
/// How long a stop waits for the alert task.
pub const STOP_WAIT: Duration = Duration::from_secs(1);

/// What the task needs of the configuration, swapped whole by a reload.
struct Settings {
    alerts: Vec<AlertConfig>,
    allow_private: bool,
    client: reqwest::Client,
    origin: String,
}

impl Settings {
    fn of(cfg: &Config) -> anyhow::Result<Settings> {
        Ok(Settings {
            alerts: cfg.alerts.clone(),
            allow_private: cfg.delivery.allow_private_targets,
            client: crate::deliver::client(cfg.delivery.allow_private_targets)?,
            origin: message::origin(cfg.proxy.listen),
        })
    }
}

pub struct Alerts {
    settings: Arc<ArcSwap<Settings>>,
    notices: Notices,
    stopper: Stopper,
    thread: Mutex<Option<JoinHandle<()>>>,
    done: crossbeam_channel::Receiver<()>,
}

impl Alerts {
    pub fn start(cfg: &Config, metrics: Arc<Metrics>) -> anyhow::Result<Alerts> {
        let settings = Arc::new(ArcSwap::from_pointee(Settings::of(cfg)?));
        let (notices, rx) = Notices::channel(metrics.clone());
        let (stopper, stop) = Stop::new();
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let task = Task {
            settings: settings.clone(),
            metrics,
            limits: HashMap::new(),
            drops: Drops::default(),
        };
        let thread = std::thread::Builder::new()
            .name("clicktap-alerts".into())
            .spawn(move || {
                crate::background::mark_thread();
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => {
                        rt.block_on(task.run(rx, stop));
                        rt.shutdown_background();
                    }
                    Err(e) => tracing::error!(error = %e, "cannot start the alert task; no alerts are sent"),
                }
                let _ = done_tx.send(());
            })?;
        Ok(Alerts {
            settings,
            notices,
            stopper,
            thread: Mutex::new(Some(thread)),
            done,
        })
    }

    /// The sending end for delivery.
    pub fn notices(&self) -> Notices {
        self.notices.clone()
    }

    /// Takes a reloaded configuration's `[[alerts]]`.
    pub fn apply(&self, cfg: &Config) -> anyhow::Result<()> {
        self.settings.store(Arc::new(Settings::of(cfg)?));
        Ok(())
    }

    /// Stops the task, waiting at most [`STOP_WAIT`].
    pub fn stop(&self) {
        self.stopper.stop();
        if self.done.recv_timeout(STOP_WAIT).is_ok()
            && let Some(t) = self.thread.lock().take()
        {
            let _ = t.join();
        }
    }
}

struct Task {
    settings: Arc<ArcSwap<Settings>>,
    metrics: Arc<Metrics>,
    /// Each alert's rate limit, by id.
    limits: HashMap<String, Limit>,
    drops: Drops,
}

impl Task {
    async fn run(mut self, mut rx: tokio::sync::mpsc::Receiver<Notice>, mut stop: Stop) {
        let mut look = tokio::time::interval(DROP_LOOK);
        look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut open = true;
        loop {
            tokio::select! {
                n = rx.recv(), if open => match n {
                    Some(n) => {
                        let origin = self.settings.load().origin.clone();
                        self.tell(Message::webhook(&n, &origin));
                    }
                    None => open = false,
                },
                _ = look.tick() => {
                    let origin = self.settings.load().origin.clone();
                    if let Some(m) = self.drops.look(&self.metrics, Instant::now(), &origin) {
                        self.tell(m);
                    }
                }
                _ = stop.stopped() => break,
            }
        }
    }

    /// Sends `m` to every alert that wants it and whose rate limit lets it through,
    /// each in a task of its own.
    fn tell(&mut self, m: Message) {
        let settings = self.settings.load_full();
        self.limits
            .retain(|id, _| settings.alerts.iter().any(|a| &a.id == id));
        let now = Instant::now();
        for a in settings.alerts.iter() {
            if !a.wants(m.event, m.webhook.as_deref()) {
                continue;
            }
            let limit = self
                .limits
                .entry(a.id.clone())
                .or_insert_with(|| Limit::new(a.max_messages, a.per));
            let Some(suppressed) = limit.take(now) else {
                self.metrics
                    .alerts_suppressed
                    .with_label_values(&[a.id.as_str()])
                    .inc();
                continue;
            };
            let m = m.clone().with_suppressed(suppressed, a.max_messages, a.per);
            let (a, settings, metrics) = (a.clone(), settings.clone(), self.metrics.clone());
            tokio::spawn(async move {
                let sent = match &a.channel {
                    Channel::Email(e) => email::send(e, &m, a.timeout).await,
                    Channel::Chat(url) => {
                        chat::send(
                            &settings.client,
                            &url.0,
                            settings.allow_private,
                            &m,
                            a.timeout,
                        )
                        .await
                    }
                };
                let outcome = if sent.is_ok() { "sent" } else { "failed" };
                metrics
                    .alerts_sent
                    .with_label_values(&[a.id.as_str(), outcome])
                    .inc();
                match sent {
                    Ok(()) => tracing::info!(alert = a.id, subject = m.subject, "alert sent"),
                    Err(e) => tracing::warn!(
                        alert = a.id,
                        subject = m.subject,
                        error = e,
                        "alert not sent"
                    ),
                }
            });
        }
    }
}

/// The drop counters as last read, and whether a spell of drops is on.
#[derive(Default)]
struct Drops {
    last: Option<[u64; 5]>,
    spell: Option<Spell>,
}

struct Spell {
    last_drop: Instant,
    total: u64,
}

const DROP_REASONS: [&str; 5] = [
    "capture channel full (enrichment behind)",
    "queue full (queue.max_events or queue.max_bytes)",
    "disk below queue.min_free_bytes",
    "captured before the queue opened, beyond queue.spool_bytes",
    "evicted unread to make room (queue.when_full = drop_oldest)",
];

impl Drops {
    /// Reads the counters; a message when a spell of drops begins or ends.
    fn look(&mut self, m: &Metrics, now: Instant, origin: &str) -> Option<Message> {
        let read = [
            m.capture_dropped_full.get(),
            m.queue_dropped_full.get(),
            m.queue_dropped_no_space.get(),
            m.queue_dropped_spool_full.get(),
            m.queue_evicted.get(),
        ];
        let last = self.last.replace(read).unwrap_or([0; 5]);
        let new: Vec<(&str, u64)> = DROP_REASONS
            .iter()
            .zip(read.iter().zip(last.iter()))
            .map(|(why, (r, l))| (*why, r.saturating_sub(*l)))
            .collect();
        let dropped: u64 = new.iter().map(|n| n.1).sum();
        match &mut self.spell {
            None if dropped > 0 => {
                self.spell = Some(Spell {
                    last_drop: now,
                    total: dropped,
                });
                Some(Message::dropping(&new, origin))
            }
            Some(s) if dropped > 0 => {
                s.last_drop = now;
                s.total += dropped;
                None
            }
            Some(s) if now.duration_since(s.last_drop) >= DROPS_OVER => {
                let total = s.total;
                self.spell = None;
                Some(Message::no_longer_dropping(total, origin))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spell_of_drops_is_told_once_when_it_begins_and_once_when_it_ends() {
        let m = Metrics::new();
        let mut d = Drops::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(d.look(&m, at(0), "").is_none());
        m.queue_dropped_full.inc_by(3);
        m.queue_dropped_no_space.inc();
        let first = d.look(&m, at(1), "").expect("a spell begins");
        assert!(
            first
                .body
                .contains("queue full (queue.max_events or queue.max_bytes): 3"),
            "{}",
            first.body
        );
        assert!(
            first.body.contains("disk below queue.min_free_bytes: 1"),
            "{}",
            first.body
        );
        for s in 2..30 {
            m.capture_dropped_full.inc();
            assert!(d.look(&m, at(s), "").is_none(), "one message per spell");
        }
        assert!(d.look(&m, at(60), "").is_none(), "not over yet");
        let over = d.look(&m, at(89), "").expect("the spell is over");
        assert!(over.subject.contains("32 were"), "{}", over.subject);
    }
}
