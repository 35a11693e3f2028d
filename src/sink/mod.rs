//! Sinks: consumers of the queue that publish every event somewhere other than a
//! webhook. One kind exists: a NATS JetStream stream (`type = "nats"`), through which a
//! fleet of sidecars puts all its clicks in one place.
//!
//! Each sink is one more consumer of the queue, with its own cursor (`sink:<id>` in the
//! queue's cursors, so that it counts in the queue's `expired` drops and holds its
//! events like a webhook does) and its own task ([`publish`]). The sinks run on one
//! tokio runtime in a thread of their own, apart from the proxy's and delivery's: NATS
//! being slow or down uses up the sinks' time only. [`Sinks::stop`] is bounded: the
//! longest `publish_timeout` (a publish under way) plus `stop_timeout` (the
//! acknowledgements in flight) of the sinks, plus [`STOP_MARGIN`].
//!
//! A reload that changes `[[sinks]]` is refused as needing a restart (`live::restart`).

pub mod connect;
pub mod health;
pub mod publish;
pub mod stream;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::SinkConfig;
use crate::metrics::Metrics;
use crate::queue::{Queue, QueueError};
use health::{Health, Snapshot};
use publish::{Publisher, consumer_name};

/// Beyond the sinks' `stop_timeout`, how long a stop waits for the cursors to be
/// written and the runtime to end.
pub const STOP_MARGIN: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    /// The stream does not match the config.
    #[error("{0}")]
    Refused(String),
    #[error("stream request failed: {0}")]
    Stream(String),
    #[error("{0}")]
    Publish(String),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What `status` shows of the sinks: each one's health, by id.
#[derive(Clone, Default)]
pub struct SinksHandle {
    health: Arc<BTreeMap<String, Arc<Health>>>,
}

impl SinksHandle {
    /// Each sink's id, consumer name and health.
    pub fn list(&self) -> Vec<(String, String, Snapshot)> {
        self.health
            .iter()
            .map(|(id, h)| (id.clone(), consumer_name(id), h.snapshot()))
            .collect()
    }
}

/// The running sinks.
pub struct Sinks {
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    done: crossbeam_channel::Receiver<()>,
    bound: Duration,
    handle: SinksHandle,
}

impl Sinks {
    /// Starts every enabled sink. A sink seen for the first time starts at the queue's
    /// head: it publishes what is captured from now on, as a new webhook does. A sink no
    /// longer configured has its cursor removed, so that it holds back nothing.
    pub fn start(
        sinks: &[SinkConfig],
        queue: Queue,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Sinks> {
        for (name, _) in queue.cursors()? {
            if let Some(id) = name.strip_prefix("sink:")
                && !sinks.iter().any(|s| s.id == id)
            {
                queue.remove_cursor(&name)?;
                tracing::info!(
                    sink = id,
                    "sink no longer configured: its cursor is removed"
                );
            }
        }
        let mut health = BTreeMap::new();
        let mut publishers = Vec::new();
        for (i, cfg) in sinks.iter().enumerate() {
            let consumer = consumer_name(&cfg.id);
            if queue.cursor(&consumer)?.is_none() {
                queue.set_cursor(&consumer, queue.head())?;
            }
            let h = Arc::new(Health::new());
            health.insert(cfg.id.clone(), h.clone());
            if cfg.enabled {
                publishers.push(Publisher {
                    cfg: cfg.clone(),
                    key: format!("sinks[{i}]"),
                    queue: queue.clone(),
                    metrics: metrics.clone(),
                    health: h,
                });
            } else {
                h.set(health::State::Stopped, None);
            }
        }
        let bound = sinks
            .iter()
            .map(|s| s.stop_timeout + s.publish_timeout)
            .max()
            .unwrap_or_default()
            + STOP_MARGIN;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("clicktap-sinks".into())
            .spawn(move || {
                crate::background::mark_thread();
                runtime.block_on(async move {
                    let tasks: Vec<_> = publishers
                        .into_iter()
                        .map(|p| tokio::spawn(p.run(stopped.clone())))
                        .collect();
                    for t in tasks {
                        let _ = t.await;
                    }
                });
                // Tasks the client left behind (its connection) end with the runtime.
                runtime.shutdown_timeout(Duration::from_millis(100));
                let _ = done_tx.send(());
            })?;
        Ok(Sinks {
            stop,
            thread: Some(thread),
            done,
            bound,
            handle: SinksHandle {
                health: Arc::new(health),
            },
        })
    }

    pub fn handle(&self) -> SinksHandle {
        self.handle.clone()
    }

    /// Stops every sink: acknowledgements in flight get the sink's `stop_timeout`, the
    /// cursors are written. Waits at most the longest `publish_timeout` plus
    /// `stop_timeout`, plus [`STOP_MARGIN`].
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        match self.done.recv_timeout(self.bound) {
            Ok(()) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                tracing::error!(
                    bound = ?self.bound,
                    "sinks did not stop in time; their cursors stand where they were last written"
                );
            }
        }
    }
}
