//! GeoIP databases picked up by themselves when a new file lands (what `geoipupdate`
//! does twice a week: it writes a new file and renames it over the old one).
//!
//! A thread looks at each configured file every `geoip.watch_interval` (its size,
//! modification time and inode). When one changed and stayed so for one more look (a
//! file being copied in place is not read half-written), the databases are opened
//! again and swapped in; a file that does not open leaves the databases in use and
//! is logged and counted (`clicktap_geoip_reloads_total{outcome="failure"}`), once per
//! change.

use crossbeam_channel::{Sender, bounded};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::config::GeoipConfig;
use crate::enrich::GeoHandle;
use crate::metrics::Metrics;

pub struct GeoWatch {
    stop: Sender<()>,
    handle: JoinHandle<()>,
}

/// What a look at the files saw: per file, (size, modified, inode), or none.
type Seen = Vec<Option<(u64, i64, u64)>>;

fn look(paths: &[PathBuf]) -> Seen {
    paths
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.len(), m.mtime_nsec() + m.mtime() * 1_000_000_000, m.ino()))
        })
        .collect()
}

impl GeoWatch {
    /// Starts watching `cfg`'s databases, or nothing when there are none or
    /// `geoip.watch` is off.
    pub fn start(
        cfg: &GeoipConfig,
        geo: GeoHandle,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Option<GeoWatch>> {
        if !cfg.watch || cfg.databases.is_empty() {
            return Ok(None);
        }
        let cfg = cfg.clone();
        let (stop, stopped) = bounded::<()>(1);
        let handle = std::thread::Builder::new()
            .name("clicktap-geo-watch".into())
            .spawn(move || {
                crate::background::mark_thread();
                let mut loaded = look(&cfg.databases);
                let mut pending: Option<Seen> = None;
                let mut failed: Option<Seen> = None;
                while stopped.recv_timeout(cfg.watch_interval).is_err() {
                    let now = look(&cfg.databases);
                    if now == loaded {
                        pending = None;
                        continue;
                    }
                    // Changed: wait for it to hold still for one more look.
                    if pending.as_ref() != Some(&now) {
                        pending = Some(now);
                        continue;
                    }
                    if failed.as_ref() == Some(&now) {
                        continue;
                    }
                    match crate::enrich::GeoDb::open(&cfg.databases) {
                        Ok(db) => {
                            geo.store(Some(Arc::new(db)));
                            metrics.geoip_reloads.with_label_values(&["success"]).inc();
                            tracing::info!(databases = %crate::logging::list(cfg.databases.iter().map(|p| p.display())), "GeoIP databases changed on disk: loaded again");
                            loaded = now;
                            failed = None;
                        }
                        Err(e) => {
                            metrics.geoip_reloads.with_label_values(&["failure"]).inc();
                            tracing::error!(error = %e, "GeoIP database changed on disk but does not open; the databases in use stay");
                            failed = Some(now);
                        }
                    }
                    pending = None;
                }
            })?;
        Ok(Some(GeoWatch { stop, handle }))
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.join();
    }
}
