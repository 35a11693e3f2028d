//! The write side: sequence numbers, bounds, one sled value per run of events.

use std::sync::atomic::Ordering;

use super::read::seq_key;
use super::{Queue, QueueError, Record};
use crate::config::WhenFull;

/// What became of an append.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub stored: u64,
    /// Refused because the queue was full (`drop_newest`).
    pub refused: u64,
    /// Older events removed to make room (`drop_oldest`) that a consumer had not read.
    pub evicted: u64,
    /// Refused because the disk had less than `queue.min_free_bytes` free.
    pub no_space: u64,
}

/// `no_space` refusals are logged at most this often (ms).
const NO_SPACE_LOG_EVERY_MS: u64 = 10_000;

impl Queue {
    /// Appends `records` in one write, within the queue's bounds. Never blocks on
    /// anything but other appenders and the trimming of the log's front.
    pub fn append(&self, records: &[Record<'_>]) -> Result<Appended, QueueError> {
        let inner = &self.inner;
        let _guard = inner.append_lock.lock();
        let m = &inner.metrics;
        let store = match self.store_locked() {
            Ok(s) => s,
            Err(e) => {
                m.queue_dropped_error.inc_by(records.len() as u64);
                return Err(e);
            }
        };
        let cfg = &inner.cfg;
        let mut out = Appended::default();
        if self.below_disk_floor() {
            out.no_space = records.len() as u64;
            m.queue_dropped_no_space.inc_by(out.no_space);
            self.log_no_space();
            return Ok(out);
        }

        // The bounds count bytes as stored, compressed; an incoming event is reckoned
        // at its uncompressed size, an upper bound, so the log never passes
        // `max_bytes` and stops short of it by at most one batch.
        let mut take = records.len();
        if cfg.when_full == WhenFull::DropOldest {
            let incoming: u64 = records.iter().map(|r| 12 + r.bytes.len() as u64).sum();
            let need_events = (self.depth() + records.len() as u64).saturating_sub(cfg.max_events);
            let need_bytes = (self.bytes() + incoming).saturating_sub(cfg.max_bytes);
            if need_events > 0 || need_bytes > 0 {
                out.evicted = self.trim_front_locked(&store, |_, removed, freed| {
                    removed < need_events || freed < need_bytes
                })?;
            }
        } else {
            let room = cfg.max_events.saturating_sub(self.depth());
            take = take.min(room as usize);
            let mut bytes = self.bytes();
            for (i, r) in records[..take].iter().enumerate() {
                bytes += 12 + r.bytes.len() as u64;
                if bytes > cfg.max_bytes {
                    take = i;
                    break;
                }
            }
        }
        out.refused = (records.len() - take) as u64;

        let mut stored = 0u64;
        let mut failed = None;
        if take > 0 {
            // One insert per value, not an atomic `apply_batch`: sled seals and writes
            // its log buffer twice for every batch (a disk write and a wake-up of each
            // of its 7 I/O threads, twice per append). Atomicity is not needed: after
            // a crash, a prefix of an append is a consistent log, and it is not flushed
            // yet anyway. Values of a bounded size: sled keeps pages holding very
            // large values in memory far beyond its cache size.
            let head = self.head();
            let mut written = 0i64;
            // Stamped under the append lock: stamps rise with the sequence numbers.
            let stored_ms = inner.clock.now_ms();
            // How far capture times stand from the stamp, for searches by capture time.
            let at = records[..take].iter().map(|r| r.at_ms);
            let (first, last) = (at.clone().min(), at.max());
            let skew = |ms: Option<u64>| {
                (i128::from(ms.unwrap_or(stored_ms)) - i128::from(stored_ms))
                    .clamp(i64::MIN.into(), i64::MAX.into()) as i64
            };
            inner.skew.0.fetch_min(skew(first), Ordering::Relaxed);
            inner.skew.1.fetch_max(skew(last), Ordering::Relaxed);
            for (n, value) in super::batch::values(&records[..take], stored_ms).iter() {
                let key = seq_key(head + stored);
                if let Err(e) = store.events.insert(key, value) {
                    failed = Some(e);
                    break;
                }
                super::cache::touch(&store.events, &key, super::cache::WRITE_TOUCHES);
                written += value.len() as i64;
                stored += n as u64;
            }
            if stored > 0 {
                let next = head + stored;
                inner.bytes.fetch_add(written, Ordering::Relaxed);
                inner.head.store(next, Ordering::Release);
                inner.head_tx.send_replace(next);
            }
        }
        out.stored = stored;
        m.queue_appended.inc_by(out.stored);
        m.queue_unflushed.add(out.stored as i64);
        m.queue_dropped_full.inc_by(out.refused);
        m.queue_evicted.inc_by(out.evicted);
        self.update_gauges();
        match failed {
            // What was not stored is counted as lost to the error.
            Some(e) => {
                m.queue_dropped_error.inc_by(take as u64 - stored);
                Err(self.failed(&store, e))
            }
            None => Ok(out),
        }
    }

    fn log_no_space(&self) {
        // On the queue's clock: by the wall clock, a step back would silence it.
        let now = self.inner.clock.now_ms();
        let last = self.inner.no_space_logged.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= NO_SPACE_LOG_EVERY_MS
            && self
                .inner
                .no_space_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                path = %self.inner.cfg.path.display(),
                min_free_bytes = self.inner.cfg.min_free_bytes,
                "less free disk space than queue.min_free_bytes: new events refused, counted in clicktap_queue_dropped_total{{reason=\"no_space\"}}"
            );
        }
    }
}
