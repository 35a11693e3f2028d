//! The stored form of an appended batch: one sled value for many events.
//!
//! sled's cost is mostly per insert and per value byte copied (an insert copies the
//! value into its log, and the leaf holding it is rewritten whole every few inserts),
//! so one value per batch, keyed by the batch's first sequence number, costs a
//! fraction of one value per event, and compressing it cuts the bytes sled copies,
//! writes and caches. Events of a shortener repeat most of their text (the field
//! names, the links, the user agents), so LZ4 stores them in a fifth to a tenth of
//! their size for about a microsecond per event.
//!
//! Two layouts, both big-endian:
//! - plain: `count: u32`, then per event `at_ms: u64`, `len: u32`, the bytes. Its first
//!   byte is always 0 (a batch never holds 2^24 events).
//! - compressed: the tag byte [`LZ4`], `count: u32`, `plain_len: u32`, then the plain
//!   layout without its count, as one LZ4 block.
//!
//! Either comes after a stamp: the tag byte [`STAMPED`], then `stored_ms: u64`, the
//! queue's clock ([`crate::clock::Timeline`]) when the batch was appended. The events'
//! `at_ms` are their capture times by the wall clock, for people and for choosing
//! events by time; the stamp is what retention and batch ages judge by: it rises with
//! the log, never lies in the future, and is read without decompressing.
//!
//! Values are written stamped and compressed unless compression does not make them
//! smaller; every layout is read, so a queue written before compression or stamps
//! existed opens as it was. Events keep their own sequence numbers (`key + index`).

use sled::IVec;
use std::ops::Range;

use super::{QueueError, Record};

const COUNT: usize = 4;
/// A batch of no events (plain layout, count 0): what a value that does not decode is
/// replaced with, so that its key still marks where its sequence numbers end.
pub const EMPTY: [u8; COUNT] = [0; COUNT];
const ENTRY_HEAD: usize = 12;
/// The first byte of a compressed value.
const LZ4: u8 = 0xC4;
const LZ4_HEAD: usize = 1 + COUNT + 4;
/// The first byte of a stamped value.
const STAMPED: u8 = 0xC5;
const STAMP_HEAD: usize = 1 + 8;

/// The largest value clicktap writes, in bytes (a single larger event gets its own).
/// sled writes a leaf node (up to 17 values) as a separate blob file once it passes a
/// quarter of its 512 KiB segment; values this size keep leaves inside the log.
pub const MAX_VALUE: usize = 6 * 1024;

/// The most event bytes gathered into one value before compression: typical events
/// compress 4-10x, so the value lands within [`MAX_VALUE`]; a run that does not is
/// split until it does.
const MAX_PLAIN: usize = 4 * MAX_VALUE;

