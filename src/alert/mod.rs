//! Alerts: telling a person, by mail or chat, that a webhook turned alerting, was
//! disabled or recovered, and that clicks are being dropped.
//!
//! The alert task runs on a thread and a small runtime of its own, so that an SMTP
//! server or a chat that hangs costs it alone: delivery hands it [`Notice`]s over a
//! bounded channel that never waits ([`crate::notice`]), and the request path hands it
//! nothing at all. Drops are read off the counters every [`DROP_LOOK`] (capture
//! channel full, queue full, disk below `queue.min_free_bytes`, spool full, evicted to
//! make room): one message when a spell of drops begins, one when none has come for
//! [`drops::DROPS_OVER`].
//!
//! Each `[[alerts]]` entry has its own rate limit ([`limit`]) and sends each message in
//! a task of its own with its `timeout`, so a slow mail server delays no chat message.
//! A reload swaps the entries; an entry whose id stays keeps its rate limit's history.
//! The stop waits at most [`STOP_WAIT`] for the task: messages still being sent then
//! are abandoned.

mod chat;
mod drops;
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
use drops::Drops;
use limit::Limit;
use message::Message;

/// How often the drop counters are read.
pub const DROP_LOOK: Duration = Duration::from_secs(1);
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
            limit.set(a.max_messages, a.per);
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
