//! What the running process is: the configuration it runs on (swapped whole by a
//! reload), when it started, and where it listens. The admin API's status reads it.

use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::clock::now_ms;
use crate::config::Config;

/// A configuration in use, and since when.
pub struct Loaded {
    pub cfg: Arc<Config>,
    /// When it was loaded (ms since the Unix epoch).
    pub at_ms: u64,
}

pub struct Live {
    pub started: SystemTime,
    loaded: ArcSwap<Loaded>,
}

impl Live {
    pub fn new(cfg: Config) -> Live {
        Live {
            started: SystemTime::now(),
            loaded: ArcSwap::from_pointee(Loaded {
                cfg: Arc::new(cfg),
                at_ms: now_ms(),
            }),
        }
    }

    /// The configuration in use.
    pub fn loaded(&self) -> Arc<Loaded> {
        self.loaded.load_full()
    }

    /// Puts a new configuration in use.
    pub fn store(&self, cfg: Config) {
        self.loaded.store(Arc::new(Loaded {
            cfg: Arc::new(cfg),
            at_ms: now_ms(),
        }));
    }
}
