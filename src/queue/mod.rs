//! The queue: an append-only log of events in sled, read by consumers at their own pace.
//!
//! # What it guarantees
//! - **Order.** Events get consecutive sequence numbers (big-endian `u64` keys, so sled
//!   iterates them in order). Appends are serialised by one lock held by enrichment
//!   workers only, so a reader never sees seq `n+1` before `n` is readable: a cursor
//!   may safely move past everything it has seen.
//! - **Durability.** An append is in sled's memory at once and on disk after the next
//!   flush, which the enrichment threads make every `queue.flush_interval` (50 ms by
//!   default; `"0s"`: after every batch). A SIGKILL or power loss loses what was
//!   appended since the last flush (`clicktap_queue_unflushed_events`) plus what sat in
//!   the capture channel; a graceful stop flushes everything.
//! - **Bounds.** `queue.max_events` and `queue.max_bytes` cap the log. When full,
//!   `drop_newest` refuses new events and `drop_oldest` evicts the oldest; both are
//!   counted (`clicktap_queue_dropped_total`). Events older than `queue.retention`
//!   are removed whether or not every consumer has read them (counted as `expired`
//!   when one had not). The queue never blocks capture: it is written by the
//!   enrichment threads, and the proxy only ever `try_send`s to them.
//! - **Consumers.** Each consumer (a webhook today; any other sink later) owns a
//!   cursor, the next sequence it will read, and may keep its own state in trees it
//!   opens through [`Queue::state_tree`]. Nothing here knows what a consumer does with
//!   events: the queue stores bytes.
//!
//! # Layout
//! One sled database under `queue.path` with the trees `events` (one value per
//! appended batch, keyed by its first sequence; see [`batch`] for the layout), `meta`
//! (the next sequence, written when the front is trimmed, so that numbering continues
//! past a log emptied by retention; and the stored bytes, written with each flush), `cursors` (consumer → seq) and one `state:<name>` tree per
//! consumer-owned purpose. Retention and eviction remove whole batches.

mod append;
mod batch;
pub mod cache;
mod read;
mod retain;

pub use batch::MAX_VALUE;
pub use read::{Stored, decode_batch};

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use tokio::sync::watch;

use crate::config::QueueConfig;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot open the queue at {path}: {source}")]
    Open { path: String, source: sled::Error },
    #[error("queue storage error: {0}")]
    Storage(#[from] sled::Error),
    #[error("corrupt queue record at seq {0}")]
    Corrupt(u64),
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
    db: sled::Db,
    events: sled::Tree,
    meta: sled::Tree,
    cursors: sled::Tree,
    cfg: QueueConfig,
    metrics: Arc<Metrics>,
    /// Held while sequence numbers are given out and written, and while the front
    /// of the log is trimmed.
    append_lock: Mutex<()>,
    /// The next sequence to give out; everything below it is readable.
    head: AtomicU64,
    /// The oldest sequence still stored.
    first: AtomicU64,
    /// Bytes of stored values, tracked as they are written and removed.
    bytes: AtomicI64,
    head_tx: watch::Sender<u64>,
}

const META_NEXT: &[u8] = b"next_seq";
const META_BYTES: &[u8] = b"bytes";

impl Queue {
    /// Opens (or creates) the queue and recovers its position.
    pub fn open(cfg: &QueueConfig, metrics: Arc<Metrics>) -> Result<Queue, QueueError> {
        let open_err = |source| QueueError::Open {
            path: cfg.path.display().to_string(),
            source,
        };
        let db = sled::Config::new()
            .path(&cfg.path)
            .cache_capacity(cfg.cache_size)
            // Flushes are clicktap's: after each batch, or on its own interval.
            .flush_every_ms(None)
            .open()
            .map_err(open_err)?;
        let events = db.open_tree("events").map_err(open_err)?;
        let meta = db.open_tree("meta").map_err(open_err)?;
        let cursors = db.open_tree("cursors").map_err(open_err)?;
        let stored_next = meta
            .get(META_NEXT)
            .map_err(open_err)?
            .map(|v| read::be_u64(&v))
            .unwrap_or(0);
        let after_last = events
            .last()
            .map_err(open_err)?
            .map(|(k, v)| read::be_u64(&k) + batch::count(&v))
            .unwrap_or(0);
        let head = stored_next.max(after_last);
        let first = events
            .first()
            .map_err(open_err)?
            .map(|(k, _)| read::be_u64(&k))
            .unwrap_or(head);
        // The byte count is saved with every flush; reading the whole log to count it
        // would load all of it at start.
        let bytes = match meta.get(META_BYTES).map_err(open_err)? {
            Some(v) => read::be_u64(&v) as i64,
            None => {
                let mut n = 0i64;
                for item in events.iter() {
                    n += item.map_err(open_err)?.1.len() as i64;
                }
                n
            }
        };
        let (head_tx, _) = watch::channel(head);
        metrics.queue_depth.set((head - first) as i64);
        metrics.queue_bytes.set(bytes);
        let queue = Queue {
            inner: Arc::new(Inner {
                db,
                events,
                meta,
                cursors,
                cfg: cfg.clone(),
                metrics,
                append_lock: Mutex::new(()),
                head: AtomicU64::new(head),
                first: AtomicU64::new(first),
                bytes: AtomicI64::new(bytes),
                head_tx,
            }),
        };
        // sled starts its I/O threads on the first write it hands them, and a thread
        // inherits its creator's priority: written here, they start at the opener's,
        // not at that of a delivery thread that yields to the proxy (`delivery.nice`).
        queue.flush()?;
        Ok(queue)
    }

    /// Writes everything appended so far to disk.
    pub fn flush(&self) -> Result<(), QueueError> {
        let m = &self.inner.metrics;
        // Counted before the flush starts: all of these are on disk once it returns;
        // what is appended meanwhile stays counted for the next one.
        let pending = m.queue_unflushed.get();
        self.inner
            .meta
            .insert(META_BYTES, &self.bytes().to_be_bytes())?;
        self.inner.db.flush()?;
        m.queue_unflushed.sub(pending);
        m.queue_flushes.inc();
        Ok(())
    }

    /// The next sequence number to be given out.
    pub fn head(&self) -> u64 {
        self.inner.head.load(Ordering::Acquire)
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

    /// Bytes sled uses on disk, logs and free space included.
    pub fn size_on_disk(&self) -> Result<u64, QueueError> {
        Ok(self.inner.db.size_on_disk()?)
    }

    /// Wakes when the head moves: the way a consumer waits for new events.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.head_tx.subscribe()
    }

    /// A tree for a consumer's own state (`state:<name>`).
    pub fn state_tree(&self, name: &str) -> Result<sled::Tree, QueueError> {
        Ok(self.inner.db.open_tree(format!("state:{name}"))?)
    }

    fn update_gauges(&self) {
        let m = &self.inner.metrics;
        m.queue_depth.set(self.depth() as i64);
        m.queue_bytes.set(self.bytes() as i64);
    }
}

#[cfg(test)]
mod tests;
