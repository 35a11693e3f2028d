//! What consumers keep in the queue's database besides events: their cursors and
//! trees of their own (`state:<name>`), reached through the queue so that a reopened
//! database serves them at once.
//!
//! Every write here is counted in `clicktap_queue_unflushed_writes` until the next
//! flush, which its consumer asks for within `queue.flush_interval`
//! ([`Queue::flush_if_due`]).

use super::read::be_u64;
use super::{Queue, QueueError};

const STATE: &str = "state:";

impl Queue {
    /// The tree `state:<name>`, for reading. Writes go through [`Queue::write_state`].
    pub fn state_tree(&self, name: &str) -> Result<sled::Tree, QueueError> {
        self.store()?.tree(&format!("{STATE}{name}"))
    }

    /// Applies `batch` to the tree `state:<name>` atomically.
    pub fn write_state(&self, name: &str, batch: sled::Batch) -> Result<(), QueueError> {
        let tree = self.state_tree(name)?;
        self.noted_write();
        self.write(|_| tree.apply_batch(batch))
    }

    /// [`Queue::write_state`], only into the database of `generation`
    /// ([`Queue::generation`]): a consumer that computed `batch` from what it read
    /// before a reopen must not write it into the database opened since, which lacks
    /// what the failed one lost. Such a write is refused with [`QueueError::Reopened`].
    pub fn write_state_in(
        &self,
        generation: u64,
        name: &str,
        batch: sled::Batch,
    ) -> Result<(), QueueError> {
        let store = self.store()?;
        if store.generation != generation {
            return Err(QueueError::Reopened);
        }
        let tree = store.tree(&format!("{STATE}{name}"))?;
        self.noted_write();
        self.write_on(&store, |_| tree.apply_batch(batch))
    }

    /// Inserts one value into a state tree. Unlike [`Queue::write_state`]'s batch, which
    /// rolls sled's log buffer (twice) and so hands a write to sled's thread pool each
    /// time, a plain insert goes into the buffer being filled: for writers whose values
    /// need not change together.
    pub fn insert_state(&self, name: &str, key: &[u8], value: &[u8]) -> Result<(), QueueError> {
        let tree = self.state_tree(name)?;
        self.noted_write();
        self.write(|_| tree.insert(key, value).map(drop))
    }

    /// The names of every state tree (without `state:`).
    pub fn state_names(&self) -> Result<Vec<String>, QueueError> {
        Ok(self
            .store()?
            .db
            .tree_names()
            .iter()
            .filter_map(|n| {
                std::str::from_utf8(n)
                    .ok()?
                    .strip_prefix(STATE)
                    .map(str::to_string)
            })
            .collect())
    }

    /// Removes the tree `state:<name>` and all it holds.
    pub fn drop_state(&self, name: &str) -> Result<(), QueueError> {
        let store = self.store()?;
        self.noted_write();
        store.drop_tree(&format!("{STATE}{name}"))
    }

    /// Counted before the write, so that whoever sees the change also sees it counted
    /// as not yet on disk (a failed write is counted until the next flush: harmless).
    fn noted_write(&self) {
        self.inner.metrics.queue_unflushed_writes.inc();
    }

    /// The consumer's next sequence to read, if it has one.
    pub fn cursor(&self, consumer: &str) -> Result<Option<u64>, QueueError> {
        Ok(self.store()?.cursors.get(consumer)?.map(|v| be_u64(&v)))
    }

    /// Moves the consumer's cursor, never past the head; durable at the next flush.
    pub fn set_cursor(&self, consumer: &str, seq: u64) -> Result<(), QueueError> {
        let seq = seq.min(self.head());
        self.noted_write();
        self.write(|s| s.cursors.insert(consumer, &seq.to_be_bytes()))?;
        Ok(())
    }

    /// Forgets a consumer: its events no longer count as unread.
    pub fn remove_cursor(&self, consumer: &str) -> Result<(), QueueError> {
        self.noted_write();
        self.write(|s| s.cursors.remove(consumer))?;
        Ok(())
    }

    /// Moves every cursor found past the head back to it (written so by a version
    /// that did not keep cursors below the head): one past it would skip the events
    /// numbered up to it.
    pub(super) fn clamp_cursors(&self) -> Result<(), QueueError> {
        let head = self.head();
        for (consumer, seq) in self.cursors()? {
            if seq > head {
                tracing::warn!(
                    consumer,
                    cursor = seq,
                    next_seq = head,
                    "a cursor past the head of the queue; moved back to it"
                );
                self.set_cursor(&consumer, head)?;
            }
        }
        Ok(())
    }

    /// Every consumer and its cursor.
    pub fn cursors(&self) -> Result<Vec<(String, u64)>, QueueError> {
        let mut out = Vec::new();
        for item in self.store()?.cursors.iter() {
            let (k, v) = item?;
            out.push((String::from_utf8_lossy(&k).into_owned(), be_u64(&v)));
        }
        Ok(out)
    }

    /// The lowest cursor: events below it have been read by every consumer.
    pub fn min_cursor(&self) -> Result<u64, QueueError> {
        Ok(self
            .cursors()?
            .into_iter()
            .map(|(_, c)| c)
            .min()
            .unwrap_or(u64::MAX))
    }
}
