//! The read side: events by sequence, and the consumers' cursors.

use sled::IVec;

use super::{Queue, QueueError};

/// One stored event.
#[derive(Debug, Clone)]
pub struct Stored {
    pub seq: u64,
    /// Capture time, milliseconds since the Unix epoch.
    pub at_ms: u64,
    value: IVec,
}

impl Stored {
    /// The event as it was appended (JSON).
    pub fn bytes(&self) -> &[u8] {
        &self.value[8..]
    }

    fn decode(key: &[u8], value: IVec) -> Result<Stored, QueueError> {
        let seq = be_u64(key);
        if value.len() < 8 {
            return Err(QueueError::Corrupt(seq));
        }
        Ok(Stored {
            seq,
            at_ms: be_u64(&value[..8]),
            value,
        })
    }
}

pub(super) fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Reads a big-endian `u64`; short input (never written by clicktap) reads as zero-padded.
pub(super) fn be_u64(b: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = b.len().min(8);
    buf[8 - n..].copy_from_slice(&b[..n]);
    u64::from_be_bytes(buf)
}

impl Queue {
    /// Up to `limit` events from `from` on, in order.
    pub fn read(&self, from: u64, limit: usize) -> Result<Vec<Stored>, QueueError> {
        let head = self.head();
        let mut out = Vec::with_capacity(limit.min(1024));
        for item in self
            .inner
            .events
            .range(seq_key(from)..seq_key(head))
            .take(limit)
        {
            let (k, v) = item?;
            out.push(Stored::decode(&k, v)?);
        }
        Ok(out)
    }

    /// One event, if still stored.
    pub fn get(&self, seq: u64) -> Result<Option<Stored>, QueueError> {
        match self.inner.events.get(seq_key(seq))? {
            Some(v) => Ok(Some(Stored::decode(&seq_key(seq), v)?)),
            None => Ok(None),
        }
    }

    /// The newest `limit` events, oldest first.
    pub fn tail(&self, limit: usize) -> Result<Vec<Stored>, QueueError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        for item in self.inner.events.iter().rev().take(limit) {
            let (k, v) = item?;
            out.push(Stored::decode(&k, v)?);
        }
        out.reverse();
        Ok(out)
    }

    /// The first sequence captured at or after `at_ms` (for replay by time).
    pub fn seq_at(&self, at_ms: u64) -> Result<u64, QueueError> {
        // Capture times are not strictly ordered across enrichment workers, but they
        // are within a batch's spread; a linear scan from the front is exact.
        for item in self.inner.events.iter() {
            let (k, v) = item?;
            let s = Stored::decode(&k, v)?;
            if s.at_ms >= at_ms {
                return Ok(s.seq);
            }
        }
        Ok(self.head())
    }

    /// The consumer's next sequence to read, if it has one.
    pub fn cursor(&self, consumer: &str) -> Result<Option<u64>, QueueError> {
        Ok(self.inner.cursors.get(consumer)?.map(|v| be_u64(&v)))
    }

    /// Moves the consumer's cursor; durable at the next flush.
    pub fn set_cursor(&self, consumer: &str, seq: u64) -> Result<(), QueueError> {
        self.inner.cursors.insert(consumer, &seq.to_be_bytes())?;
        Ok(())
    }

    /// Forgets a consumer: its events no longer count as unread.
    pub fn remove_cursor(&self, consumer: &str) -> Result<(), QueueError> {
        self.inner.cursors.remove(consumer)?;
        Ok(())
    }

    /// Every consumer and its cursor.
    pub fn cursors(&self) -> Result<Vec<(String, u64)>, QueueError> {
        let mut out = Vec::new();
        for item in self.inner.cursors.iter() {
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
