//! Delivery: the queue's events to each webhook, at least once, in the webhook's
//! format, signed, authenticated, retried, with health, a delivery log and dead letters.
//!
//! Delivery runs on its own tokio runtime in its own threads, apart from Pingora's:
//! a hanging receiver or a slow token endpoint can use up delivery's time, never the
//! proxy's. Each webhook is an independent consumer of the queue ([`webhook`]); a
//! turn of it reads ([`select`]), groups ([`group`]), sends ([`dispatch`],
//! [`attempt`]) and settles ([`settle`]: the one place that decides what becomes of an
//! event after an attempt).
//!
//! Retry policy: an event that fails is tried again after `retry.schedule` (by
//! default exponential from 5 s, jittered), up to `retry.max_attempts` attempts in
//! all, each after the answer's `Retry-After` when it has one. After the last attempt
//! the event goes to the webhook's dead letters, kept for replay. A 3xx is a failure:
//! redirects are never followed. Only a 2xx within `timeout` is a success. As the
//! Standard Webhooks spec asks, a 410 disables the webhook at once and a 429, 502, 503
//! or 504 backs the whole webhook off, using up no attempt ([`health`]).
//!
//! Stopping is bounded: requests in flight get `delivery.stop_timeout`, then they are
//! recorded as retries and delivery ends; [`Delivery::stop`] waits a little longer than
//! that for the threads, and no longer.

mod attempt;
mod auth;
mod dispatch;
pub mod event_lines;
pub mod event_query;
mod filter;
pub mod formats;
mod group;
pub mod guard;
pub mod health;
mod limiter;
pub mod log;
mod log_value;
pub mod member;
pub mod messages;
mod operations;
pub mod retry;
mod select;
pub mod sender;
pub mod sent;
mod settle;
pub mod sign;
pub mod state;
mod supervisor;
pub mod test_event;
pub mod webhook;

use parking_lot::Mutex;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::queue::Queue;
use crate::shutdown::{Stop, Stopper};
pub use attempt::{Class, Outcome};
use log::DeliveryLog;
use supervisor::{Command, Supervisor};
use webhook::{Parts, Webhook, consumer_name};

/// Beyond `delivery.stop_timeout`, how long [`Delivery::stop`] waits for the last
/// records and the delivery log to be written before it gives up on the threads.
pub const STOP_MARGIN: Duration = Duration::from_secs(2);

/// The running delivery.
pub struct Delivery {
    stopper: Stopper,
    thread: Mutex<Option<JoinHandle<()>>>,
    done: crossbeam_channel::Receiver<()>,
    stop_timeout: Duration,
    handle: Handle,
    control: Mutex<Control>,
}

/// What a reload changes: the parts webhooks share, and the running set.
struct Control {
    parts: Arc<Parts>,
    commands: tokio::sync::mpsc::UnboundedSender<Command>,
}

/// What the admin API reaches of the running delivery: the webhooks (swapped whole when
/// the set changes), the delivery log, and delivery's runtime, on which requests the
/// operator asks for (a test event) are sent, away from the admin listener's threads.
#[derive(Clone)]
pub struct Handle {
    webhooks: Arc<arc_swap::ArcSwap<Vec<Arc<Webhook>>>>,
    runtime: tokio::runtime::Handle,
    pub log: DeliveryLog,
}

impl Handle {
    /// The running webhooks.
    pub fn webhooks(&self) -> Arc<Vec<Arc<Webhook>>> {
        self.webhooks.load_full()
    }

    pub fn webhook(&self, id: &str) -> Option<Arc<Webhook>> {
        self.webhooks.load().iter().find(|w| w.id() == id).cloned()
    }

    /// Runs `f` on delivery's runtime and waits for it; `None` when the task failed.
    pub async fn run<F>(&self, f: F) -> Option<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(f).await.ok()
    }
}

