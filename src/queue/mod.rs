//! The queue: an append-only log of events in sled, read by consumers at their own pace.
//!
//! # What it guarantees
//! - **Order.** Events get consecutive sequence numbers (big-endian `u64` keys, so sled
//!   iterates them in order). Appends are serialised by one lock held by enrichment
//!   workers only, so a reader never sees seq `n+1` before `n` is readable: a cursor
//!   may safely move past everything it has seen.
//! - **Durability.** An append is in sled's memory at once and on disk after the next
//!   flush (which ends in an `fdatasync`, so that it survives a power cut: [`durable`]),
//!   which the enrichment threads make every `queue.flush_interval` (50 ms by
//!   default; `"0s"`: after every batch). Consumers' cursors and state are flushed
//!   within the same interval by the consumers ([`Queue::flush_if_due`]). A SIGKILL or
//!   power loss loses what was appended since the last flush
//!   (`clicktap_queue_unflushed_events`) plus what sat in the capture channel, and
//!   rolls back the state changes since the last flush
//!   (`clicktap_queue_unflushed_writes`); a graceful stop flushes everything.
//! - **Bounds.** `queue.max_events` and `queue.max_bytes` cap the log. When full,
//!   `drop_newest` refuses new events and `drop_oldest` evicts the oldest; both are
//!   counted (`clicktap_queue_dropped_total`). Events stored longer ago than
//!   `queue.retention` are removed whether or not every consumer has read them
//!   (counted as `expired` when one had not), judged on the queue's own clock
//!   ([`Queue::clock`]), which a step of the wall clock does not move. The queue never blocks capture: it is written by the
//!   enrichment threads, and the proxy only ever `try_send`s to them.
//! - **A full disk.** While the file system holding the queue has less than
//!   `queue.min_free_bytes` free, appends are refused and counted (`no_space`), so that
//!   sled never meets a full disk in the first place. Should it meet one anyway (or a
//!   file system gone read-only), the database is taken out of service and opened
//!   again by itself once it can be ([`store`]); capture resumes with it.
//! - **Numbers are never handed out twice.** A database opened again may have lost
//!   events that never reached the disk, and with them the numbers they had; the head
//!   continues past every number this process handed out, written to `meta` and flushed
//!   before the reopened queue hands out another. Across a restart the disk alone
//!   tells: sled writes one log for all trees and recovers a prefix of it, so whatever
//!   survived that names a sequence (a cursor, a retry, a dead letter, the rollup's
//!   cursor) was written after the event or the `meta` record that holds its number,
//!   and survived with it. A cursor is never written past the head
//!   ([`Queue::set_cursor`]), and one found past it at open is moved back to it.
//! - **Consumers re-read after a reopen.** What a consumer keeps in memory of its
//!   position was true of the database that failed, whose unflushed writes are gone;
//!   [`Queue::generation`] changes with every reopen, and a consumer that keeps a
//!   position in memory reads it again from the queue when it does (and ties its own
//!   writes to the generation it read, [`Queue::write_state_in`]).
//! - **Consumers.** Each consumer (a webhook today; any other sink later) owns a
//!   cursor, the next sequence it will read, and may keep its own state in trees it
//!   reaches through [`Queue::state_tree`] and [`Queue::write_state`]. Nothing here
//!   knows what a consumer does with events: the queue stores bytes.
//!
//! # Layout
//! One sled database under `queue.path` with the trees `events` (one value per
//! appended batch, keyed by its first sequence; see [`batch`] for the layout), `meta`
//! (the next sequence, written when the front is trimmed, so that numbering continues
//! past a log emptied by retention; the stored bytes and the queue's clock, written
//! with each flush),
//! `cursors` (consumer → seq) and one `state:<name>` tree per consumer-owned purpose.
//! Retention and eviction remove whole batches.

mod append;
mod batch;
pub mod cache;
mod durable;
mod read;
mod retain;
mod space;
mod state;
pub mod store;

pub use append::Appended;
pub use batch::{MAX_VALUE, unpack_lz4};
pub use read::{Stored, decode_batch};

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

use crate::clock::Timeline;
use crate::config::QueueConfig;
use crate::metrics::Metrics;
use store::{Reopened, Slot, Store};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot open the queue at {path}: {source}")]
    Open { path: String, source: sled::Error },
    #[error("queue storage error: {0}")]
    Storage(#[from] sled::Error),
    #[error("corrupt queue record at seq {0}")]
    Corrupt(u64),
    #[error("the queue's storage is out of service until it can be opened again: {0}")]
    Unavailable(String),
    #[error("the queue's storage was opened again since this write was prepared")]
    Reopened,
}

