//! The sled database under the queue, and what happens when the disk fails it.
//!
//! sled 0.34 keeps the first I/O error it meets (a full disk, a file system remounted
//! read-only) and fails every later operation with it, also once the disk is fine
//! again, until the database is closed and opened anew. So the queue holds its
//! database behind one swappable handle: an operation that meets such an error takes
//! the database out of service, operations then fail fast with
//! [`QueueError::Unavailable`] (appends are counted as dropped, delivery waits), and
//! the next operation at least [`REOPEN_EVERY`] later opens it again, once every other
//! user has let go of the broken one (sled holds a file lock until then). Events that
//! were stored in memory but never reached the disk are gone with the broken database;
//! the reopen counts them as dropped (`error`).
//!
//! Everything outside the queue module reaches sled through [`super::Queue`], never
//! through a handle of its own, so that a reopen replaces every handle at once.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::QueueError;
use super::durable::Durable;
use crate::config::QueueConfig;

/// How often a database out of service is tried again.
pub const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// One opened sled database and its trees.
pub struct Store {
    pub db: sled::Db,
    pub events: sled::Tree,
    pub meta: sled::Tree,
    pub cursors: sled::Tree,
    /// How many times the queue's database had been opened again before this one (0:
    /// the one opened at start), so that a write can be tied to the database it was
    /// meant for ([`super::Queue::generation`]).
    pub generation: u64,
    /// Trees opened for consumers' state, kept so that each is opened once.
    trees: Mutex<HashMap<String, sled::Tree>>,
    /// What each flush syncs after sled's own flush (see [`super::durable`]).
    durable: Mutex<Durable>,
}

impl Store {
    pub fn open(cfg: &QueueConfig) -> Result<Store, QueueError> {
        let open_err = |source| QueueError::Open {
            path: cfg.path.display().to_string(),
            source,
        };
        let existed = Durable::existing_ancestor(&cfg.path);
        let db = sled::Config::new()
            .path(&cfg.path)
            .cache_capacity(cfg.cache_size)
            // Flushes are clicktap's: after each batch, or on its own interval.
            .flush_every_ms(None)
            .open()
            .map_err(open_err)?;
        let durable = Durable::open(&cfg.path, &existed).map_err(|e| open_err(e.into()))?;
        Ok(Store {
            events: db.open_tree("events").map_err(open_err)?,
            meta: db.open_tree("meta").map_err(open_err)?,
            cursors: db.open_tree("cursors").map_err(open_err)?,
            generation: 0,
            db,
            trees: Mutex::new(HashMap::new()),
            durable: Mutex::new(durable),
        })
    }

    /// Writes everything to the disk so that it survives a power cut: sled's flush,
    /// which stops short of that, then the syncs it leaves out.
    pub fn sync(&self) -> Result<(), sled::Error> {
        self.db.flush()?;
        self.durable.lock().sync()?;
        Ok(())
    }

    /// The tree `name`, opened on first use.
    pub fn tree(&self, name: &str) -> Result<sled::Tree, QueueError> {
        let mut trees = self.trees.lock();
        if let Some(t) = trees.get(name) {
            return Ok(t.clone());
        }
        let t = self.db.open_tree(name)?;
        trees.insert(name.to_string(), t.clone());
        Ok(t)
    }

    /// Forgets and removes the tree `name`.
    pub fn drop_tree(&self, name: &str) -> Result<(), QueueError> {
        self.trees.lock().remove(name);
        self.db.drop_tree(name)?;
        Ok(())
    }
}

/// Whether sled has given up on the database: an I/O error it keeps, or a bug it
/// reports. Other errors (a tree not found, a corrupt value) leave it usable.
pub fn is_fatal(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(_) | sled::Error::ReportableBug(_))
}

/// The database in service, or the broken one waiting to be let go of.
pub struct Slot {
    current: arc_swap::ArcSwapOption<Store>,
    broken: Mutex<Broken>,
}

#[derive(Default)]
struct Broken {
    store: Option<Arc<Store>>,
    last_try: Option<Instant>,
    error: Option<String>,
    /// The generation of the database last opened.
    generation: u64,
}

/// What a reopen found.
pub enum Reopened {
    /// Not yet: too soon, the broken database is still in use, or opening failed.
    NotYet,
    Opened(Arc<Store>),
}

impl Slot {
    pub fn new(store: Store) -> Slot {
        Slot {
            current: arc_swap::ArcSwapOption::from_pointee(store),
            broken: Mutex::new(Broken::default()),
        }
    }

    pub fn get(&self) -> Option<Arc<Store>> {
        self.current.load_full()
    }

    /// Takes `store` out of service after `error`, unless it already was.
    pub fn fail(&self, store: &Arc<Store>, error: &sled::Error) -> bool {
        let mut broken = self.broken.lock();
        let prev = self.current.compare_and_swap(store, None);
        let taken = prev.as_ref().is_some_and(|p| Arc::ptr_eq(p, store));
        if taken {
            broken.store = prev.clone();
            broken.last_try = Some(Instant::now());
            broken.error = Some(error.to_string());
        }
        taken
    }

    /// Why the database is out of service, if it is.
    pub fn error(&self) -> Option<String> {
        if self.current.load().is_some() {
            return None;
        }
        self.broken.lock().error.clone()
    }

    /// Opens the database again if it is out of service, [`REOPEN_EVERY`] has passed
    /// since the last try, and nobody holds the broken one any more. Never waits.
    pub fn reopen(&self, cfg: &QueueConfig) -> Reopened {
        let Some(mut broken) = self.broken.try_lock() else {
            return Reopened::NotYet;
        };
        if self.current.load().is_some() {
            return Reopened::NotYet;
        }
        if broken.last_try.is_some_and(|t| t.elapsed() < REOPEN_EVERY) {
            return Reopened::NotYet;
        }
        broken.last_try = Some(Instant::now());
        if let Some(old) = broken.store.take() {
            match Arc::try_unwrap(old) {
                // Dropped here: sled lets go of its files and its lock.
                Ok(store) => drop(store),
                Err(still_used) => {
                    broken.store = Some(still_used);
                    return Reopened::NotYet;
                }
            }
        }
        match Store::open(cfg) {
            Ok(mut store) => {
                broken.generation += 1;
                store.generation = broken.generation;
                let store = Arc::new(store);
                self.current.store(Some(store.clone()));
                broken.error = None;
                Reopened::Opened(store)
            }
            Err(e) => {
                broken.error = Some(e.to_string());
                Reopened::NotYet
            }
        }
    }
}
