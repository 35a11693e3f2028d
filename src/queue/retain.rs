//! Trimming the front of the log: retention by age, and eviction for room.
//!
//! sled reclaims space from removed ranges poorly under insert-then-remove workloads,
//! so removal happens in front-of-log runs in one batch, never event by event as they
//! are delivered: delivered events stay until retention or room takes them, which is
//! also what replay needs.

use std::sync::atomic::Ordering;

use super::{Queue, QueueError};

impl Queue {
    /// Removes the batches stored before `now_ms - retention`, `now_ms` on the queue's
    /// clock ([`Queue::clock`]). Returns how many of their events a consumer had not
    /// read (counted as expired).
    ///
    /// Batches are judged by their stamp, the queue's clock when they were appended,
    /// not by their events' capture times: those come from the wall clock, and one
    /// batch captured while it ran a day ahead would stop retention at the front for a
    /// day (and a full queue with `drop_newest` would refuse new clicks meanwhile).
    /// Stamps rise with the log, so the first batch not yet due marks the end of what
    /// is. An event is stored within `queue.flush_interval` of its capture, so it
    /// outlives the retention by about that.
    pub fn retain(&self, now_ms: u64) -> Result<u64, QueueError> {
        let cutoff = now_ms.saturating_sub(self.inner.cfg.retention.as_millis() as u64);
        let _guard = self.inner.append_lock.lock();
        let store = self.store_locked()?;
        let expired = self.trim_front_locked(&store, |at_ms, _, _| at_ms < cutoff)?;
        self.inner.metrics.queue_expired.inc_by(expired);
        self.update_gauges();
        Ok(expired)
    }

    /// Removes whole batches from the front while `more(stored_ms, removed_so_far,
    /// bytes_freed)` holds for the next one. The caller holds the append lock. Returns
    /// the removed events that some consumer had not yet read.
    pub(super) fn trim_front_locked(
        &self,
        store: &std::sync::Arc<super::store::Store>,
        mut more: impl FnMut(u64, u64, u64) -> bool,
    ) -> Result<u64, QueueError> {
        let inner = &self.inner;
        let min_cursor = self.min_cursor()?;
        let mut batch = sled::Batch::default();
        let (mut removed, mut freed, mut unread) = (0u64, 0u64, 0u64);
        // Values removed, counted apart from events: an emptied value holds none.
        let mut values = 0u64;
        for item in store.events.iter() {
            let (k, v) = item?;
            let first = super::read::be_u64(&k);
            // A value that does not decode is emptied here and removed by the next trim.
            let Some(opened) = self.open_batch(&store.events, &k, v.clone())? else {
                continue;
            };
            if !more(opened.stored_ms(), removed, freed) {
                break;
            }
            let n = opened.entries.len() as u64;
            batch.remove(k);
            values += 1;
            removed += n;
            freed += v.len() as u64;
            unread += (first..first + n).filter(|seq| *seq >= min_cursor).count() as u64;
        }
        if values > 0 {
            // The log may be left empty: keep the numbering where it was. (While the log
            // holds events, the last batch's key tells the next sequence on reopen.)
            let head = self.head();
            let new_first = self.write_on(store, |s| {
                s.meta.insert(super::META_NEXT, &head.to_be_bytes())?;
                s.events.apply_batch(batch)?;
                s.events.first()
            })?;
            // The front is the first value left (an emptied value holds no events, so
            // the removed ones do not say where the next begins).
            let new_first = match new_first {
                Some((k, _)) => super::read::be_u64(&k),
                None => self.head(),
            };
            inner.first.store(new_first, Ordering::Release);
            inner.bytes.fetch_sub(freed as i64, Ordering::Relaxed);
        }
        Ok(unread)
    }
}
