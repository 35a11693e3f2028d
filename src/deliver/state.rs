//! What delivery remembers per webhook, in the queue's sled database: events waiting
//! for a retry, dead letters, and health. One tree per webhook (`state:webhook:<id>`).
//!
//! The cursor (the next event never attempted) is kept by the queue itself; this tree
//! holds only what lies behind it, so that the common case, a healthy receiver, writes
//! nothing here at all.
//!
//! Retries are found through an index ordered by due time (`n` + due time + sequence),
//! so that a turn reads only the retries that are due and the time of the next one:
//! a receiver down for hours leaves thousands of retries waiting, and scanning and
//! decoding all of them on every turn cost an idle process a fifth of a core.
//!
//! Due times (`next_at_ms` and the index) are on the queue's clock
//! ([`crate::queue::Queue::clock`]), not the wall clock: on the wall clock, a step back
//! of a day would hold every retry for a day, and a retry recorded after the step
//! would sort before those recorded earlier. The queue's clock never runs back, and it
//! is written with every flush, so a due time written by an earlier process is still
//! on it: after a restart a retry waits at most the rest of its delay, whichever way
//! the wall clock stepped meanwhile (a step forward while stopped counts as time
//! stopped, and brings retries due that much sooner). Dead letters' `at_ms` and health
//! times are for people, on the wall clock.
//!
//! Its size is kept in bytes ([`WebhookState::bytes`]) as entries are written and
//! removed: delivery stops taking new events while it is past `delivery.state_max_bytes`
//! or the disk is below `queue.min_free_bytes` ([`super::select`]), so that a long
//! outage of a receiver cannot fill the disk. Operations on many entries (a replay,
//! a purge, expiry) go [`CHUNK`] entries per batch.
//!
//! Every write marks the queue as holding changes not yet on disk; delivery flushes
//! them within `queue.flush_interval` ([`Queue::flush_if_due`]), so that a power loss
//! with no new clicks does not roll back cursors, retries and health.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::health::Health;
use crate::queue::{Queue, QueueError};

/// An event that failed and waits for its next attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub attempts: u32,
    /// When it is due, on the queue's clock.
    pub next_at_ms: u64,
    pub last_error: String,
    /// The message id of the request it failed in, shared by every event of that
    /// request, so that a failed batch is retried as the same batch with the same id.
    #[serde(default)]
    pub message: Option<String>,
    /// Put in line by an operator's replay; kept through its retries, so that what
    /// became of a replay is counted when it ends ([`super::webhook::Replays`]).
    #[serde(default)]
    pub replay: bool,
}

/// An event that failed its last attempt; kept for replay while the queue holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dead {
    pub attempts: u32,
    pub at_ms: u64,
    pub last_error: String,
    #[serde(default)]
    pub message: Option<String>,
}

/// An event not delivered: waiting for its next attempt, or a dead letter.
#[derive(Debug, Clone)]
pub enum Undelivered {
    Failed(Pending),
    Dead(Dead),
}

/// Retries due now (sequence and record), and when the next one is due.
pub type Due = (Vec<(u64, Pending)>, Option<u64>);

pub struct WebhookState {
    queue: Queue,
    tree: String,
    /// Held while a retry record is read and then changed on that reading, so that
    /// an operator's replay (on the admin listener's thread) and delivery's own
    /// settling do not undo each other.
    retry_lock: parking_lot::Mutex<()>,
    /// Bytes of retries, dead letters and their index entries (keys and values), kept
    /// as they are written and removed.
    bytes: AtomicI64,
    /// The queue's generation `bytes` was counted in: a reopened database may have
    /// rolled some writes back, so it is counted afresh.
    counted_in: AtomicU64,
}

const HEALTH: &[u8] = b"h";
/// Present once the due-time index is complete (written by versions that keep it).
const INDEXED: &[u8] = b"v";
const PENDING: u8 = b'p';
const DEAD: u8 = b'd';
const DUE: u8 = b'n';

/// Retries and dead letters are changed in chunks of at most this many, each its own
/// batch under the retry lock: a replay of a million neither builds one giant batch
/// nor holds delivery's settling for longer than one chunk.
pub const CHUNK: usize = 1024;