/// The queue, once it is open. A new process of a binary upgrade serves and captures
/// before the old one lets go of the queue; what needs the queue holds this and asks.
#[derive(Clone, Default)]
pub struct QueueCell(Arc<std::sync::OnceLock<Queue>>);

impl QueueCell {
    /// A cell that is filled later ([`QueueCell::set`]).
    pub fn new() -> QueueCell {
        QueueCell::default()
    }

    /// A cell holding an open queue.
    pub fn ready(queue: Queue) -> QueueCell {
        let cell = QueueCell::default();
        cell.set(queue);
        cell
    }

    pub fn get(&self) -> Option<&Queue> {
        self.0.get()
    }

    pub fn set(&self, queue: Queue) {
        let _ = self.0.set(queue);
    }
}

/// One event to append: when it was captured and its serialised form (borrowed, so
/// that a writer can serialise a whole batch into one reused buffer).
#[derive(Clone, Copy)]
pub struct Record<'a> {
    pub at_ms: u64,
    pub bytes: &'a [u8],
}

/// A cheap handle to the queue; clones share it.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    slot: Slot,
    cfg: QueueConfig,
    metrics: Arc<Metrics>,
    /// Held while sequence numbers are given out and written, while the front of the
    /// log is trimmed, and while a broken database is opened again.
    append_lock: Mutex<()>,
    /// The next sequence to give out; everything below it is readable.
    head: AtomicU64,
    /// The oldest sequence still stored.
    first: AtomicU64,
    /// Bytes of stored values, tracked as they are written and removed.
    bytes: AtomicI64,
    head_tx: watch::Sender<u64>,
    /// When the last flush started; consumers flush their writes within
    /// `flush_interval` of it.
    last_flush: Mutex<Instant>,
    /// When the last `no_space` refusal was logged (on `clock`).
    no_space_logged: AtomicU64,
    /// The clock retention, batch ages and retry due times are kept on: it never runs
    /// back ([`crate::clock`]), and its reading is written with every flush so that the
    /// next process resumes past it.
    clock: Timeline,
    /// How far events' capture times (wall clock) have stood from their batches'
    /// stamps (`clock`), least and most, in ms: what a search by capture time widens
    /// its range by ([`Queue::seqs_captured`]). Only ever widened; written with every
    /// flush.
    skew: (AtomicI64, AtomicI64),
    /// The generation of the database in service: 0 at open, one more per reopen.
    generation: AtomicU64,
}

const META_NEXT: &[u8] = b"next_seq";
const META_BYTES: &[u8] = b"bytes";
const META_CLOCK: &[u8] = b"clock";
const META_SKEW: &[u8] = b"capture_skew";

/// Where the log stands in a database: the next sequence, the oldest stored, bytes.
fn position(s: &Store) -> Result<(u64, u64, i64), sled::Error> {
    let stored_next = s
        .meta
        .get(META_NEXT)?
        .map(|v| read::be_u64(&v))
        .unwrap_or(0);
    let after_last = s
        .events
        .last()?
        .map(|(k, v)| read::be_u64(&k) + batch::count(&v))
        .unwrap_or(0);
    let head = stored_next.max(after_last);
    let first = s
        .events
        .first()?
        .map(|(k, _)| read::be_u64(&k))
        .unwrap_or(head);
    // The byte count is saved with every flush; reading the whole log to count it
    // would load all of it at start.
    let bytes = match s.meta.get(META_BYTES)? {
        Some(v) => read::be_u64(&v) as i64,
        None => {
            let mut n = 0i64;
            for item in s.events.iter() {
                n += item?.1.len() as i64;
            }
            n
        }
    };
    Ok((head, first, bytes))
}

