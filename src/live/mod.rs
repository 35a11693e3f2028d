//! What can change while clicktap runs, and the one place that changes it.
//!
//! The running process holds its configuration behind one swappable handle, and each
//! stage reads what a reload may change through a handle of its own (the GeoIP
//! databases, the enrichment settings and type rules, the trusted proxies, the bio
//! pages, the webhooks and links, the log level), never a copy fixed at start. A reload
//! ([`Live::reload`]: SIGHUP, `POST /api/v1/reload`, `clicktap reload`) reads and
//! validates the whole file first: an invalid file, or one that changes a setting only a
//! new process can take ([`restart`]), is refused as a whole and the running
//! configuration stays. A valid one is applied stage by stage, with no request refused
//! and no click dropped: webhooks are replaced after their requests in flight, the rest
//! is swapped.

mod geo_watch;
pub mod restart;
mod signal;

pub use geo_watch::GeoWatch;
pub use signal::watch_signals;

use arc_swap::ArcSwap;
use ipnet::IpNet;
use parking_lot::Mutex;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use crate::clock::now_ms;
use crate::config::{Config, Page, Problems};
use crate::deliver::{Applied, Delivery};
use crate::enrich::{Enricher, EnricherHandle, GeoHandle, TypeRules};
use crate::logging::Logging;
use crate::metrics::Metrics;

/// A configuration in use, and since when.
pub struct Loaded {
    pub cfg: Arc<Config>,
    /// When it was loaded (ms since the Unix epoch).
    pub at_ms: u64,
}

/// The trusted proxies, read by the proxy (for `X-Forwarded-Proto`) and swapped whole.
pub type Trusted = Arc<ArcSwap<Vec<IpNet>>>;

/// The bio pages (`[[pages]]`), read by the proxy (is a 200 answer a page view?) and
/// swapped whole.
pub type Pages = Arc<ArcSwap<Vec<Page>>>;

/// The running stages' handles a reload swaps.
pub struct Running {
    pub geo: GeoHandle,
    /// `None` when capture is off.
    pub enricher: Option<EnricherHandle>,
    pub trusted: Trusted,
    pub pages: Pages,
    pub delivery: Arc<Delivery>,
    pub logging: Option<Arc<Logging>>,
    pub alerts: Arc<crate::alert::Alerts>,
}

pub struct Live {
    /// When this process started, for people; its uptime is measured on `running_since`.
    pub started: SystemTime,
    pub running_since: std::time::Instant,
    path: PathBuf,
    loaded: ArcSwap<Loaded>,
    running: OnceLock<Running>,
    /// One reload at a time.
    reloading: Mutex<()>,
    metrics: Arc<Metrics>,
}

/// What a reload applied.
#[derive(Debug, Serialize)]
pub struct Reloaded {
    pub hash: String,
    pub webhooks: Applied,
    /// The GeoIP databases were opened again.
    pub geoip: bool,
}

/// Why a reload was refused; the running configuration stays.
#[derive(Debug)]
pub enum Refused {
    /// The file does not validate: every problem, as `clicktap check` lists them.
    Invalid(Problems),
    /// The file changes settings only a new process can take.
    NeedsRestart(Vec<&'static str>),
    /// Something failed while applying it (a queue error).
    Failed(String),
    /// clicktap has not finished starting.
    NotRunning,
}

impl Refused {
    pub fn outcome(&self) -> &'static str {
        match self {
            Refused::Invalid(_) => "invalid",
            Refused::NeedsRestart(_) => "needs_restart",
            Refused::Failed(_) | Refused::NotRunning => "failed",
        }
    }

    /// The problems, one line each, as `check` prints them.
    pub fn lines(&self) -> Vec<String> {
        match self {
            Refused::Invalid(p) => p.to_string().lines().map(str::to_string).collect(),
            Refused::NeedsRestart(keys) => keys
                .iter()
                .map(|k| format!("{k}: changed; it takes effect only in a new process (restart, or run --upgrade)"))
                .collect(),
            Refused::Failed(why) => vec![why.clone()],
            Refused::NotRunning => vec!["clicktap is still starting".into()],
        }
    }
}

