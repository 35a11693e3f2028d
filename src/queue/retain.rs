//! Trimming the front of the log: retention by age, and eviction for room.
//!
//! sled reclaims space from removed ranges poorly under insert-then-remove workloads,
//! so removal happens in front-of-log runs in one batch, never event by event as they
//! are delivered: delivered events stay until retention or room takes them, which is
//! also what replay needs.

use std::sync::atomic::Ordering;

use super::read::seq_key;
use super::{Queue, QueueError};

impl Queue {
    /// Removes events captured before `now_ms - retention`. Returns how many of them a
    /// consumer had not read (counted as expired).
    pub fn retain(&self, now_ms: u64) -> Result<u64, QueueError> {
        let cutoff = now_ms.saturating_sub(self.inner.cfg.retention.as_millis() as u64);
        let _guard = self.inner.append_lock.lock();
        let expired = self.trim_front_locked(|at_ms, _, _| at_ms < cutoff)?;
        self.inner.metrics.queue_expired.inc_by(expired);
        self.update_gauges();
        Ok(expired)
    }

    /// Removes events from the front while `more(at_ms, removed_so_far, bytes_freed)`
    /// holds. The caller holds the append lock. Returns the removed events that some
    /// consumer had not yet read.
    pub(super) fn trim_front_locked(
        &self,
        mut more: impl FnMut(u64, u64, u64) -> bool,
    ) -> Result<u64, QueueError> {
        let inner = &self.inner;
        let min_cursor = self.min_cursor()?;
        let mut batch = sled::Batch::default();
        let (mut removed, mut freed, mut unread) = (0u64, 0u64, 0u64);
        let mut new_first = self.first();
        for item in inner.events.range(seq_key(self.first())..) {
            let (k, v) = item?;
            let at_ms = super::read::be_u64(&v[..v.len().min(8)]);
            if !more(at_ms, removed, freed) {
                break;
            }
            let seq = super::read::be_u64(&k);
            batch.remove(k);
            removed += 1;
            freed += v.len() as u64;
            if seq >= min_cursor {
                unread += 1;
            }
            new_first = seq + 1;
        }
        if removed > 0 {
            inner.events.apply_batch(batch)?;
            inner.first.store(new_first, Ordering::Release);
            inner.bytes.fetch_sub(freed as i64, Ordering::Relaxed);
        }
        Ok(unread)
    }
}
