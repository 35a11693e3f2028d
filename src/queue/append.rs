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
}

impl Queue {
    /// Appends `records` in one write, within the queue's bounds. Never blocks on
    /// anything but other appenders and the trimming of the log's front.
    pub fn append(&self, records: &[Record<'_>]) -> Result<Appended, QueueError> {
        let inner = &self.inner;
        let _guard = inner.append_lock.lock();
        let cfg = &inner.cfg;
        let mut out = Appended::default();

        // The bounds count bytes as stored, compressed; an incoming event is reckoned
        // at its uncompressed size, an upper bound, so the log never passes
        // `max_bytes` and stops short of it by at most one batch.
        let mut take = records.len();
        if cfg.when_full == WhenFull::DropOldest {
            let incoming: u64 = records.iter().map(|r| 12 + r.bytes.len() as u64).sum();
            let need_events = (self.depth() + records.len() as u64).saturating_sub(cfg.max_events);
            let need_bytes = (self.bytes() + incoming).saturating_sub(cfg.max_bytes);
            if need_events > 0 || need_bytes > 0 {
                out.evicted = self.trim_front_locked(|_, removed, freed| {
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
            for (n, value) in super::batch::values(&records[..take]).iter() {
                let key = seq_key(head + stored);
                if let Err(e) = inner.events.insert(key, value) {
                    failed = Some(e);
                    break;
                }
                super::cache::touch(&inner.events, &key, super::cache::WRITE_TOUCHES);
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
        let m = &inner.metrics;
        m.queue_appended.inc_by(out.stored);
        m.queue_unflushed.add(out.stored as i64);
        m.queue_dropped_full.inc_by(out.refused);
        m.queue_evicted.inc_by(out.evicted);
        self.update_gauges();
        match failed {
            // What was not stored is counted as lost to the error.
            Some(e) => {
                m.queue_errors.inc();
                m.queue_dropped_error.inc_by(take as u64 - stored);
                Err(e.into())
            }
            None => Ok(out),
        }
    }
}