impl Queue {
    /// Opens (or creates) the queue and recovers its position.
    pub fn open(cfg: &QueueConfig, metrics: Arc<Metrics>) -> Result<Queue, QueueError> {
        let store = Store::open(cfg)?;
        let (head, first, bytes) = position(&store).map_err(|source| QueueError::Open {
            path: cfg.path.display().to_string(),
            source,
        })?;
        let clock = Timeline::resume(
            store
                .meta
                .get(META_CLOCK)
                .ok()
                .flatten()
                .map_or(0, |v| read::be_u64(&v)),
        );
        let skew = match store.meta.get(META_SKEW).ok().flatten() {
            Some(v) if v.len() == 16 => (read::be_u64(&v[..8]), read::be_u64(&v[8..])),
            _ => (0, 0),
        };
        let (head_tx, _) = watch::channel(head);
        metrics.queue_depth.set((head - first) as i64);
        metrics.queue_bytes.set(bytes);
        metrics.queue_available.set(1);
        let queue = Queue {
            inner: Arc::new(Inner {
                slot: Slot::new(store),
                cfg: cfg.clone(),
                metrics,
                append_lock: Mutex::new(()),
                head: AtomicU64::new(head),
                first: AtomicU64::new(first),
                bytes: AtomicI64::new(bytes),
                head_tx,
                last_flush: Mutex::new(Instant::now()),
                no_space_logged: AtomicU64::new(0),
                clock,
                skew: (AtomicI64::new(skew.0 as i64), AtomicI64::new(skew.1 as i64)),
                generation: AtomicU64::new(0),
            }),
        };
        queue.clamp_cursors()?;
        // sled starts its I/O threads on the first write it hands them, and a thread
        // inherits its creator's priority: written here, they start at the opener's,
        // not at that of a delivery thread that yields to the proxy (`delivery.nice`).
        queue.flush()?;
        Ok(queue)
    }

    /// The database in service; one out of service is opened again when it can be.
    fn store(&self) -> Result<Arc<Store>, QueueError> {
        if let Some(s) = self.inner.slot.get() {
            return Ok(s);
        }
        let _guard = self.inner.append_lock.lock();
        self.store_locked()
    }

    /// [`Queue::store`] for a caller holding the append lock.
    fn store_locked(&self) -> Result<Arc<Store>, QueueError> {
        if let Some(s) = self.inner.slot.get() {
            return Ok(s);
        }
        match self.inner.slot.reopen(&self.inner.cfg) {
            Reopened::Opened(store) => {
                self.recover(&store)?;
                Ok(store)
            }
            Reopened::NotYet => Err(QueueError::Unavailable(
                self.inner.slot.error().unwrap_or_default(),
            )),
        }
    }

    /// After a reopen: where the log stands now, and what the broken database lost.
    /// The head continues past every number handed out before the failure, written
    /// and flushed before any is handed out again (the caller holds the append lock),
    /// so that a cursor or a retry of the broken database's time never names a new
    /// event.
    fn recover(&self, store: &Arc<Store>) -> Result<(), QueueError> {
        let (on_disk, first, bytes) = match position(store) {
            Ok(p) => p,
            Err(e) => return Err(self.failed(store, e)),
        };
        let handed_out = self.head();
        let head = on_disk.max(handed_out);
        // An emptied log starts at the head; otherwise at its first stored value.
        let first = if first == on_disk { head } else { first };
        self.write_on(store, |s| {
            s.meta.insert(META_NEXT, &head.to_be_bytes())?;
            s.sync()
        })?;
        let m = &self.inner.metrics;
        let lost = handed_out.saturating_sub(on_disk);
        m.queue_dropped_error.inc_by(lost);
        m.queue_unflushed.set(0);
        m.queue_unflushed_writes.set(0);
        m.queue_available.set(1);
        self.inner.bytes.store(bytes, Ordering::Relaxed);
        self.inner.first.store(first, Ordering::Release);
        self.inner.head.store(head, Ordering::Release);
        self.inner.head_tx.send_replace(head);
        self.clamp_cursors()?;
        self.inner
            .generation
            .store(store.generation, Ordering::Release);
        self.update_gauges();
        tracing::warn!(
            path = %self.inner.cfg.path.display(),
            next_seq = head,
            lost,
            "queue storage opened again; events that had not reached the disk are counted in clicktap_queue_dropped_total{{reason=\"error\"}}"
        );
        Ok(())
    }

    /// Records a storage error of `store`; a fatal one takes it out of service.
    fn failed(&self, store: &Arc<Store>, e: sled::Error) -> QueueError {
        let m = &self.inner.metrics;
        m.queue_errors.inc();
        if store::is_fatal(&e) && self.inner.slot.fail(store, &e) {
            m.queue_available.set(0);
            tracing::error!(
                path = %self.inner.cfg.path.display(),
                error = %e,
                "queue storage failed; taken out of service and opened again once it can be (clicks meanwhile are counted as dropped)"
            );
        }
        QueueError::Storage(e)
    }

