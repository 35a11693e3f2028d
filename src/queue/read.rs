//! The read side: events by sequence.

use sled::IVec;

use super::batch;
use super::cache;
use super::{Queue, QueueError};

/// One stored event.
#[derive(Debug, Clone)]
pub struct Stored {
    pub seq: u64,
    /// Capture time, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// When its batch was stored, on the queue's clock ([`Queue::clock`]): what its age
    /// is judged by.
    pub stored_ms: u64,
    /// Its batch's events in plain layout (shared, not copied) and its place there.
    value: IVec,
    range: std::ops::Range<usize>,
}

impl Stored {
    /// An event that is not in the queue (a test event, a unit test's), in the shape
    /// of one that is.
    pub fn detached(seq: u64, at_ms: u64, json: &[u8]) -> Stored {
        Stored {
            seq,
            at_ms,
            stored_ms: at_ms,
            value: IVec::from(json),
            range: 0..json.len(),
        }
    }

    /// The event as it was appended (JSON).
    pub fn bytes(&self) -> &[u8] {
        &self.value[self.range.clone()]
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

/// The events of an opened batch (its first sequence is `first`) from `from` on.
fn unpack(first: u64, opened: batch::Opened, from: u64, out: &mut Vec<Stored>, limit: usize) {
    let stored_ms = opened.stored_ms();
    let batch::Opened { plain, entries, .. } = opened;
    for e in entries {
        let seq = first + e.index;
        if seq < from {
            continue;
        }
        if out.len() >= limit {
            break;
        }
        out.push(Stored {
            seq,
            at_ms: e.at_ms,
            stored_ms,
            value: plain.clone(),
            range: e.range,
        });
    }
}

/// The events of one stored batch value, `value` being what the `events` tree holds
/// under the key `first_seq`: the decoding every read of the queue goes through, open
/// to tools and tests that check it on values the queue did not write. A value that
/// does not decode is [`QueueError::Corrupt`], naming the sequence where it fails.
pub fn decode_batch(first_seq: u64, value: &[u8]) -> Result<Vec<Stored>, QueueError> {
    let opened = batch::open(first_seq, IVec::from(value))?;
    let mut out = Vec::with_capacity(opened.entries.len());
    unpack(first_seq, opened, 0, &mut out, usize::MAX);
    Ok(out)
}

impl Queue {
    /// Up to `limit` events from `from` on, in order.
    pub fn read(&self, from: u64, limit: usize) -> Result<Vec<Stored>, QueueError> {
        let head = self.head();
        let mut out = Vec::with_capacity(limit.min(1024));
        let store = self.store()?;
        let events = &store.events;
        // The batch holding `from` starts at or before it.
        let start = match events.range(..=seq_key(from)).next_back() {
            Some(item) => item?.0,
            None => IVec::from(&seq_key(from)),
        };
        for item in events.range(start..IVec::from(&seq_key(head))) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item?;
            cache::touch(events, &k, cache::READ_TOUCHES);
            if let Some(opened) = self.open_batch(events, &k, v)? {
                unpack(be_u64(&k), opened, from, &mut out, limit);
            }
        }
        Ok(out)
    }

    /// The batch stored under `key`; `None` for a value that does not decode, which is
    /// emptied on the way ([`Queue::drop_corrupt`]) so that every reader passes over it.
    pub(super) fn open_batch(
        &self,
        events: &sled::Tree,
        key: &[u8],
        value: IVec,
    ) -> Result<Option<batch::Opened>, QueueError> {
        match batch::open(be_u64(key), value.clone()) {
            Ok(opened) => Ok(Some(opened)),
            Err(QueueError::Corrupt(_)) => {
                self.drop_corrupt(events, key, value)?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Empties a stored value that does not decode (written in a layout no version
    /// reads, or damaged on disk): nobody can ever read its events, and leaving it would
    /// stop every consumer at it. It becomes a batch of no events, which retention
    /// removes like any other; its key stays, so that the sequence numbers it held (up
    /// to the next value's key) are counted as dropped (`corrupt`) exactly once, by
    /// whoever empties it first, and logged.
    fn drop_corrupt(&self, events: &sled::Tree, key: &[u8], value: IVec) -> Result<(), QueueError> {
        let empty = IVec::from(&batch::EMPTY[..]);
        if events
            .compare_and_swap(key, Some(&value), Some(empty))?
            .is_err()
        {
            return Ok(());
        }
        let first = be_u64(key);
        let next = match events.range(IVec::from(key)..).nth(1) {
            Some(item) => be_u64(&item?.0),
            None => self.head(),
        };
        tracing::error!(
            seqs = %format!("{first}..{next}"),
            bytes = value.len(),
            "a stored value does not decode; emptied, its events counted in clicktap_queue_dropped_total{{reason=\"corrupt\"}}"
        );
        self.inner
            .metrics
            .queue_dropped_corrupt
            .inc_by(next.saturating_sub(first));
        let freed = value.len().saturating_sub(batch::EMPTY.len());
        self.inner
            .bytes
            .fetch_sub(freed as i64, std::sync::atomic::Ordering::Relaxed);
        self.update_gauges();
        Ok(())
    }

    /// One event, if still stored.
    pub fn get(&self, seq: u64) -> Result<Option<Stored>, QueueError> {
        Ok(self.read(seq, 1)?.into_iter().find(|s| s.seq == seq))
    }

    /// The newest `limit` events, oldest first.
    pub fn tail(&self, limit: usize) -> Result<Vec<Stored>, QueueError> {
        let store = self.store()?;
        let mut batches = Vec::new();
        let mut n = 0;
        for item in store.events.iter().rev() {
            if n >= limit {
                break;
            }
            let (k, v) = item?;
            let mut events = Vec::new();
            if let Some(opened) = self.open_batch(&store.events, &k, v)? {
                unpack(be_u64(&k), opened, 0, &mut events, usize::MAX);
            }
            n += events.len();
            batches.push(events);
        }
        let mut out: Vec<Stored> = batches.into_iter().rev().flatten().collect();
        let skip = out.len().saturating_sub(limit);
        out.drain(..skip);
        Ok(out)
    }

    /// The sequences that can hold events captured from `since_ms` to `until_ms` (wall
    /// clock), inclusive: a range to read and then filter by capture time. Capture
    /// times come from the wall clock, so after a step of it they are out of order, and
    /// a bisection on them finds one of the places where they cross a time, not the
    /// first. The batches' stamps rise with the log: the range is found by bisection on
    /// them, widened by how far capture times have stood from stamps. With a clock
    /// that never stepped that is a second or so; after a step of a day, a day.
    pub fn seqs_captured(
        &self,
        since_ms: u64,
        until_ms: u64,
    ) -> Result<std::ops::Range<u64>, QueueError> {
        let (low, high) = self.capture_skew();
        // A capture time is its stamp plus a skew within [low, high].
        let shifted =
            |ms: u64, by: i64| (i128::from(ms) - i128::from(by)).clamp(0, u64::MAX.into()) as u64;
        let from = self.first_stored_from(shifted(since_ms, high))?;
        let to = self.first_stored_from(shifted(until_ms, low).saturating_add(1))?;
        Ok(from..to.max(from))
    }

    /// The first sequence of a batch stored at or after `stored_ms`, by bisection.
    fn first_stored_from(&self, stored_ms: u64) -> Result<u64, QueueError> {
        let (mut lo, mut hi) = (self.first(), self.head());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.read(mid, 1)?.first() {
                Some(s) if s.stored_ms < stored_ms => lo = s.seq + 1,
                _ => hi = mid,
            }
        }
        Ok(lo)
    }
}
