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
//! all; a 429 waits for its `Retry-After`. After the last attempt the event goes to the
//! webhook's dead letters, kept for replay. A 3xx is a failure: redirects are never
//! followed. Only a 2xx within `timeout` is a success.
//!
//! Stopping is bounded: requests in flight get `delivery.stop_timeout`, then they are
//! recorded as retries and delivery ends; [`Delivery::stop`] waits a little longer than
//! that for the threads, and no longer.

mod attempt;
mod auth;
mod dispatch;
mod filter;
pub mod formats;
mod group;
pub mod guard;
pub mod health;
mod limiter;
pub mod log;
pub mod member;
mod operations;
mod retry;
mod select;
mod settle;
pub mod sign;
pub mod state;
pub mod test_event;
pub mod webhook;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::queue::Queue;
use crate::shutdown::{Stop, Stopper};
use log::DeliveryLog;
use webhook::{Parts, Webhook, consumer_name};

/// Beyond `delivery.stop_timeout`, how long [`Delivery::stop`] waits for the last
/// records and the delivery log to be written before it gives up on the threads.
pub const STOP_MARGIN: Duration = Duration::from_secs(2);

/// A webhook task that failed is started again after this long.
const RESTART_AFTER: Duration = Duration::from_secs(1);

/// The running delivery.
pub struct Delivery {
    stopper: Stopper,
    thread: Option<JoinHandle<()>>,
    done: crossbeam_channel::Receiver<()>,
    stop_timeout: Duration,
    handle: Handle,
}

/// What the admin API reaches of the running delivery: the webhooks (swapped whole when
/// the set changes), the delivery log, and delivery's runtime, on which requests the
/// operator asks for (a test event) are sent, away from the admin listener's threads.
#[derive(Clone)]
pub struct Handle {
    webhooks: Arc<arc_swap::ArcSwap<Vec<Arc<Webhook>>>>,
    runtime: Option<tokio::runtime::Handle>,
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

    /// Runs `f` on delivery's runtime and waits for it; `None` when delivery has none
    /// (no webhook enabled) or the task failed.
    pub async fn run<F>(&self, f: F) -> Option<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.as_ref()?.spawn(f).await.ok()
    }
}

impl Delivery {
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Stops every webhook: requests in flight get `delivery.stop_timeout` to finish,
    /// then they are recorded as retries. Waits at most that long plus [`STOP_MARGIN`].
    pub fn stop(mut self) {
        self.stopper.stop();
        let bound = self.stop_timeout + STOP_MARGIN;
        match self.done.recv_timeout(bound) {
            Ok(()) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => tracing::error!(
                waited = ?bound,
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

/// Forgets what the queue holds for webhooks no longer configured: the cursor (so that
/// their unread events stop counting as unread), retries, dead letters, health and
/// the delivery log. A webhook added again later under the same id starts afresh.
fn forget_removed(cfg: &Config, queue: &Queue, log: &DeliveryLog) -> anyhow::Result<()> {
    let configured = |id: &str| cfg.webhooks.iter().any(|w| w.id == id);
    for (name, _) in queue.cursors()? {
        if let Some(id) = name.strip_prefix("webhook:")
            && !configured(id)
        {
            queue.remove_cursor(&name)?;
        }
    }
    for name in queue.state_names()? {
        if let Some(id) = name.strip_prefix("webhook:")
            && !configured(id)
        {
            queue.drop_state(&name)?;
            let entries = log.remove_webhook(id)?;
            tracing::info!(
                webhook = id,
                log_entries = entries,
                "webhook no longer configured: its cursor, retries, dead letters, health and delivery log are removed"
            );
        }
    }
    Ok(())
}

pub fn start(cfg: &Config, queue: Queue, metrics: Arc<Metrics>) -> anyhow::Result<Delivery> {
    let d = &cfg.delivery;
    let log = DeliveryLog::open(&queue, d.log_max_bytes, metrics.clone())?;
    forget_removed(cfg, &queue, &log)?;
    // Every configured webhook gets a cursor at the head when first seen, so that
    // one configured but disabled receives what happened meanwhile once enabled.
    for w in &cfg.webhooks {
        let name = consumer_name(&w.id);
        if queue.cursor(&name)?.is_none() {
            queue.set_cursor(&name, queue.head())?;
        }
    }
    let parts = Parts {
        queue: queue.clone(),
        log: log.clone(),
        client: client(d.allow_private_targets)?,
        links: Arc::new(cfg.links.clone()),
        metrics: metrics.clone(),
        delivery: d.clone(),
    };
    let mut webhooks = Vec::new();
    for w in cfg.webhooks.iter().filter(|w| w.enabled) {
        webhooks.push(Arc::new(Webhook::new(w.clone(), &parts)?));
    }
    for w in cfg.webhooks.iter().filter(|w| !w.enabled) {
        tracing::info!(
            webhook = w.id,
            "webhook disabled in the config: its events wait for it"
        );
    }
    let (stopper, stop) = Stop::new();
    let (done_tx, done) = crossbeam_channel::bounded(1);
    let mut delivery = Delivery {
        stopper,
        thread: None,
        done,
        stop_timeout: d.stop_timeout,
        handle: Handle {
            webhooks: Arc::new(arc_swap::ArcSwap::from_pointee(webhooks.clone())),
            runtime: None,
            log,
        },
    };
    if webhooks.is_empty() {
        let _ = done_tx.send(());
        return Ok(delivery);
    }
    let nice = d.nice;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(d.threads)
        .thread_name("clicktap-deliver")
        .on_thread_start(move || behind_the_proxy(nice))
        .enable_all()
        .build()?;
    delivery.handle.runtime = Some(rt.handle().clone());
    delivery.thread = Some(
        std::thread::Builder::new()
            .name("clicktap-deliver-main".into())
            .spawn(move || {
                behind_the_proxy(nice);
                rt.block_on(supervise(webhooks, stop));
                let _ = done_tx.send(());
                // Tasks still running after the stop (none, unless one ignores it) are
                // not waited for.
                rt.shutdown_background();
            })?,
    );
    Ok(delivery)
}

/// Runs every webhook's loop; one that fails (a panic, which is a bug) is logged and
/// started again, so that one bad event cannot end a webhook's delivery until the
/// next restart. Its events are safe meanwhile: its cursor moves only past settled
/// events.
async fn supervise(webhooks: Vec<Arc<Webhook>>, stop: Stop) {
    let mut tasks = tokio::task::JoinSet::new();
    let mut ids = std::collections::HashMap::new();
    for w in webhooks {
        let task = tasks.spawn(w.clone().run(stop.clone()));
        ids.insert(task.id(), w);
    }
    while let Some(ended) = tasks.join_next_with_id().await {
        let Err(e) = ended else { continue };
        let Some(w) = ids.remove(&e.id()) else {
            continue;
        };
        if stop.is_stopped() {
            continue;
        }
        tracing::error!(webhook = w.id(), error = %e, "webhook delivery failed (a bug in clicktap); starting it again");
        let (again, mut stop) = (w.clone(), stop.clone());
        let task = tasks.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(RESTART_AFTER) => {}
                _ = stop.stopped() => return,
            }
            again.run(stop).await
        });
        ids.insert(task.id(), w);
    }
}

/// Delivery threads yield to the proxy's: batch scheduling like every background
/// thread, and a nice value (`delivery.nice`), so that on a machine short of CPU the
/// visitors are served first and webhooks wait in the queue, to catch up when the load
/// eases. Enrichment keeps its full share: it must keep up with the channel.
fn behind_the_proxy(nice: i32) {
    crate::background::mark_thread();
    crate::background::set_nice(nice);
}
