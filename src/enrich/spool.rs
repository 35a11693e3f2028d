//! Events enriched while the queue is not open yet: during a binary upgrade the old
//! process holds the queue until it has drained and flushed, and the new one serves
//! and captures from its first second. Those events wait here, in memory, up to
//! `queue.spool_bytes`, and go to the queue first, in order, once it opens; beyond the
//! bound they are counted as dropped (`spool_full`). Like the capture channel, the spool
//! is memory: a crash before the queue opens loses it.

use std::ops::Range;

use crate::queue::{Queue, Record};

#[derive(Default)]
pub struct Spool {
    json: Vec<u8>,
    spans: Vec<(u64, Range<usize>)>,
}

impl Spool {
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Keeps what fits within `max_bytes`; returns how many did not fit.
    pub fn keep(&mut self, records: &[Record<'_>], max_bytes: usize) -> u64 {
        let mut refused = 0;
        for r in records {
            if self.json.len() + r.bytes.len() > max_bytes {
                refused += 1;
                continue;
            }
            let start = self.json.len();
            self.json.extend_from_slice(r.bytes);
            self.spans.push((r.at_ms, start..self.json.len()));
        }
        refused
    }

    /// Appends everything kept to `queue`, oldest first, and empties the spool. What an
    /// append cannot store it counts as dropped itself; the last error is returned.
    pub fn append_to(&mut self, queue: &Queue) -> Result<u64, crate::queue::QueueError> {
        let mut stored = 0;
        let mut failed = None;
        for chunk in self.spans.chunks(4096) {
            let records: Vec<Record<'_>> = chunk
                .iter()
                .map(|(at_ms, range)| Record {
                    at_ms: *at_ms,
                    bytes: &self.json[range.clone()],
                })
                .collect();
            match queue.append(&records) {
                Ok(a) => stored += a.stored,
                Err(e) => failed = Some(e),
            }
        }
        self.json = Vec::new();
        self.spans = Vec::new();
        match failed {
            Some(e) => Err(e),
            None => Ok(stored),
        }
    }
}