fn key(kind: u8, seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = kind;
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn due_key(at_ms: u64, seq: u64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = DUE;
    k[1..9].copy_from_slice(&at_ms.to_be_bytes());
    k[9..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn be(b: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&b[..8]);
    u64::from_be_bytes(buf)
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// The tree's name for a webhook.
pub fn tree_name(webhook: &str) -> String {
    format!("webhook:{webhook}")
}

/// Changes to retries and dead letters written in one batch, and what they change the
/// tree's byte count by.
#[derive(Default)]
struct Change {
    batch: sled::Batch,
    delta: i64,
    empty: bool,
}

impl Change {
    fn new() -> Change {
        Change {
            empty: true,
            ..Change::default()
        }
    }

    fn insert(&mut self, key: &[u8], value: &[u8]) {
        self.batch.insert(key, value);
        self.delta += (key.len() + value.len()) as i64;
        self.empty = false;
    }

    /// Removes `key`, which holds a value of `len` bytes.
    fn remove(&mut self, key: &[u8], len: usize) {
        self.batch.remove(key);
        self.delta -= (key.len() + len) as i64;
        self.empty = false;
    }
}

/// A dead letter that does not decode still moves like one.
fn read_dead(v: &[u8]) -> Dead {
    serde_json::from_slice(v).unwrap_or_else(|e| Dead {
        attempts: 0,
        at_ms: 0,
        last_error: format!("dead letter unreadable: {e}"),
        message: None,
    })
}

impl WebhookState {
    pub fn open(queue: &Queue, webhook: &str) -> Result<WebhookState, QueueError> {
        let s = WebhookState {
            queue: queue.clone(),
            tree: tree_name(webhook),
            retry_lock: parking_lot::Mutex::new(()),
            bytes: AtomicI64::new(0),
            counted_in: AtomicU64::new(queue.generation()),
        };
        s.index_old_entries()?;
        s.count_bytes()?;
        Ok(s)
    }

    fn tree(&self) -> Result<sled::Tree, QueueError> {
        self.queue.state_tree(&self.tree)
    }

    fn apply(&self, change: Change) -> Result<(), QueueError> {
        if change.empty {
            return Ok(());
        }
        self.queue.write_state(&self.tree, change.batch)?;
        self.bytes.fetch_add(change.delta, Ordering::Relaxed);
        Ok(())
    }

    /// Counts the bytes of retries, dead letters and index entries: once at open, and
    /// after the queue's database was opened again.
    fn count_bytes(&self) -> Result<(), QueueError> {
        let generation = self.queue.generation();
        let tree = self.tree()?;
        let mut n = 0i64;
        for kind in [PENDING, DEAD, DUE] {
            for item in tree.scan_prefix([kind]) {
                let (k, v) = item?;
                n += (k.len() + v.len()) as i64;
            }
        }
        self.bytes.store(n, Ordering::Relaxed);
        self.counted_in.store(generation, Ordering::Relaxed);
        Ok(())
    }

    /// Bytes of this webhook's retries and dead letters (keys and values, as sled
    /// stores them before its own overhead).
    pub fn bytes(&self) -> u64 {
        if self.counted_in.load(Ordering::Relaxed) != self.queue.generation()
            && let Err(e) = self.count_bytes()
        {
            tracing::warn!(tree = self.tree, error = %e, "cannot count the bytes of delivery state");
        }
        self.bytes.load(Ordering::Relaxed).max(0) as u64
    }

    /// Retries stored before the due-time index existed get their index entries once.
    fn index_old_entries(&self) -> Result<(), QueueError> {
        let tree = self.tree()?;
        if tree.contains_key(INDEXED)? {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for item in tree.scan_prefix([PENDING]) {
            let (k, v) = item?;
            if let Ok(p) = serde_json::from_slice::<Pending>(&v) {
                batch.insert(&due_key(p.next_at_ms, be(&k[1..])), &[]);
            }
        }
        batch.insert(INDEXED, &[]);
        self.queue.write_state(&self.tree, batch)
    }

    pub fn health(&self) -> Health {
        self.tree()
            .ok()
            .and_then(|t| t.get(HEALTH).ok().flatten())
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default()
    }

    pub fn set_health(&self, h: &Health) -> Result<(), QueueError> {
        let mut batch = sled::Batch::default();
        batch.insert(HEALTH, encode(h));
        self.queue.write_state(&self.tree, batch)
    }

    pub fn pending(&self, seq: u64) -> Result<Option<Pending>, QueueError> {
        let v = self.tree()?.get(key(PENDING, seq))?;
        Ok(v.and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Adds the removal of `seq`'s retry and its index entry to `change`.
    fn unpend(&self, tree: &sled::Tree, change: &mut Change, seq: u64) -> Result<(), QueueError> {
        let k = key(PENDING, seq);
        let Some(v) = tree.get(k)? else {
            return Ok(());
        };
        if let Ok(old) = serde_json::from_slice::<Pending>(&v) {
            change.remove(&due_key(old.next_at_ms, seq), 0);
        }
        change.remove(&k, v.len());
        Ok(())
    }

    /// Adds the removal of `seq`'s dead letter to `change`; returns it, if there was one.
    fn unbury(
        &self,
        tree: &sled::Tree,
        change: &mut Change,
        seq: u64,
    ) -> Result<Option<Dead>, QueueError> {
        let k = key(DEAD, seq);
        let Some(v) = tree.get(k)? else {
            return Ok(None);
        };
        change.remove(&k, v.len());
        Ok(Some(read_dead(&v)))
    }

    /// Adds `seq`'s retry `p` and its index entry to `change`.
    fn pend(change: &mut Change, seq: u64, p: &Pending) {
        change.insert(&key(PENDING, seq), &encode(p));
        change.insert(&due_key(p.next_at_ms, seq), &[]);
    }

    pub fn set_pending(&self, seq: u64, p: &Pending) -> Result<(), QueueError> {
        let _held = self.retry_lock.lock();
        let tree = self.tree()?;
        let mut change = Change::new();
        self.unpend(&tree, &mut change, seq)?;
        Self::pend(&mut change, seq, p);
        self.apply(change)
    }

    /// Clears the retry that was due at `due_at` once it is delivered (a retry recorded
    /// since, by a replay while the attempt was in flight, stays), and any dead letter
    /// of the event: a dead letter of a delivered event would send it again on replay.
    pub fn clear_retry(&self, seq: u64, due_at: u64) -> Result<(), QueueError> {
        let _held = self.retry_lock.lock();
        let tree = self.tree()?;
        let mut change = Change::new();
        let k = key(PENDING, seq);
        if let Some(v) = tree.get(k)?
            && serde_json::from_slice::<Pending>(&v).is_ok_and(|p| p.next_at_ms == due_at)
        {
            change.remove(&due_key(due_at, seq), 0);
            change.remove(&k, v.len());
        }
        self.unbury(&tree, &mut change, seq)?;
        self.apply(change)
    }

    /// Retries due at `now_ms`, earliest first, at least `limit` of them when there are
    /// as many (more when the limit falls among retries due at the same time, so that
    /// the events of one failed request stay together); and when the next retry not yet
    /// due will be.
    pub fn due(&self, now_ms: u64, limit: usize) -> Result<Due, QueueError> {
        let tree = self.tree()?;
        let mut due = Vec::new();
        let mut last_at = None;
        for item in tree.range(due_key(0, 0)..due_key(u64::MAX, u64::MAX)) {
            let (k, _) = item?;
            let (at, seq) = (be(&k[1..9]), be(&k[9..17]));
            if at > now_ms {
                return Ok((due, Some(at)));
            }
            if due.len() >= limit && last_at != Some(at) {
                return Ok((due, Some(at)));
            }
            last_at = Some(at);
            match tree.get(key(PENDING, seq))? {
                Some(v) => match serde_json::from_slice::<Pending>(&v) {
                    Ok(p) => due.push((seq, p)),
                    // Not readable: due now, as a first retry, rather than stuck forever.
                    Err(e) => due.push((
                        seq,
                        Pending {
                            attempts: 1,
                            next_at_ms: at,
                            last_error: format!("retry record unreadable: {e}"),
                            message: None,
                            replay: false,
                        },
                    )),
                },
                // An index entry without its retry: left over, removed.
                None => self.apply({
                    let mut c = Change::new();
                    c.remove(&k, 0);
                    c
                })?,
            }
        }
        Ok((due, None))
    }

    /// Moves `seq` to the dead letters (from pending, if it was there).
    pub fn add_dead(&self, seq: u64, d: &Dead) -> Result<(), QueueError> {
        let _held = self.retry_lock.lock();
        let tree = self.tree()?;
        let mut change = Change::new();
        self.unpend(&tree, &mut change, seq)?;
        self.unbury(&tree, &mut change, seq)?;
        change.insert(&key(DEAD, seq), &encode(d));
        self.apply(change)
    }

    /// How many dead letters there are, without reading them.
    pub fn dead_count(&self) -> Result<usize, QueueError> {
        self.count(DEAD)
    }

    /// How many events wait for a retry, without reading them.
    pub fn pending_count(&self) -> Result<usize, QueueError> {
        self.count(PENDING)
    }

    fn count(&self, kind: u8) -> Result<usize, QueueError> {
        let mut n = 0;
        for item in self.tree()?.scan_prefix([kind]).keys() {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// The newest dead letter's sequence, if there is one.
    fn last_dead(&self) -> Result<Option<u64>, QueueError> {
        Ok(self
            .tree()?
            .scan_prefix([DEAD])
            .keys()
            .next_back()
            .transpose()?
            .map(|k| be(&k[1..])))
    }

    /// Moves every dead letter there is now back to pending, due now, with a fresh count
    /// of attempts and the message id it failed with, [`CHUNK`] at a time (dead letters
    /// made meanwhile, by replayed events failing again, are left for the next replay).
    /// Returns how many.
    pub fn replay_dead(&self, now_ms: u64) -> Result<usize, QueueError> {
        let Some(end) = self.last_dead()? else {
            return Ok(0);
        };
        let mut n = 0;
        let mut after = None;
        loop {
            let page: Vec<u64> = self
                .dead_page(after, CHUNK)?
                .into_iter()
                .map(|(seq, _)| seq)
                .take_while(|seq| *seq <= end)
                .collect();
            let Some(&last) = page.last() else {
                return Ok(n);
            };
            n += self.revive(&page, now_ms, false)?;
            if last >= end {
                return Ok(n);
            }
            after = Some(last);
        }
    }

    /// Moves the dead letters among `seqs` (at most [`CHUNK`]) back to pending, due now,
    /// and with `retries_too` the retries among them too (an operator's resend), each
    /// with a fresh count of attempts and the message id it failed in; events that are
    /// neither (delivered meanwhile) are left be. Returns how many moved.
    fn revive(&self, seqs: &[u64], now_ms: u64, retries_too: bool) -> Result<usize, QueueError> {
        let _held = self.retry_lock.lock();
        let tree = self.tree()?;
        let mut change = Change::new();
        let mut n = 0;
        for &seq in seqs {
            // Read under the lock: delivery may have settled it since the page was read.
            let pending = if retries_too {
                self.pending(seq)?
            } else {
                None
            };
            let dead = self.unbury(&tree, &mut change, seq)?;
            let (last_error, message) = match (pending, dead) {
                (Some(p), _) => (p.last_error, p.message),
                (None, Some(d)) => (d.last_error, d.message),
                (None, None) => continue,
            };
            self.unpend(&tree, &mut change, seq)?;
            let p = Pending {
                attempts: 0,
                next_at_ms: now_ms,
                last_error,
                message,
                replay: true,
            };
            Self::pend(&mut change, seq, &p);
            n += 1;
        }
        self.apply(change)?;
        Ok(n)
    }

    /// Dead letters after sequence `after` (all when `None`), oldest event first, at
    /// most `limit`.
    pub fn dead_page(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Dead)>, QueueError> {
        let from = after.map_or(0, |a| a.saturating_add(1));
        let mut out = Vec::new();
        for item in self.tree()?.range(key(DEAD, from)..=key(DEAD, u64::MAX)) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item?;
            if let Ok(d) = serde_json::from_slice(&v) {
                out.push((be(&k[1..]), d));
            }
        }
        Ok(out)
    }

    /// Moves one dead letter back to pending, due now; `false` when there is none.
    pub fn replay_dead_one(&self, seq: u64, now_ms: u64) -> Result<bool, QueueError> {
        Ok(self.revive(&[seq], now_ms, false)? == 1)
    }

    /// Removes the entries of `kind` from `from` up to `to` (inclusive), [`CHUNK`] per
    /// batch. Returns how many.
    fn remove_range(&self, kind: u8, from: u64, to: u64) -> Result<usize, QueueError> {
        let tree = self.tree()?;
        let mut n = 0;
        let mut at = from;
        loop {
            let mut change = Change::new();
            let mut last = None;
            for item in tree.range(key(kind, at)..=key(kind, to)).take(CHUNK) {
                let (k, v) = item?;
                change.remove(&k, v.len());
                last = Some(be(&k[1..]));
                n += 1;
            }
            self.apply(change)?;
            match last {
                Some(l) if l < to => at = l + 1,
                _ => return Ok(n),
            }
        }
    }

    /// Removes dead letters: one, or all. Returns how many.
    pub fn purge_dead(&self, seq: Option<u64>) -> Result<usize, QueueError> {
        match seq {
            Some(s) => self.remove_range(DEAD, s, s),
            None => self.remove_range(DEAD, 0, u64::MAX),
        }
    }

    /// Puts `seqs` (at most [`CHUNK`], a caller's chunk of a range) in line for an
    /// attempt now, with a fresh count of attempts (a replay); one already waiting for a
    /// retry is moved to now, and one that was a dead letter is no longer one.
    /// The message id it failed in is kept, so that the replay is recorded as a replay
    /// of that message.
    pub fn replay(&self, seqs: &[u64], now_ms: u64) -> Result<(), QueueError> {
        let _held = self.retry_lock.lock();
        let tree = self.tree()?;
        let mut change = Change::new();
        for &seq in seqs {
            let dead = self
                .unbury(&tree, &mut change, seq)?
                .and_then(|d| d.message);
            let pending = self.pending(seq)?.and_then(|p| p.message);
            self.unpend(&tree, &mut change, seq)?;
            let p = Pending {
                attempts: 0,
                next_at_ms: now_ms,
                last_error: "replayed".into(),
                message: pending.or(dead),
                replay: true,
            };
            Self::pend(&mut change, seq, &p);
        }
        self.apply(change)
    }

    /// Puts those of `seqs` (at most [`CHUNK`]) that still wait for a retry or are dead
    /// letters in line for an attempt now (an operator's resend). Returns how many.
    pub fn resend(&self, seqs: &[u64], now_ms: u64) -> Result<usize, QueueError> {
        self.revive(seqs, now_ms, true)
    }

    /// Retries and dead letters after sequence `after` (all when `None`), in sequence
    /// order, at most `limit`; `failed` and `dead` choose which.
    pub fn undelivered_page(
        &self,
        after: Option<u64>,
        limit: usize,
        failed: bool,
        dead: bool,
    ) -> Result<Vec<(u64, Undelivered)>, QueueError> {
        let from = after.map_or(Some(0), |a| a.checked_add(1));
        let Some(from) = from else {
            return Ok(Vec::new());
        };
        let tree = self.tree()?;
        let kinds = |kind: u8, on: bool| {
            on.then(|| tree.range(key(kind, from)..=key(kind, u64::MAX)))
                .into_iter()
                .flatten()
                .peekable()
        };
        let (mut p, mut d) = (kinds(PENDING, failed), kinds(DEAD, dead));
        let seq_of = |item: Option<&Result<(sled::IVec, sled::IVec), sled::Error>>| {
            item.map(|r| r.as_ref().map_or(0, |(k, _)| be(&k[1..])))
        };
        let mut out = Vec::new();
        while out.len() < limit {
            let take_pending = match (seq_of(p.peek()), seq_of(d.peek())) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(a), Some(b)) => a <= b,
            };
            let (k, v) = if take_pending { p.next() } else { d.next() }
                .transpose()?
                .unwrap_or_default();
            let seq = be(&k[1..]);
            out.push((
                seq,
                if take_pending {
                    match serde_json::from_slice(&v) {
                        Ok(pending) => Undelivered::Failed(pending),
                        Err(_) => continue,
                    }
                } else {
                    Undelivered::Dead(read_dead(&v))
                },
            ));
        }
        Ok(out)
    }

    /// The oldest event waiting for a retry.
    pub fn oldest_pending(&self) -> Result<Option<u64>, QueueError> {
        Ok(self
            .tree()?
            .scan_prefix([PENDING])
            .keys()
            .next()
            .transpose()?
            .map(|k| be(&k[1..])))
    }

    /// Removes the dead letters of events the queue no longer holds (below `first`):
    /// they can never be replayed. Returns how many.
    pub fn expire_dead(&self, first: u64) -> Result<usize, QueueError> {
        match first.checked_sub(1) {
            Some(last) => self.remove_range(DEAD, 0, last),
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(at: u64, message: Option<&str>) -> Pending {
        Pending {
            attempts: 1,
            next_at_ms: at,
            last_error: "503".into(),
            message: message.map(str::to_string),
            replay: false,
        }
    }

    #[test]
    fn due_reads_only_what_is_due_in_time_order() {
        let (_dir, q) = crate::queue::tests::open_for_tests();
        let s = WebhookState::open(&q, "w").unwrap();
        for seq in 0..1000u64 {
            s.set_pending(seq, &pending(10_000 + seq, None)).unwrap();
        }
        s.set_pending(5000, &pending(50, None)).unwrap();
        let (due, next) = s.due(100, 10).unwrap();
        assert_eq!(due.iter().map(|d| d.0).collect::<Vec<_>>(), [5000]);
        assert_eq!(next, Some(10_000));
        let (due, next) = s.due(10_004, 3).unwrap();
        assert_eq!(due.iter().map(|d| d.0).collect::<Vec<_>>(), [5000, 0, 1]);
        assert_eq!(next, Some(10_002));
        // Moving a retry moves its index entry: it is not found at its old time.
        s.set_pending(0, &pending(20_000, None)).unwrap();
        s.clear_retry(5000, 50).unwrap();
        let (due, _) = s.due(10_000, 10).unwrap();
        assert!(due.is_empty(), "{due:?}");
    }

    #[test]
    fn a_limit_does_not_split_retries_due_at_the_same_time() {
        let (_dir, q) = crate::queue::tests::open_for_tests();
        let s = WebhookState::open(&q, "w").unwrap();
        for seq in 0..5 {
            s.set_pending(seq, &pending(7, Some("msg_a"))).unwrap();
        }
        s.set_pending(9, &pending(8, Some("msg_b"))).unwrap();
        let (due, next) = s.due(100, 2).unwrap();
        assert_eq!(due.len(), 5, "the whole request at time 7");
        assert_eq!(next, Some(8));
    }

    #[test]
    fn a_delivered_retry_does_not_clear_a_replay_recorded_meanwhile() {
        let (_dir, q) = crate::queue::tests::open_for_tests();
        let s = WebhookState::open(&q, "w").unwrap();
        s.set_pending(4, &pending(100, None)).unwrap();
        // The retry due at 100 is in flight when an operator replays the event.
        s.replay(&[4], 500).unwrap();
        s.clear_retry(4, 100).unwrap();
        let (due, _) = s.due(500, 10).unwrap();
        assert_eq!(due.len(), 1, "the replay stays");
        assert_eq!(due[0].1.next_at_ms, 500);
        s.clear_retry(4, 500).unwrap();
        assert!(s.due(u64::MAX / 2, 10).unwrap().0.is_empty());
    }

    #[test]
    fn dead_letters_move_out_of_pending_and_expire_with_their_events() {
        let (_dir, q) = crate::queue::tests::open_for_tests();
        let s = WebhookState::open(&q, "w").unwrap();
        s.set_pending(3, &pending(7, Some("m"))).unwrap();
        let d = Dead {
            attempts: 5,
            at_ms: 9,
            last_error: "503".into(),
            message: Some("m".into()),
        };
        s.add_dead(3, &d).unwrap();
        s.add_dead(10, &d).unwrap();
        assert!(s.due(100, 10).unwrap().0.is_empty());
        assert_eq!(s.dead_count().unwrap(), 2);
        assert_eq!(s.expire_dead(5).unwrap(), 1);
        assert_eq!(s.replay_dead(50).unwrap(), 1);
        let (due, _) = s.due(50, 10).unwrap();
        assert_eq!(due[0].0, 10);
        assert_eq!(due[0].1.attempts, 0);
        assert_eq!(due[0].1.message.as_deref(), Some("m"));
    }

    #[test]
    fn undelivered_pages_merge_retries_and_dead_letters_and_a_resend_keeps_message_ids() {
        let (_dir, q) = crate::queue::tests::open_for_tests();
        let s = WebhookState::open(&q, "w").unwrap();
        let d = Dead {
            attempts: 5,
            at_ms: 9,
            last_error: "503".into(),
            message: Some("msg_dead".into()),
        };
        for seq in [2, 5, 9] {
            s.set_pending(seq, &pending(1_000, Some("msg_failed")))
                .unwrap();
        }
        for seq in [1, 4, 7] {
            s.add_dead(seq, &d).unwrap();
        }
        let seqs =
            |page: Vec<(u64, Undelivered)>| page.into_iter().map(|p| p.0).collect::<Vec<_>>();
        assert_eq!(
            seqs(s.undelivered_page(None, 10, true, true).unwrap()),
            [1, 2, 4, 5, 7, 9]
        );
        assert_eq!(
            seqs(s.undelivered_page(Some(4), 2, true, true).unwrap()),
            [5, 7]
        );
        assert_eq!(
            seqs(s.undelivered_page(None, 10, false, true).unwrap()),
            [1, 4, 7]
        );
        assert_eq!(
            seqs(s.undelivered_page(None, 10, true, false).unwrap()),
            [2, 5, 9]
        );
        assert!(
            s.undelivered_page(Some(u64::MAX), 10, true, true)
                .unwrap()
                .is_empty()
        );

        // One retry, one dead letter and one event no longer waiting (delivered).
        assert_eq!(s.resend(&[2, 4, 3], 50).unwrap(), 2);
        let (due, _) = s.due(50, 10).unwrap();
        let by_seq = |seq: u64| due.iter().find(|d| d.0 == seq).unwrap().1.clone();
        assert_eq!(by_seq(2).message.as_deref(), Some("msg_failed"));
        assert_eq!(by_seq(4).message.as_deref(), Some("msg_dead"));
        assert!(by_seq(2).replay && by_seq(4).replay);
        assert_eq!(by_seq(4).attempts, 0);
        assert_eq!(s.dead_count().unwrap(), 2);
        assert!(
            s.pending(3).unwrap().is_none(),
            "nothing made up for a delivered event"
        );
        // A dead letter's replay leaves retries where they are.
        assert!(!s.replay_dead_one(5, 60).unwrap());
    }

    #[test]
    fn retries_of_an_older_version_are_indexed_when_opened() {
        let (_dir, q) = crate::queue::tests::open_for_tests();
        let tree = q.state_tree(&tree_name("old")).unwrap();
        // Written the way earlier versions did: a retry without an index entry.
        let old = br#"{"attempts":2,"next_at_ms":40,"last_error":"x"}"#;
        tree.insert(key(PENDING, 12), &old[..]).unwrap();
        let s = WebhookState::open(&q, "old").unwrap();
        let (due, _) = s.due(40, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0, 12);
        assert_eq!(due[0].1.message, None);
    }

    #[test]
    fn the_byte_count_follows_every_change_and_replays_clear_dead_letters() {
        let (_dir, q) = crate::queue::tests::open_for_tests();
        let s = WebhookState::open(&q, "w").unwrap();
        let exact = |s: &WebhookState| {
            let kept = s.bytes();
            s.count_bytes().unwrap();
            assert_eq!(kept, s.bytes(), "kept as counted afresh");
            kept
        };
        assert_eq!(exact(&s), 0);
        for seq in 0..3000u64 {
            s.set_pending(seq, &pending(100 + seq % 7, Some("m")))
                .unwrap();
        }
        let full = exact(&s);
        assert!(full > 3000 * 26, "{full}");
        s.set_pending(5, &pending(9, None)).unwrap();
        s.clear_retry(6, 106).unwrap();
        let d = Dead {
            attempts: 5,
            at_ms: 9,
            last_error: "503".into(),
            message: None,
        };
        for seq in 10..2500 {
            s.add_dead(seq, &d).unwrap();
        }
        exact(&s);
        // A range replay takes events out of the dead letters, in chunks.
        let seqs: Vec<u64> = (10..1000).collect();
        for chunk in seqs.chunks(CHUNK) {
            s.replay(chunk, 50).unwrap();
        }
        assert_eq!(s.dead_count().unwrap(), 1500);
        exact(&s);
        // Replaying every dead letter: more than one chunk.
        assert_eq!(s.replay_dead(60).unwrap(), 1500);
        assert_eq!(s.dead_count().unwrap(), 0);
        exact(&s);
        s.add_dead(7, &d).unwrap();
        s.add_dead(8, &d).unwrap();
        assert_eq!(s.expire_dead(8).unwrap(), 1);
        assert_eq!(s.purge_dead(None).unwrap(), 1);
        // Delivered: a retry's record and any dead letter of it go.
        s.add_dead(2999, &d).unwrap();
        s.set_pending(2999, &pending(70, None)).unwrap();
        s.add_dead(2999, &d).unwrap();
        s.clear_retry(2999, 70).unwrap();
        assert_eq!(s.dead_count().unwrap(), 0);
        exact(&s);
    }
}
