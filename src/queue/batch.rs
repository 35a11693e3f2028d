//! The stored form of an appended batch: one sled value for many events.
//!
//! sled's cost is mostly per insert and per value byte copied, so one value per batch,
//! keyed by the batch's first sequence number, costs a fraction of one value per event.
//! Layout: `count: u32`, then per event `at_ms: u64`, `len: u32`, the bytes; all
//! big-endian. Events keep their own sequence numbers (`key + index`).

use sled::IVec;
use std::ops::Range;

use super::{QueueError, Record};

const COUNT: usize = 4;
const ENTRY_HEAD: usize = 12;

/// The largest value clicktap writes, in bytes (a single larger event gets its own).
/// sled writes a leaf node (up to 17 values) as a separate blob file once it passes a
/// quarter of its 512 KiB segment; values this size keep leaves inside the log.
pub const MAX_VALUE: usize = 6 * 1024;

/// Splits records into runs whose encoded size stays within [`MAX_VALUE`].
pub fn chunks<'r, 'a>(records: &'r [Record<'a>]) -> impl Iterator<Item = &'r [Record<'a>]> {
    let mut rest = records;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut size = COUNT;
        let mut n = 0;
        for r in rest {
            size += ENTRY_HEAD + r.bytes.len();
            if n > 0 && size > MAX_VALUE {
                break;
            }
            n += 1;
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

/// Encodes records as one batch value.
pub fn encode(records: &[Record<'_>]) -> Vec<u8> {
    let size = COUNT
        + records
            .iter()
            .map(|r| ENTRY_HEAD + r.bytes.len())
            .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(records.len() as u32).to_be_bytes());
    for r in records {
        out.extend_from_slice(&r.at_ms.to_be_bytes());
        out.extend_from_slice(&(r.bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(r.bytes);
    }
    out
}

/// How many events a batch value holds.
pub fn count(value: &[u8]) -> u64 {
    value
        .get(..COUNT)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64)
        .unwrap_or(0)
}

/// One event inside a batch value.
pub struct Entry {
    pub index: u64,
    pub at_ms: u64,
    pub range: Range<usize>,
}

/// The events of a batch value, in order; an error names the batch's first sequence.
pub fn entries(first_seq: u64, value: &IVec) -> Result<Vec<Entry>, QueueError> {
    let n = count(value);
    let mut out = Vec::with_capacity(n as usize);
    let mut at = COUNT;
    for index in 0..n {
        let head = value
            .get(at..at + ENTRY_HEAD)
            .ok_or(QueueError::Corrupt(first_seq + index))?;
        let at_ms = u64::from_be_bytes(head[..8].try_into().unwrap_or_default());
        let len = u32::from_be_bytes(head[8..].try_into().unwrap_or_default()) as usize;
        let start = at + ENTRY_HEAD;
        if value.len() < start + len {
            return Err(QueueError::Corrupt(first_seq + index));
        }
        out.push(Entry {
            index,
            at_ms,
            range: start..start + len,
        });
        at = start + len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_round_trips() {
        let recs = vec![
            Record {
                at_ms: 7,
                bytes: b"{\"a\":1}",
            },
            Record {
                at_ms: 9,
                bytes: b"",
            },
        ];
        let v = IVec::from(encode(&recs));
        assert_eq!(count(&v), 2);
        let e = entries(100, &v).unwrap();
        assert_eq!((e[0].at_ms, &v[e[0].range.clone()]), (7, &b"{\"a\":1}"[..]));
        assert_eq!((e[1].index, e[1].at_ms, e[1].range.len()), (1, 9, 0));
    }

    #[test]
    fn chunks_stay_within_the_value_size() {
        let kb = [b'x'; 1000];
        let recs: Vec<Record> = (0..100)
            .map(|i| Record {
                at_ms: i,
                bytes: &kb,
            })
            .collect();
        let sizes: Vec<usize> = chunks(&recs).map(|c| c.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 100);
        assert!(chunks(&recs).all(|c| encode(c).len() <= MAX_VALUE));
        let huge = vec![0; MAX_VALUE * 2];
        let big = [Record {
            at_ms: 0,
            bytes: &huge,
        }];
        assert_eq!(
            chunks(&big).count(),
            1,
            "an oversized event still goes, alone"
        );
    }

    #[test]
    fn a_truncated_batch_is_corrupt_not_a_panic() {
        let v = IVec::from(encode(&[Record {
            at_ms: 1,
            bytes: &[1; 10],
        }]));
        let cut = IVec::from(&v[..v.len() - 3]);
        assert!(matches!(entries(5, &cut), Err(QueueError::Corrupt(5))));
    }
}
