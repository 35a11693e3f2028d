//! The enrichment threads: take clicks off the channel in batches, enrich them, append
//! each batch to the queue in one write, flush as configured.
//!
//! Plain threads rather than tasks: the work is CPU-bound and the queue is
//! synchronous, and keeping it off the proxy's runtimes means a slow disk can never
//! steal a thread that serves visitors.

use crossbeam_channel::{Receiver, TryRecvError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::EnricherHandle;
use super::spool::Spool;
use crate::click::RawClick;
use crate::config::EnrichConfig;
use crate::metrics::Metrics;
use crate::queue::{QueueCell, Record};

/// The running enrichment threads.
pub struct Workers {
    handles: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Workers {
    /// Asks the threads to finish: each drains what is left in the channel, appends
    /// it, flushes, and exits. Call once nothing sends any more.
    pub fn drain_and_stop(self) {
        self.stop.store(true, Ordering::Release);
        for h in self.handles {
            let _ = h.join();
        }
    }
}

struct Worker {
    rx: Receiver<RawClick>,
    batcher: Batcher,
    metrics: Arc<Metrics>,
    batch_size: usize,
    poll_interval: Duration,
    flush_interval: Duration,
    stop: Arc<AtomicBool>,
}

/// Starts `cfg.workers` threads reading `rx`.
pub fn start(
    cfg: &EnrichConfig,
    flush_interval: Duration,
    rx: Receiver<RawClick>,
    queue: QueueCell,
    spool_bytes: usize,
    enricher: EnricherHandle,
    metrics: Arc<Metrics>,
) -> std::io::Result<Workers> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for n in 0..cfg.workers {
        let w = Worker {
            rx: rx.clone(),
            batcher: Batcher::new(
                enricher.clone(),
                queue.clone(),
                spool_bytes,
                metrics.clone(),
            ),
            metrics: metrics.clone(),
            batch_size: cfg.batch_size,
            poll_interval: cfg.poll_interval,
            flush_interval,
            stop: stop.clone(),
        };
        handles.push(
            std::thread::Builder::new()
                .name(format!("clicktap-enrich-{n}"))
                .spawn(move || w.run())?,
        );
    }
    Ok(Workers { handles, stop })
}

/// The longest a worker sleeps while no clicks arrive: it waits `enrich.poll_interval`
/// after taking clicks, doubling up to this while it finds none. A full batch is taken
/// again at once.
const IDLE_TICK: Duration = Duration::from_millis(20);

impl Worker {
    /// Polls the channel rather than blocking on it. A receiver parked in `recv` makes
    /// every `try_send` on the request path wake it (a futex call and a context switch
    /// per click); polling leaves the proxy a plain atomic push and lets clicks gather
    /// into batches, which is what makes the queue cheap per event.
    fn run(mut self) {
        crate::background::mark_thread();
        // Build the bot matcher now rather than on the first click.
        let _ = super::bots::detect("");
        let mut batch = Vec::with_capacity(self.batch_size);
        let mut last_flush = Instant::now();
        let mut dirty = false;
        let idle_tick = IDLE_TICK.max(self.poll_interval);
        let mut tick = self.poll_interval;
        loop {
            let mut closed = false;
            while batch.len() < self.batch_size {
                match self.rx.try_recv() {
                    Ok(click) => batch.push(click),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            self.metrics.channel_depth.set(self.rx.len() as i64);
            let full = batch.len() == self.batch_size;
            let got = !batch.is_empty();
            if got {
                self.batcher.write(&mut batch);
                dirty = true;
            } else if self.batcher.spooled() > 0 {
                // The queue may have opened while no click came.
                self.batcher.unspool();
                dirty = true;
            }
            if dirty && last_flush.elapsed() >= self.flush_interval {
                self.batcher.flush();
                last_flush = Instant::now();
                dirty = false;
            }
            if full {
                continue;
            }
            if closed || (self.stop.load(Ordering::Acquire) && self.rx.is_empty()) {
                break;
            }
            tick = if got {
                self.poll_interval
            } else {
                (tick * 2).min(idle_tick)
            };
            std::thread::sleep(tick);
        }
        self.batcher.unspool();
        self.batcher.flush();
        self.batcher.abandon_spool();
    }
}

/// What an enrichment thread does with each batch it takes off the channel: enrich
/// every click, serialise it into one reused buffer, append the lot to the queue in one
/// write. Public so that the benchmarks measure this very code.
pub struct Batcher {
    enricher: EnricherHandle,
    queue: QueueCell,
    metrics: Arc<Metrics>,
    scratch: Scratch,
    errors: ErrorLog,
    /// Events enriched before the queue opened, and the most bytes they may hold.
    spool: Spool,
    spool_bytes: usize,
}

impl Batcher {
    /// A batcher writing to `queue` once it is open, keeping up to `spool_bytes` of
    /// events until then.
    pub fn new(
        enricher: EnricherHandle,
        queue: QueueCell,
        spool_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> Batcher {
        Batcher {
            enricher,
            queue,
            metrics,
            scratch: Scratch::default(),
            errors: ErrorLog::default(),
            spool: Spool::default(),
            spool_bytes,
        }
    }

    /// Events waiting for the queue to open.
    pub fn spooled(&self) -> usize {
        self.spool.len()
    }

    /// Once the queue is open, appends what waited for it, before anything newer.
    pub fn unspool(&mut self) {
        let Some(queue) = self.queue.get() else {
            return;
        };
        if self.spool.is_empty() {
            return;
        }
        let n = self.spool.len();
        match self.spool.append_to(queue) {
            Ok(stored) => tracing::info!(
                events = n,
                stored,
                "events captured before the queue opened are stored"
            ),
            Err(e) => self.errors.report(&e),
        }
        self.metrics.queue_spooled.set(0);
    }

    /// Enriches, serialises and appends `batch`, leaving it empty. Storage trouble is
    /// counted and logged (at most every 10 s), never returned: the thread goes on.
    pub fn write(&mut self, batch: &mut Vec<RawClick>) {
        // What waited for the queue goes first, so that events stay in capture order.
        self.unspool();
        // The settings in use for the whole batch: a reload swaps them between batches.
        let enricher = self.enricher.load();
        let geo = enricher.geo.load();
        let scratch = &mut self.scratch;
        scratch.json.clear();
        scratch.spans.clear();
        for raw in batch.drain(..) {
            let at_ms = raw
                .at
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64;
            let start = scratch.json.len();
            match enricher.write(&raw, geo.as_deref(), &mut scratch.json) {
                Ok(()) => scratch.spans.push((at_ms, start..scratch.json.len())),
                // Serialising plain data cannot fail; counted as a storage error if it does.
                Err(_) => {
                    scratch.json.truncate(start);
                    self.metrics.queue_dropped_error.inc();
                }
            }
        }
        let records: Vec<Record<'_>> = scratch
            .spans
            .iter()
            .map(|(at_ms, range)| Record {
                at_ms: *at_ms,
                bytes: &scratch.json[range.clone()],
            })
            .collect();
        self.metrics.enrich_events.inc_by(records.len() as u64);
        match self.queue.get() {
            Some(queue) => match queue.append(&records) {
                Ok(out) if out.refused > 0 => self.errors.full(out.refused),
                Ok(_) => {}
                Err(e) => self.errors.report(&e),
            },
            None => {
                let refused = self.spool.keep(&records, self.spool_bytes);
                self.metrics.queue_dropped_spool_full.inc_by(refused);
                self.metrics.queue_spooled.set(self.spool.len() as i64);
            }
        }
        drop(records);
        scratch.give_back();
    }

    /// Flushes the queue to disk; trouble is logged like an append's.
    pub fn flush(&mut self) {
        if let Some(queue) = self.queue.get()
            && let Err(e) = queue.flush()
        {
            self.errors.report(&e);
        }
    }

    /// At the stop, events that never reached the queue (it never opened) are lost:
    /// counted and logged.
    pub fn abandon_spool(&mut self) {
        if self.spool.is_empty() {
            return;
        }
        let n = self.spool.len() as u64;
        self.metrics.queue_dropped_error.inc_by(n);
        tracing::error!(
            events = n,
            "the queue never opened: events held in memory are lost (counted as clicktap_queue_dropped_total{{reason=\"error\"}})"
        );
        self.spool = Spool::default();
        self.metrics.queue_spooled.set(0);
    }
}

/// Buffers a worker reuses from batch to batch, so that a busy worker does not keep
/// asking the allocator for (and the kernel for the pages of) the same space.
#[derive(Default)]
struct Scratch {
    json: Vec<u8>,
    spans: Vec<(u64, std::ops::Range<usize>)>,
}

/// The most scratch space a worker keeps between batches. A batch of ordinary events
/// takes about a kilobyte each (512 of them, half a megabyte); a batch of events cut to
/// their caps can take a hundred times that, and that space is given back.
const SCRATCH_KEEP: usize = 4 << 20;

impl Scratch {
    fn give_back(&mut self) {
        if self.json.capacity() > SCRATCH_KEEP {
            self.json = Vec::new();
        }
    }
}

/// Logs storage trouble at most once per interval, with how often it happened since:
/// a full disk must not also flood the log.
#[derive(Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
    refused: u64,
}

const LOG_EVERY: Duration = Duration::from_secs(10);

impl ErrorLog {
    fn due(&mut self) -> bool {
        if self.last.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            self.last = Some(Instant::now());
            true
        } else {
            false
        }
    }

    fn report(&mut self, e: &dyn std::fmt::Display) {
        if self.due() {
            tracing::error!(error = %e, suppressed = self.suppressed, "queue write failed; events counted in clicktap_queue_dropped_total{{reason=\"error\"}}");
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
    }

    fn full(&mut self, refused: u64) {
        self.refused += refused;
        if self.due() {
            tracing::warn!(
                refused = self.refused,
                "queue full: new events refused (queue.when_full = \"drop_newest\")"
            );
            self.refused = 0;
        }
    }
}