/// Splits records into runs whose plain encoding stays within [`MAX_PLAIN`].
fn runs<'r, 'a>(records: &'r [Record<'a>]) -> impl Iterator<Item = &'r [Record<'a>]> {
    let mut rest = records;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut size = COUNT;
        let mut n = 0;
        for r in rest {
            size += ENTRY_HEAD + r.bytes.len();
            if n > 0 && size > MAX_PLAIN {
                break;
            }
            n += 1;
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

/// Batch values, written one after another into one buffer.
#[derive(Default)]
pub struct Values {
    pub bytes: Vec<u8>,
    /// How many records each value holds, and where it lies in `bytes`.
    pub parts: Vec<(usize, Range<usize>)>,
}

impl Values {
    pub fn iter(&self) -> impl Iterator<Item = (usize, &[u8])> {
        self.parts
            .iter()
            .map(|(n, range)| (*n, &self.bytes[range.clone()]))
    }
}

/// Encodes records as batch values of at most [`MAX_VALUE`] bytes each (but for a
/// single event larger than that), stamped with `stored_ms` on the queue's clock.
pub fn values(records: &[Record<'_>], stored_ms: u64) -> Values {
    let mut out = Values::default();
    let mut plain = Vec::new();
    for run in runs(records) {
        encode_within(run, stored_ms, &mut plain, &mut out);
    }
    out
}

/// Encodes `run` as one value, or halves it until each half fits.
fn encode_within(run: &[Record<'_>], stored_ms: u64, plain: &mut Vec<u8>, out: &mut Values) {
    let start = out.bytes.len();
    out.bytes.push(STAMPED);
    out.bytes.extend_from_slice(&stored_ms.to_be_bytes());
    encode(run, plain, &mut out.bytes);
    if out.bytes.len() - start > MAX_VALUE && run.len() > 1 {
        out.bytes.truncate(start);
        let (a, b) = run.split_at(run.len() / 2);
        encode_within(a, stored_ms, plain, out);
        encode_within(b, stored_ms, plain, out);
    } else {
        out.parts.push((run.len(), start..out.bytes.len()));
    }
}

/// Appends records to `out` as one value, compressed when that makes it smaller;
/// `plain` is a scratch buffer.
fn encode(records: &[Record<'_>], plain: &mut Vec<u8>, out: &mut Vec<u8>) {
    plain.clear();
    plain.extend_from_slice(&(records.len() as u32).to_be_bytes());
    for r in records {
        plain.extend_from_slice(&r.at_ms.to_be_bytes());
        plain.extend_from_slice(&(r.bytes.len() as u32).to_be_bytes());
        plain.extend_from_slice(r.bytes);
    }
    let body = &plain[COUNT..];
    let start = out.len();
    out.resize(
        start + LZ4_HEAD + lz4_flex::block::get_maximum_output_size(body.len()),
        0,
    );
    out[start] = LZ4;
    out[start + 1..start + 1 + COUNT].copy_from_slice(&plain[..COUNT]);
    out[start + 1 + COUNT..start + LZ4_HEAD].copy_from_slice(&(body.len() as u32).to_be_bytes());
    match lz4_flex::block::compress_into(body, &mut out[start + LZ4_HEAD..]) {
        Ok(n) if LZ4_HEAD + n < plain.len() => out.truncate(start + LZ4_HEAD + n),
        _ => {
            out.truncate(start);
            out.extend_from_slice(plain);
        }
    }
}

/// A batch value read back: its events in plain layout, and where each lies.
pub struct Opened {
    pub plain: IVec,
    pub entries: Vec<Entry>,
    /// The queue's clock when it was appended; `None` for a value written before
    /// stamps existed.
    pub stored_ms: Option<u64>,
}

impl Opened {
    /// What retention and batch ages judge the batch by: its stamp, or for a value
    /// without one, the newest capture time in it.
    pub fn stored_ms(&self) -> u64 {
        self.stored_ms
            .unwrap_or_else(|| self.entries.iter().map(|e| e.at_ms).max().unwrap_or(0))
    }
}

/// A value's stamp and the rest of it.
fn unstamp(value: &[u8]) -> (Option<u64>, &[u8]) {
    match value.split_first_chunk::<STAMP_HEAD>() {
        Some((head, rest)) if head[0] == STAMPED => {
            let ms = u64::from_be_bytes(head[1..].try_into().unwrap_or_default());
            (Some(ms), rest)
        }
        _ => (None, value),
    }
}

/// Opens a stored value of any layout; an error names the batch's first sequence.
pub fn open(first_seq: u64, value: IVec) -> Result<Opened, QueueError> {
    let (stored_ms, rest) = unstamp(&value);
    let plain = if rest.first() == Some(&LZ4) {
        IVec::from(decompress(rest).ok_or(QueueError::Corrupt(first_seq))?)
    } else if stored_ms.is_some() {
        IVec::from(rest)
    } else {
        value
    };
    let entries = entries(first_seq, &plain)?;
    Ok(Opened {
        plain,
        entries,
        stored_ms,
    })
}

/// The plain layout of a compressed value; `None` if it is damaged.
fn decompress(value: &[u8]) -> Option<Vec<u8>> {
    let head = value.get(..LZ4_HEAD)?;
    let len = u32::from_be_bytes(head[1 + COUNT..].try_into().ok()?) as usize;
    let mut plain = head[1..1 + COUNT].to_vec();
    unpack_lz4(&value[LZ4_HEAD..], len, &mut plain)?;
    Some(plain)
}

/// Appends the `len` bytes an LZ4 block holds to `out`; `None` if the block is damaged
/// or holds another length. LZ4 expands at most 255x: a larger claim is damage, not a
/// reason to allocate.
pub fn unpack_lz4(block: &[u8], len: usize, out: &mut Vec<u8>) -> Option<()> {
    if len > block.len().saturating_mul(255) {
        return None;
    }
    let start = out.len();
    out.resize(start + len, 0);
    let n = lz4_flex::block::decompress_into(block, &mut out[start..]).ok()?;
    (n == len).then_some(())
}

/// How many events a batch value holds.
pub fn count(value: &[u8]) -> u64 {
    let value = unstamp(value).1;
    let at = usize::from(value.first() == Some(&LZ4));
    value
        .get(at..at + COUNT)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64)
        .unwrap_or(0)
}

/// One event inside a batch value.
pub struct Entry {
    pub index: u64,
    pub at_ms: u64,
    pub range: Range<usize>,
}

/// The events of a plain batch value, in order; an error names the batch's first
/// sequence.
fn entries(first_seq: u64, value: &IVec) -> Result<Vec<Entry>, QueueError> {
    // Too short for its count is damage, not a batch of no events.
    if value.len() < COUNT {
        return Err(QueueError::Corrupt(first_seq));
    }
    let n = count(value);
    // Each event takes at least its head: a larger count is damage, found below, and
    // must not size an allocation first.
    let mut out = Vec::with_capacity((n as usize).min(value.len() / ENTRY_HEAD));
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

    fn open_all(records: &[Record<'_>]) -> Vec<(u64, Vec<u8>)> {
        let mut first = 0;
        let mut out = Vec::new();
        for (n, value) in values(records, 0).iter() {
            let opened = open(first, IVec::from(value)).unwrap();
            assert_eq!(opened.entries.len(), n);
            for e in &opened.entries {
                out.push((e.at_ms, opened.plain[e.range.clone()].to_vec()));
            }
            first += n as u64;
        }
        out
    }

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
        let v = values(&recs, 0);
        assert_eq!(v.parts.len(), 1);
        assert_eq!(count(&v.bytes), 2);
        assert_eq!(
            open_all(&recs),
            vec![(7, b"{\"a\":1}".to_vec()), (9, Vec::new())]
        );
    }

    #[test]
    fn repetitive_events_are_stored_compressed_and_read_back() {
        let event = br#"{"kind":"human","link":{"url":"https://sho.rt/abc?utm_source=mail"},"agent":{"browser":"Chrome"}}"#;
        let recs: Vec<Record> = (0..50)
            .map(|i| Record {
                at_ms: i,
                bytes: event,
            })
            .collect();
        let v = values(&recs, 0);
        assert_eq!(v.parts.len(), 1);
        assert_eq!(v.bytes[STAMP_HEAD], LZ4);
        assert_eq!(count(&v.bytes), 50);
        let plain = COUNT + 50 * (ENTRY_HEAD + event.len());
        assert!(v.bytes.len() * 4 < plain, "{} of {plain}", v.bytes.len());
        let back = open_all(&recs);
        assert_eq!(back.len(), 50);
        assert!(
            back.iter()
                .enumerate()
                .all(|(i, (at, b))| *at == i as u64 && b == event)
        );
    }

    #[test]
    fn a_batch_carries_the_queue_clock_apart_from_its_capture_times() {
        let recs = [
            Record {
                at_ms: 900,
                bytes: b"{}",
            },
            Record {
                at_ms: 5_000,
                bytes: b"{}",
            },
        ];
        let v = values(&recs, 1_234);
        assert_eq!(count(&v.bytes), 2);
        let opened = open(0, IVec::from(&v.bytes[..])).unwrap();
        assert_eq!(opened.stored_ms(), 1_234);
        assert_eq!(opened.entries[1].at_ms, 5_000);
        // A value from before stamps is judged by its newest capture time.
        let old = &v.bytes[STAMP_HEAD..];
        assert_eq!(open(0, IVec::from(old)).unwrap().stored_ms(), 5_000);
    }

    #[test]
    fn a_plain_value_from_before_compression_still_opens() {
        let mut v = 1u32.to_be_bytes().to_vec();
        v.extend_from_slice(&5u64.to_be_bytes());
        v.extend_from_slice(&2u32.to_be_bytes());
        v.extend_from_slice(b"{}");
        let opened = open(3, IVec::from(v)).unwrap();
        assert_eq!(opened.entries[0].at_ms, 5);
        assert_eq!(&opened.plain[opened.entries[0].range.clone()], b"{}");
    }

    #[test]
    fn values_stay_within_the_value_size() {
        // Bytes that do not compress: the runs are split until each value fits.
        let noise: Vec<Vec<u8>> = (0..100u64)
            .map(|i| {
                (0..1000u64)
                    .map(|j| ((i * 7919 + j * 104_729) % 251) as u8 ^ (j as u8).rotate_left(3))
                    .collect()
            })
            .collect();
        let recs: Vec<Record> = noise
            .iter()
            .enumerate()
            .map(|(i, b)| Record {
                at_ms: i as u64,
                bytes: b,
            })
            .collect();
        let v = values(&recs, 0);
        assert!(v.parts.len() > 1);
        assert_eq!(v.iter().map(|(n, _)| n).sum::<usize>(), 100);
        assert!(v.iter().all(|(_, value)| value.len() <= MAX_VALUE));
        assert_eq!(open_all(&recs).len(), 100);
        let huge = vec![0; MAX_VALUE * 2];
        let big = [Record {
            at_ms: 0,
            bytes: &huge,
        }];
        assert_eq!(
            values(&big, 0).parts.len(),
            1,
            "an oversized event still goes, alone"
        );
    }

    #[test]
    fn a_damaged_value_is_corrupt_not_a_panic() {
        let recs = [Record {
            at_ms: 1,
            bytes: &[1; 100],
        }];
        let v = values(&recs, 0).bytes;
        assert_eq!(v[STAMP_HEAD], LZ4);
        for cut in [v.len() - 3, STAMP_HEAD + LZ4_HEAD, STAMP_HEAD + 3, 3] {
            let r = open(5, IVec::from(&v[..cut]));
            assert!(matches!(r, Err(QueueError::Corrupt(5))), "cut at {cut}");
        }
        let mut lying = v.clone();
        lying[STAMP_HEAD + 1 + COUNT..STAMP_HEAD + LZ4_HEAD]
            .copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            open(5, IVec::from(lying)),
            Err(QueueError::Corrupt(5))
        ));
        let mut plain = 1u32.to_be_bytes().to_vec();
        plain.extend_from_slice(&[0; 10]);
        assert!(matches!(
            open(5, IVec::from(plain)),
            Err(QueueError::Corrupt(5))
        ));
    }
}
