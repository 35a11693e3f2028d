//! Where the rollups live: the queue's state tree `state:stats`, holding one record per
//! minute (key `m` + the minute's number since the epoch, big-endian, so they iterate in
//! time order) with its counts by kind apart (key `k`), one per hour (key `h` + the hour's number: the same counts over the
//! hour, so that a week's tops merge 168 records rather than 10,080) and the rollup's
//! cursor (key `cursor`).
//!
//! The cursor lives here, not among the queue's cursors: those are the webhooks', and
//! the queue's retention, its `expired` count, `status` and the webhooks listing read
//! them. The rollup's cursor and the minutes and hours it has counted are written in
//! one sled batch on one tree, which sled applies atomically and recovers whole or not
//! at all, so a crash neither loses nor double-counts: after it, the cursor and the
//! counts are those of the same moment, and counting resumes from that cursor.

use super::minute::{KINDS, Minute};
use crate::queue::{Queue, QueueError};

/// The state tree's name (`state:stats` in the database).
pub const TREE: &str = "stats";
const CURSOR: &[u8] = b"cursor";

pub const MINUTE_MS: u64 = 60_000;
pub const HOUR_MS: u64 = 3_600_000;

/// What a record covers: a minute or an hour; `Series` is a minute's counts by kind
/// alone, written beside its full record, so that a week's series reads 10,080 records
/// of a dozen bytes rather than of a few KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Minute,
    Hour,
    Series,
}

impl Span {
    pub fn ms(self) -> u64 {
        match self {
            Span::Minute | Span::Series => MINUTE_MS,
            Span::Hour => HOUR_MS,
        }
    }

    fn prefix(self) -> u8 {
        match self {
            Span::Minute => b'm',
            Span::Hour => b'h',
            Span::Series => b'k',
        }
    }

    /// The key of the `n`th minute or hour since the epoch.
    fn key(self, n: u64) -> [u8; 9] {
        let mut k = [self.prefix(); 9];
        k[1..].copy_from_slice(&n.to_be_bytes());
        k
    }
}

fn be_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

/// The next sequence the rollup will count, if it has counted before.
pub fn cursor(queue: &Queue) -> Result<Option<u64>, QueueError> {
    Ok(queue
        .state_tree(TREE)?
        .get(CURSOR)?
        .and_then(|v| be_u64(&v)))
}

/// A stored minute or hour; `Ok(None)` when none is stored or it does not decode.
pub fn load(queue: &Queue, span: Span, n: u64) -> Result<Option<Minute>, QueueError> {
    Ok(queue
        .state_tree(TREE)?
        .get(span.key(n))?
        .and_then(|v| Minute::decode(&v)))
}

/// Writes `records` (minutes and hours) and the cursor in one atomic batch, into the
/// queue's database of `generation` only; returns the bytes of the records.
pub fn write<'a>(
    queue: &Queue,
    generation: u64,
    records: impl Iterator<Item = (Span, u64, &'a Minute)>,
    cursor: u64,
) -> Result<usize, QueueError> {
    let mut batch = sled::Batch::default();
    let mut bytes = 0;
    for (span, n, m) in records {
        let record = m.encode();
        bytes += record.len();
        batch.insert(&span.key(n), record);
        if span == Span::Minute {
            let kinds = m.encode_kinds();
            bytes += kinds.len();
            batch.insert(&Span::Series.key(n), kinds);
        }
    }
    batch.insert(CURSOR, &cursor.to_be_bytes());
    queue.write_state_in(generation, TREE, batch)?;
    Ok(bytes)
}

/// Removes the minutes before `minute`, and the hours that ended by then; returns how
/// many records.
pub fn prune(queue: &Queue, minute: u64) -> Result<usize, QueueError> {
    let tree = queue.state_tree(TREE)?;
    let mut batch = sled::Batch::default();
    let mut n = 0;
    let hour = minute * MINUTE_MS / HOUR_MS;
    let minutes = tree.range(Span::Minute.key(0)..Span::Minute.key(minute));
    let series = tree.range(Span::Series.key(0)..Span::Series.key(minute));
    let hours = tree.range(Span::Hour.key(0)..Span::Hour.key(hour));
    for item in minutes.chain(series).chain(hours) {
        batch.remove(item?.0);
        n += 1;
    }
    if n > 0 {
        queue.write_state(TREE, batch)?;
    }
    Ok(n)
}

/// The stored records of `span` numbered from `from` up to, not including, `to`,
/// oldest first, read by `decode`; records that do not decode are passed over.
pub fn range<T>(
    queue: &Queue,
    span: Span,
    from: u64,
    to: u64,
    decode: impl Fn(&[u8]) -> Option<T>,
) -> Result<impl Iterator<Item = Result<(u64, T), QueueError>>, QueueError> {
    let tree = queue.state_tree(TREE)?;
    Ok(tree
        .range(span.key(from)..span.key(to.max(from)))
        .filter_map(move |item| match item {
            Ok((k, v)) => {
                let n = be_u64(&k[1..])?;
                decode(&v).map(|t| Ok((n, t)))
            }
            Err(e) => Some(Err(QueueError::Storage(e))),
        }))
}

/// Only the counts by kind of a stored record: what a series needs, read without
/// its keys.
pub fn kinds(b: &[u8]) -> Option<[u64; KINDS]> {
    Minute::decode_kinds(b)
}
