//! Where the rollups live: the queue's state tree `state:stats`, holding one record per
//! minute (key `m` + the minute's number since the epoch, big-endian, so they iterate in
//! time order) and the rollup's cursor (key `cursor`).
//!
//! The cursor lives here, not among the queue's cursors: those are the webhooks', and
//! the queue's retention, its `expired` count, `status` and the webhooks listing read
//! them. The rollup's cursor and the minutes it has counted are written in one sled
//! batch on one tree, which sled applies atomically and recovers whole or not at all,
//! so a crash neither loses nor double-counts: after it, the cursor and the counts are
//! those of the same moment, and counting resumes from that cursor.

use super::minute::Minute;
use crate::queue::{Queue, QueueError};

/// The state tree's name (`state:stats` in the database).
pub const TREE: &str = "stats";
const CURSOR: &[u8] = b"cursor";
const MINUTE: u8 = b'm';

pub const MINUTE_MS: u64 = 60_000;

fn minute_key(minute: u64) -> [u8; 9] {
    let mut k = [MINUTE; 9];
    k[1..].copy_from_slice(&minute.to_be_bytes());
    k
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

/// A stored minute; `Ok(None)` when none is stored or it does not decode.
pub fn load(queue: &Queue, minute: u64) -> Result<Option<Minute>, QueueError> {
    Ok(queue
        .state_tree(TREE)?
        .get(minute_key(minute))?
        .and_then(|v| Minute::decode(&v)))
}

/// Writes `minutes` and the cursor in one atomic batch.
pub fn write<'a>(
    queue: &Queue,
    minutes: impl Iterator<Item = (u64, &'a Minute)>,
    cursor: u64,
) -> Result<usize, QueueError> {
    let mut batch = sled::Batch::default();
    let mut bytes = 0;
    for (minute, m) in minutes {
        let record = m.encode();
        bytes += record.len();
        batch.insert(&minute_key(minute), record);
    }
    batch.insert(CURSOR, &cursor.to_be_bytes());
    queue.write_state(TREE, batch)?;
    Ok(bytes)
}

/// Removes the minutes before `minute`; returns how many.
pub fn prune(queue: &Queue, minute: u64) -> Result<usize, QueueError> {
    let tree = queue.state_tree(TREE)?;
    let mut batch = sled::Batch::default();
    let mut n = 0;
    for item in tree.range(minute_key(0)..minute_key(minute)) {
        batch.remove(item?.0);
        n += 1;
    }
    if n > 0 {
        queue.write_state(TREE, batch)?;
    }
    Ok(n)
}

/// The stored minutes from `from` up to, not including, `to`, oldest first; records
/// that do not decode are passed over.
pub fn range(
    queue: &Queue,
    from: u64,
    to: u64,
) -> Result<impl Iterator<Item = Result<(u64, Minute), QueueError>>, QueueError> {
    let tree = queue.state_tree(TREE)?;
    Ok(tree
        .range(minute_key(from)..minute_key(to.max(from)))
        .filter_map(|item| match item {
            Ok((k, v)) => {
                let minute = be_u64(&k[1..])?;
                Minute::decode(&v).map(|m| Ok((minute, m)))
            }
            Err(e) => Some(Err(QueueError::Storage(e))),
        }))
}
