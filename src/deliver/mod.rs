//! Delivery: the queue's events to each webhook, at least once, in the webhook's
//! format, signed, authenticated, retried, with health, a delivery log and dead letters.
//!
//! Delivery runs on its own tokio runtime in its own threads, apart from Pingora's:
//! a hanging receiver or a slow token endpoint can use up delivery's time, never the
//! proxy's. Each webhook is an independent consumer of the queue ([`webhook`]).
//!
//! Retry policy: an event that fails is tried again after `retry.schedule` (by
//! default exponential from 5 s, jittered), up to `retry.max_attempts` attempts in
//! all; a 429 waits for its `Retry-After`. After the last attempt the event goes to the
//! webhook's dead letters, kept for replay. A 3xx is a failure: redirects are never
//! followed. Only a 2xx within `timeout` is a success.

mod attempt;
mod auth;
mod filter;
pub mod formats;
pub mod guard;
pub mod health;
pub mod log;
pub mod member;
mod retry;
pub mod sign;
pub mod state;
pub mod webhook;

use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::watch;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::queue::Queue;
use webhook::{Parts, Webhook, consumer_name};

/// The running delivery.
pub struct Delivery {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    pub webhooks: Vec<Arc<Webhook>>,
}

impl Delivery {
    /// Stops every webhook after the requests in flight, and waits for it.
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The HTTP client every webhook shares: keep-alive pool, no redirects, no proxy
/// from the environment, and the SSRF guard's resolver unless private targets are
/// allowed.
pub fn client(allow_private: bool) -> Result<reqwest::Client, reqwest::Error> {
    let mut b = crate::tls::client_builder()
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true);
    if !allow_private {
        b = b.dns_resolver(guard::GuardedResolver);
    }
    b.build()
}

pub fn start(cfg: &Config, queue: Queue, metrics: Arc<Metrics>) -> anyhow::Result<Delivery> {
    let (stop, stop_rx) = watch::channel(false);
    // Every configured webhook gets a cursor at the head when first seen, so that
    // one configured but disabled receives what happened meanwhile once enabled;
    // cursors of webhooks no longer configured are dropped, so that their unread
    // events stop counting as unread.
    let names: Vec<String> = cfg.webhooks.iter().map(|w| consumer_name(&w.id)).collect();
    for (name, _) in queue.cursors()? {
        if name.starts_with("webhook:") && !names.contains(&name) {
            tracing::info!(
                consumer = name,
                "webhook no longer configured: its cursor is dropped"
            );
            queue.remove_cursor(&name)?;
        }
    }
    for name in &names {
        if queue.cursor(name)?.is_none() {
            queue.set_cursor(name, queue.head())?;
        }
    }
    let d = &cfg.delivery;
    let parts = || -> anyhow::Result<Parts> {
        Ok(Parts {
            queue: queue.clone(),
            log: log::DeliveryLog::open(&queue)?,
            client: client(d.allow_private_targets)?,
            links: Arc::new(cfg.links.clone()),
            metrics: metrics.clone(),
            allow_private: d.allow_private_targets,
            log_body_bytes: d.log_body_bytes,
            log_retention: d.log_retention,
            poll_interval: d.poll_interval,
        })
    };
    let mut webhooks = Vec::new();
    for w in cfg.webhooks.iter().filter(|w| w.enabled) {
        webhooks.push(Arc::new(Webhook::new(w.clone(), parts()?)?));
    }
    for w in cfg.webhooks.iter().filter(|w| !w.enabled) {
        tracing::info!(
            webhook = w.id,
            "webhook disabled in the config: its events wait for it"
        );
    }
    if webhooks.is_empty() {
        return Ok(Delivery {
            stop,
            thread: None,
            webhooks,
        });
    }
    let nice = d.nice;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(d.threads)
        .thread_name("clicktap-deliver")
        .on_thread_start(move || behind_the_proxy(nice))
        .enable_all()
        .build()?;
    let running = webhooks.clone();
    let thread = std::thread::Builder::new()
        .name("clicktap-deliver-main".into())
        .spawn(move || {
            behind_the_proxy(nice);
            rt.block_on(async move {
                let mut tasks = tokio::task::JoinSet::new();
                for w in running {
                    tasks.spawn(w.run(stop_rx.clone()));
                }
                while tasks.join_next().await.is_some() {}
            });
        })?;
    Ok(Delivery {
        stop,
        thread: Some(thread),
        webhooks,
    })
}

/// Delivery threads yield to the proxy's: batch scheduling like every background
/// thread, and a nice value (`delivery.nice`), so that on a machine short of CPU the
/// visitors are served first and webhooks wait in the queue, to catch up when the load
/// eases. Enrichment keeps its full share: it must keep up with the channel.
fn behind_the_proxy(nice: i32) {
    crate::background::mark_thread();
    crate::background::set_nice(nice);
}