impl Live {
    pub fn new(cfg: Config, metrics: Arc<Metrics>) -> Live {
        Live {
            started: SystemTime::now(),
            running_since: std::time::Instant::now(),
            path: cfg.source.clone(),
            loaded: ArcSwap::from_pointee(Loaded {
                cfg: Arc::new(cfg),
                at_ms: now_ms(),
            }),
            running: OnceLock::new(),
            reloading: Mutex::new(()),
            metrics,
        }
    }

    /// The configuration in use.
    pub fn loaded(&self) -> Arc<Loaded> {
        self.loaded.load_full()
    }

    /// Hands over the running stages' handles, once they are started.
    pub fn started(&self, running: Running) {
        let _ = self.running.set(running);
    }

    /// Reads the configuration file again and applies it, or refuses it as a whole.
    pub fn reload(&self) -> Result<Reloaded, Refused> {
        let result = self.try_reload();
        let outcome = match &result {
            Ok(_) => "success",
            Err(r) => r.outcome(),
        };
        self.metrics
            .config_reloads
            .with_label_values(&[outcome])
            .inc();
        match &result {
            Ok(r) => {
                tracing::info!(
                    hash = r.hash,
                    added = %crate::logging::list(&r.webhooks.added),
                    changed = %crate::logging::list(&r.webhooks.changed),
                    removed = %crate::logging::list(&r.webhooks.removed),
                    geoip = r.geoip,
                    "configuration reloaded"
                )
            }
            // A file refused is the operator's to fix and nothing broke: WARN. A reload
            // that failed while applied is an ERROR.
            Err(r) if r.outcome() == "failed" => {
                for line in r.lines() {
                    tracing::error!(
                        problem = line,
                        "reload failed; the running configuration stays"
                    );
                }
            }
            Err(r) => {
                for line in r.lines() {
                    tracing::warn!(
                        problem = line,
                        "reload refused; the running configuration stays"
                    );
                }
            }
        }
        result
    }

    fn try_reload(&self) -> Result<Reloaded, Refused> {
        let _one = self.reloading.lock();
        let Some(running) = self.running.get() else {
            return Err(Refused::NotRunning);
        };
        let new = crate::config::load(&self.path).map_err(Refused::Invalid)?;
        let old = self.loaded();
        let keys = restart::keys(&old.cfg, &new);
        if !keys.is_empty() {
            return Err(Refused::NeedsRestart(keys));
        }
        let geoip = old.cfg.geoip.databases != new.geoip.databases
            || old.cfg.geoip.optional != new.geoip.optional;
        if geoip {
            running
                .geo
                .store(crate::enrich::geo::load(&new.geoip).map(Arc::new));
        }
        running
            .trusted
            .store(Arc::new(new.proxy.trusted_proxies.clone()));
        if let Some(enricher) = &running.enricher {
            // The visitors seen stay: a reload is no restart for counting.
            let unique = enricher.load().unique.clone();
            enricher.store(Arc::new(
                Enricher::new(
                    &new.enrich,
                    new.proxy.trusted_proxies.clone(),
                    running.geo.clone(),
                    unique,
                )
                .with_types(TypeRules::new(&new)),
            ));
        }
        running.pages.store(Arc::new(new.pages.clone()));
        if let Some(logging) = &running.logging
            && let Err(e) = logging.set_level(&new.log.level)
        {
            return Err(Refused::Failed(format!("log.level: {e}")));
        }
        let webhooks = running
            .delivery
            .apply(&new)
            .map_err(|e| Refused::Failed(format!("{e:#}")))?;
        running
            .alerts
            .apply(&new)
            .map_err(|e| Refused::Failed(format!("alerts: {e:#}")))?;
        let hash = new.hash.clone();
        self.loaded.store(Arc::new(Loaded {
            cfg: Arc::new(new),
            at_ms: now_ms(),
        }));
        Ok(Reloaded {
            hash,
            webhooks,
            geoip,
        })
    }
}
