//! `clicktap relay`: the webhooks of a fleet delivered from a JetStream stream instead
//! of a local queue.
//!
//! ```text
//!  sidecar ─┐ [[sinks]]                 ┌─ relay ─┐
//!  sidecar ─┼─────────► stream CLICKS ──┼─ relay ─┼──► receivers
//!  sidecar ─┘                           └─ relay ─┘
//! ```
//!
//! Each enabled `[[webhooks]]` entry is one durable pull consumer on the stream
//! (`consumer.rs`), shared by every relay with the same file: relays split its
//! messages, and the messages of a relay that dies are handed to the others after
//! `relay.ack_wait`. A message is sent with the same code a sidecar's delivery uses
//! (`crate::deliver::sender`) and settled in `settle.rs`: acked, nak'd with the retry
//! schedule's delay, or dead-lettered into a stream of its own (`dead.rs`). Each
//! webhook runs its own sessions against NATS (`webhook.rs`), so that one webhook's
//! consumer being gone or its receiver hanging does not hold the others.
//!
//! A relay keeps nothing on disk: the stream and the consumers are its state. It stops
//! on SIGTERM or SIGINT within `relay.stop_timeout` plus [`STOP_MARGIN`].

mod admin;
mod advisory;
pub mod consumer;
mod dead;
pub mod health;
pub mod replay;
mod session;
mod settle;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, RelayConfig};
use crate::deliver::sender::{self, Sender};
use crate::metrics::Metrics;
use crate::sink::SinkError;
use webhook::Webhook;

/// Beyond `relay.stop_timeout`, how long a stop waits for the tasks to end.
pub const STOP_MARGIN: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Connect(#[from] SinkError),
    #[error("{0}")]
    Stream(String),
    #[error("{0}")]
    Consumer(String),
    #[error("{0}")]
    Pull(String),
    #[error("{0}")]
    Publish(String),
}

/// The `[relay]` table of a relay's configuration.
fn relay_of(cfg: &Config) -> anyhow::Result<&RelayConfig> {
    cfg.relay
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the configuration has no [relay]"))
}

/// Connects to the relay's NATS servers as `name`; the JetStream context bounds each
/// request by `relay.nats.request_timeout`.
async fn jetstream(
    relay: &RelayConfig,
    name: String,
) -> Result<(async_nats::Client, async_nats::jetstream::Context), SinkError> {
    let client = crate::sink::connect::connect(&relay.nats, name).await?;
    let js = async_nats::jetstream::ContextBuilder::new()
        .timeout(relay.nats.request_timeout)
        .build(client.clone());
    Ok((client, js))
}

/// Runs `work` to its end on a runtime of its own: a command's one piece of NATS work.
fn once<T>(work: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(work)
}

/// Runs the relay described by `cfg` (which has `[relay]`) until SIGTERM or SIGINT.
pub fn run(cfg: Config) -> anyhow::Result<()> {
    let relay = Arc::new(relay_of(&cfg)?.clone());
    let metrics = Arc::new(Metrics::new());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.delivery.threads.max(1))
        .thread_name("clicktap-relay")
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let client = crate::deliver::client(cfg.delivery.allow_private_targets)?;
        let links = sender::links(cfg.links.clone());
        let webhooks: Vec<Arc<Webhook>> = cfg
            .webhooks
            .iter()
            .filter(|w| {
                if !w.enabled {
                    tracing::info!(webhook = w.id, "webhook disabled in the config: its messages wait in the stream");
                }
                w.enabled
            })
            .map(|w| {
                let s = Sender::new(w, client.clone(), links.clone(), metrics.clone(), &cfg.delivery)
                    .without_log();
                Arc::new(Webhook::new(w.clone(), relay.clone(), s, metrics.clone()))
            })
            .collect();
        if let Some(a) = &cfg.admin {
            let listener = tokio::net::TcpListener::bind(a.listen)
                .await
                .map_err(|e| anyhow::anyhow!("admin.listen {}: {e}", a.listen))?;
            let admin = Arc::new(admin::Admin {
                cfg: a.clone(),
                metrics: metrics.clone(),
                webhooks: webhooks.clone(),
                relay: relay.clone(),
                config: (cfg.source.display().to_string(), cfg.hash.clone()),
                started: std::time::Instant::now(),
            });
            tokio::spawn(admin.serve(listener));
            tracing::info!(listen = %a.listen, "admin listening");
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let tasks: Vec<_> = webhooks
            .iter()
            .map(|w| tokio::spawn(w.clone().run(stopped.clone())))
            .collect();
        tracing::info!(
            stream = relay.stream,
            webhooks = webhooks.len(),
            "relay started"
        );
        signal().await;
        let _ = stop.send(true);
        let bound = relay.stop_timeout + STOP_MARGIN;
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(bound, all).await.is_err() {
            tracing::error!(bound = %crate::logging::duration(bound), "relay did not stop in time; what it did not settle is handed out again after ack_wait");
        }
        tracing::info!("relay stopped");
        Ok::<(), anyhow::Error>(())
    })?;
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

/// `clicktap relay --reactivate <webhook>`: removes the webhook's disabled mark, so that
/// every relay takes its messages again (within 5 s); whether it was disabled.
pub fn reactivate(cfg: &Config, webhook: &str) -> anyhow::Result<bool> {
    let relay = relay_of(cfg)?;
    once(async {
        let (_client, js) =
            jetstream(relay, format!("clicktap relay reactivate {webhook}")).await?;
        let store = health::bucket(&js, relay).await?;
        Ok(health::reactivate(&store, webhook).await?)
    })
}

/// Waits for SIGTERM or SIGINT. SIGHUP, whose default would end the process like a
/// crash, is logged and ignored: a relay reads its file once, at start.
async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stopping");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => return tracing::info!("SIGINT: stopping"),
            _ = hup.recv() => tracing::warn!("SIGHUP: a relay does not reload its file; restart it to apply a change"),
        }
    }
}
