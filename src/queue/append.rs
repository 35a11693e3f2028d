//! The write side: sequence numbers, bounds, one sled value per append.

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

        let head = self.head();
        let next = head + take as u64;
        if take > 0 {
            // Values of a bounded size: sled keeps pages holding very large values in
            // memory far beyond its cache size.
            let mut batch = sled::Batch::default();
            let mut written = 0i64;
            let mut seq = head;
            let mut keys = Vec::new();
            let values = super::batch::values(&records[..take]);
            for (n, value) in values.iter() {
                written += value.len() as i64;
                keys.push(seq_key(seq));
                batch.insert(&seq_key(seq), value);
                seq += n as u64;
            }
            if let Err(e) = inner.events.apply_batch(batch) {
                inner.metrics.queue_errors.inc();
                inner.metrics.queue_dropped_error.inc_by(take as u64);
                return Err(e.into());
            }
            for k in &keys {
                super::cache::touch(&inner.events, k, super::cache::WRITE_TOUCHES);
            }
            inner.bytes.fetch_add(written, Ordering::Relaxed);
            inner.head.store(next, Ordering::Release);
            inner.head_tx.send_replace(next);
        }
        out.stored = take as u64;
        let m = &inner.metrics;
        m.queue_appended.inc_by(out.stored);
        m.queue_dropped_full.inc_by(out.refused);
        m.queue_evicted.inc_by(out.evicted);
        self.update_gauges();
        Ok(out)
    }
}