    /// Runs a write on the database in service; a fatal error takes it out of service.
    fn write<T>(&self, f: impl FnOnce(&Store) -> Result<T, sled::Error>) -> Result<T, QueueError> {
        let store = self.store()?;
        self.write_on(&store, f)
    }

    /// [`Queue::write`] on a database the caller already holds (a caller holding the
    /// append lock must not ask for one: a reopen takes that lock).
    fn write_on<T>(
        &self,
        store: &Arc<Store>,
        f: impl FnOnce(&Store) -> Result<T, sled::Error>,
    ) -> Result<T, QueueError> {
        f(store).map_err(|e| self.failed(store, e))
    }

    /// Writes everything appended and every state change so far to disk.
    pub fn flush(&self) -> Result<(), QueueError> {
        let m = &self.inner.metrics;
        // Counted before the flush starts: all of these are on disk once it returns;
        // what is appended meanwhile stays counted for the next one.
        let pending = m.queue_unflushed.get();
        let writes = m.queue_unflushed_writes.get();
        *self.inner.last_flush.lock() = Instant::now();
        let bytes = self.bytes();
        let clock = self.clock().now_ms();
        let (low, high) = self.capture_skew();
        let mut skew = low.to_be_bytes().to_vec();
        skew.extend_from_slice(&high.to_be_bytes());
        self.write(|s| {
            s.meta.insert(META_BYTES, &bytes.to_be_bytes())?;
            s.meta.insert(META_CLOCK, &clock.to_be_bytes())?;
            s.meta.insert(META_SKEW, skew)?;
            s.sync()
        })?;
        m.queue_unflushed.sub(pending);
        m.queue_unflushed_writes.sub(writes);
        m.queue_flushes.inc();
        Ok(())
    }

    /// Flushes when state changes wait and `queue.flush_interval` has passed since the
    /// last flush. Returns how long until the waiting changes are due, if any wait.
    pub fn flush_if_due(&self) -> Result<Option<Duration>, QueueError> {
        if self.inner.metrics.queue_unflushed_writes.get() <= 0 {
            return Ok(None);
        }
        let since = self.inner.last_flush.lock().elapsed();
        let every = self.inner.cfg.flush_interval;
        if since >= every {
            self.flush()?;
            return Ok(None);
        }
        Ok(Some(every - since))
    }

    /// The clock that decides by time (retention, batch ages, retry due times), not the
    /// wall clock: see [`crate::clock`].
    pub fn clock(&self) -> &Timeline {
        &self.inner.clock
    }

    /// How far capture times have stood from their batches' stamps, least and most.
    fn capture_skew(&self) -> (i64, i64) {
        let (low, high) = &self.inner.skew;
        (low.load(Ordering::Relaxed), high.load(Ordering::Relaxed))
    }

    /// The next sequence number to be given out.
    pub fn head(&self) -> u64 {
        self.inner.head.load(Ordering::Acquire)
    }

    /// How many times the database has been opened again since the queue was opened.
    /// A consumer that keeps its position in memory reads it again when this changes:
    /// the failed database's unflushed writes, its own among them, are gone.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// The oldest sequence number still stored (equal to `head` when empty).
    pub fn first(&self) -> u64 {
        self.inner.first.load(Ordering::Acquire)
    }

    /// Events stored.
    pub fn depth(&self) -> u64 {
        self.head().saturating_sub(self.first())
    }

    /// Bytes of event data stored.
    pub fn bytes(&self) -> u64 {
        self.inner.bytes.load(Ordering::Relaxed).max(0) as u64
    }

    /// Bytes sled uses on disk, logs and free space included; an error while the
    /// database is out of service.
    pub fn size_on_disk(&self) -> Result<u64, QueueError> {
        Ok(self.store()?.db.size_on_disk()?)
    }

    /// Wakes when the head moves: the way a consumer waits for new events.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.head_tx.subscribe()
    }

    fn update_gauges(&self) {
        let m = &self.inner.metrics;
        m.queue_depth.set(self.depth() as i64);
        m.queue_bytes.set(self.bytes() as i64);
    }
}

#[cfg(test)]
pub(crate) mod tests;