/// What a reload did to the webhooks.
#[derive(Debug, Default, serde::Serialize)]
pub struct Applied {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

impl Delivery {
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Applies a reloaded configuration: webhooks added are started (or listed, paused,
    /// with a cursor, when `enabled = false`), those whose table (or `[delivery]`)
    /// changed are replaced, those removed are stopped and forgotten, and the
    /// `[[links]]` are swapped. Each change waits for the webhook's requests in
    /// flight (`delivery.stop_timeout`) in the background; this returns at once.
    pub fn apply(&self, cfg: &Config) -> anyhow::Result<Applied> {
        let mut control = self.control.lock();
        let old = control.parts.clone();
        old.links.store(Arc::new(cfg.links.clone()));
        let parts = Arc::new(Parts {
            queue: old.queue.clone(),
            log: old.log.clone(),
            client: client(cfg.delivery.allow_private_targets)?,
            links: old.links.clone(),
            metrics: old.metrics.clone(),
            delivery: cfg.delivery.clone(),
            notices: old.notices.clone(),
        });
        let running = self.handle.webhooks();
        let mut applied = Applied::default();
        let mut next = Vec::new();
        let mut commands = Vec::new();
        // Paused webhooks (`enabled = false`) are listed like the others and keep a
        // cursor, so that once enabled they receive what happened meanwhile; only
        // enabled ones run.
        for w in &cfg.webhooks {
            match running.iter().find(|r| r.id() == w.id) {
                Some(r) if r.cfg.fingerprint == w.fingerprint => next.push(r.clone()),
                found => {
                    start_cursor(&parts.queue, &w.id)?;
                    let new = Arc::new(Webhook::new(w.clone(), &parts)?);
                    if found.is_some() {
                        applied.changed.push(w.id.clone());
                    } else {
                        applied.added.push(w.id.clone());
                    }
                    next.push(new.clone());
                    if w.enabled {
                        commands.push(Command::Start(new));
                    } else if found.is_some_and(|r| r.cfg.enabled) {
                        tracing::info!(webhook = w.id, "webhook paused: its events wait for it");
                        commands.push(Command::Stop {
                            id: w.id.clone(),
                            forget: false,
                        });
                    }
                }
            }
        }
        for r in running.iter() {
            if next.iter().any(|n| n.id() == r.id()) {
                continue;
            }
            let configured = cfg.webhooks.iter().any(|w| w.id == r.id());
            applied.removed.push(r.id().to_string());
            commands.push(Command::Stop {
                id: r.id().to_string(),
                forget: !configured,
            });
        }
        // Webhooks neither running nor configured any more (disabled, then removed).
        for id in old_ids(&old.queue)? {
            if !cfg.webhooks.iter().any(|w| w.id == id) && !running.iter().any(|r| r.id() == id) {
                commands.push(Command::Stop { id, forget: true });
            }
        }
        self.handle.webhooks.store(Arc::new(next));
        for c in commands {
            let _ = control.commands.send(c);
        }
        control.parts = parts;
        Ok(applied)
    }

    /// Stops every webhook: requests in flight get `delivery.stop_timeout` to finish,
    /// then they are recorded as retries. Waits at most that long plus [`STOP_MARGIN`].
    pub fn stop(&self) {
        self.stopper.stop();
        let bound = self.stop_timeout + STOP_MARGIN;
        match self.done.recv_timeout(bound) {
            Ok(()) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                if let Some(t) = self.thread.lock().take() {
                    let _ = t.join();
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => tracing::error!(
                waited = %crate::logging::duration(bound),
                "delivery did not stop in time; stopping without it (its events are retried after the restart)"
            ),
        }
    }
}

/// The HTTP client every webhook shares: keep-alive pool, no redirects, no proxy
/// from the environment, and the SSRF guard's resolver unless private targets are
/// allowed. Every request sets its own deadline (the webhook's `timeout`).
pub fn client(allow_private: bool) -> Result<reqwest::Client, reqwest::Error> {
    let mut b = crate::tls::client_builder()
        .pool_max_idle_per_host(64)
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true);
    if !allow_private {
        b = b.dns_resolver(guard::GuardedResolver);
    }
    b.build()
}

/// Gives a webhook seen for the first time (enabled or paused) a cursor at the head,
/// so that one paused receives what happens meanwhile once enabled.
fn start_cursor(queue: &Queue, id: &str) -> Result<(), crate::queue::QueueError> {
    let name = consumer_name(id);
    if queue.cursor(&name)?.is_none() {
        queue.set_cursor(&name, queue.head())?;
    }
    Ok(())
}

/// The ids of webhooks the queue holds something for (a cursor or state).
fn old_ids(queue: &Queue) -> anyhow::Result<Vec<String>> {
    let mut ids: Vec<String> = queue
        .cursors()?
        .into_iter()
        .filter_map(|(name, _)| name.strip_prefix("webhook:").map(str::to_string))
        .collect();
    for name in queue.state_names()? {
        if let Some(id) = name.strip_prefix("webhook:")
            && !ids.iter().any(|i| i == id)
        {
            ids.push(id.to_string());
        }
    }
    Ok(ids)
}

/// Forgets what the queue holds for a webhook no longer configured: the cursor (so that
/// its unread events stop counting as unread), retries, dead letters, health and the
/// delivery log. A webhook added again later under the same id starts afresh.
fn forget(queue: &Queue, log: &DeliveryLog, id: &str) {
    let forgotten = (|| -> Result<usize, crate::queue::QueueError> {
        queue.remove_cursor(&consumer_name(id))?;
        queue.drop_state(&state::tree_name(id))?;
        log.remove_webhook(id)
    })();
    match forgotten {
        Ok(entries) => tracing::info!(
            webhook = id,
            log_entries = entries,
            "webhook no longer configured: its cursor, retries, dead letters, health and delivery log are removed"
        ),
        Err(e) => {
            tracing::error!(webhook = id, error = %e, "cannot remove what the queue holds for a webhook no longer configured")
        }
    }
}

pub fn start(
    cfg: &Config,
    queue: Queue,
    metrics: Arc<Metrics>,
    notices: crate::notice::Notices,
) -> anyhow::Result<Delivery> {
    let d = &cfg.delivery;
    let log = DeliveryLog::open(&queue, d.log_max_bytes, metrics.clone())?;
    for id in old_ids(&queue)? {
        if !cfg.webhooks.iter().any(|w| w.id == id) {
            forget(&queue, &log, &id);
        }
    }
    for w in &cfg.webhooks {
        start_cursor(&queue, &w.id)?;
    }
    let parts = Arc::new(Parts {
        queue: queue.clone(),
        log: log.clone(),
        client: client(d.allow_private_targets)?,
        links: Arc::new(arc_swap::ArcSwap::from_pointee(cfg.links.clone())),
        metrics: metrics.clone(),
        delivery: d.clone(),
        notices,
    });
    let mut webhooks = Vec::new();
    for w in &cfg.webhooks {
        webhooks.push(Arc::new(Webhook::new(w.clone(), &parts)?));
    }
    let enabled: Vec<_> = webhooks.iter().filter(|w| w.cfg.enabled).cloned().collect();
    for w in cfg.webhooks.iter().filter(|w| !w.enabled) {
        tracing::info!(
            webhook = w.id,
            "webhook disabled in the config: its events wait for it"
        );
    }
    let nice = d.nice;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(d.threads)
        .thread_name("clicktap-deliver")
        .on_thread_start(move || behind_the_proxy(nice))
        .enable_all()
        .build()?;
    let (stopper, stop) = Stop::new();
    let (done_tx, done) = crossbeam_channel::bounded(1);
    let (commands, commands_rx) = tokio::sync::mpsc::unbounded_channel();
    let delivery = Delivery {
        stopper,
        thread: Mutex::new(None),
        done,
        stop_timeout: d.stop_timeout,
        handle: Handle {
            webhooks: Arc::new(arc_swap::ArcSwap::from_pointee(webhooks)),
            runtime: rt.handle().clone(),
            log: log.clone(),
        },
        control: Mutex::new(Control { parts, commands }),
    };
    let forget_queue = queue.clone();
    let supervisor = Supervisor::new(
        stop,
        Box::new(move |id: &str| forget(&forget_queue, &log, id)),
    );
    let thread = std::thread::Builder::new()
        .name("clicktap-deliver-main".into())
        .spawn(move || {
            behind_the_proxy(nice);
            rt.block_on(supervisor.run(enabled, commands_rx));
            let _ = done_tx.send(());
            // Tasks still running after the stop (none, unless one ignores it) are
            // not waited for.
            rt.shutdown_background();
        })?;
    *delivery.thread.lock() = Some(thread);
    Ok(delivery)
}

/// Delivery threads yield to the proxy's: batch scheduling like every background
/// thread, and a nice value (`delivery.nice`), so that on a machine short of CPU the
/// visitors are served first and webhooks wait in the queue, to catch up when the load
/// eases. Enrichment keeps its full share: it must keep up with the channel.
fn behind_the_proxy(nice: i32) {
    crate::background::mark_thread();
    crate::background::set_nice(nice);
}
