//! Click rollups: a consumer of the queue that keeps per-minute counts of the stored
//! events in sled, so that the dashboard and `GET /api/v1/stats` answer in milliseconds
//! whatever the queue holds, and the numbers survive restarts.
//!
//! It reads the log like a webhook does, from a cursor of its own, but it is not one:
//! its cursor lives beside its minutes in the state tree `state:stats` ([`store`]), so
//! it never holds back the queue's retention, never counts in its `expired` drops, and
//! never appears in `status` or the webhooks listing. Each turn reads up to [`READ`]
//! events, adds each to the minute it was captured in ([`minute`]), and writes the
//! touched minutes (and hours: the same counts per hour, so that a long window merges
//! few records) and the new cursor in one atomic batch: a crash rolls back both
//! together, and counting resumes where the counts stop. (Should the queue ever come
//! back from a crash shorter than the cursor, counting takes up again from its head, so
//! that the sequence numbers it hands out anew are not skipped.) When the queue's
//! database is opened again after a storage failure ([`Queue::generation`]), the cursor
//! and counts in memory may be ahead of what that database kept: the rollup forgets
//! them and reads its cursor again, and a turn prepared on the failed database is not
//! written into the new one ([`Queue::write_state_in`]). Events the queue removed before
//! the rollup read them (it fell behind the retention, or was off) are skipped and
//! counted (`clicktap_stats_events_total{outcome="missed"}`). Minutes older than
//! `stats.retention` are removed once a minute.
//!
//! It runs on a thread of its own, reading as fast as it can while behind and every
//! [`POLL`] once caught up; a stop is noticed at once, counts what is left for at most
//! [`FINAL_TURNS`] and flushes; anything still uncounted then is counted after the next
//! start, from the stored cursor.

pub mod minute;
pub mod query;
mod read;
pub mod store;

use crossbeam_channel::{Receiver, Sender, bounded};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::clock::now_ms;
use crate::config::StatsConfig;
use crate::metrics::Metrics;
use crate::queue::{Queue, QueueError};
use minute::Minute;
use store::Span;

/// Events read per turn.
const READ: usize = 4096;
/// How often the rollup looks for new events when it has caught up. Each look that
/// finds some rewrites the current minute's record, so this bounds those writes to one
/// a second, whatever the click rate (and the counts lag the clicks by about as much).
const POLL: Duration = Duration::from_secs(1);
/// How often minutes past the retention are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How long a stop may spend counting the events left.
const FINAL_TURNS: Duration = Duration::from_secs(2);
/// Minutes or hours kept in memory behind the newest one counted: events arrive in
/// capture order to within the enrichment threads' batches, so older ones are done.
const OPEN_BEHIND: u64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("cannot start the rollup thread: {0}")]
    Thread(#[from] std::io::Error),
}

pub struct Rollup {
    stop: Sender<()>,
    handle: JoinHandle<()>,
}

impl Rollup {
    pub fn start(
        cfg: &StatsConfig,
        queue: Queue,
        metrics: Arc<Metrics>,
    ) -> Result<Rollup, RollupError> {
        let mut counter = Counter::open(cfg, queue, metrics)?;
        let (stop, stopped) = bounded::<()>(1);
        let handle = std::thread::Builder::new()
            .name("clicktap-rollup".into())
            .spawn(move || {
                crate::background::mark_thread();
                counter.run(&stopped);
            })?;
        Ok(Rollup { stop, handle })
    }

    /// Stops after the turn in progress and its write.
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.join();
    }
}

/// Where counting resumes: the stored cursor, never past the queue's head. First start:
/// the oldest event the queue still holds, so that a queue that already has events
/// shows them.
fn stored_cursor(queue: &Queue) -> Result<u64, QueueError> {
    let cursor = store::cursor(queue)?.unwrap_or_else(|| queue.first());
    if cursor > queue.head() {
        tracing::warn!(
            cursor,
            next_seq = queue.head(),
            "stats: the queue lost events the rollup had counted; counting on from its head"
        );
        return Ok(queue.head());
    }
    Ok(cursor)
}

/// The rollup's state between turns.
struct Counter {
    queue: Queue,
    metrics: Arc<Metrics>,
    retention: Duration,
    cursor: u64,
    /// The queue's generation `cursor` was read or written in.
    generation: u64,
    /// The minutes and hours still being counted, whole (not yet cut to their top
    /// keys).
    minutes: Open,
    hours: Open,
    last_prune: Option<Instant>,
}

impl Counter {
    fn open(cfg: &StatsConfig, queue: Queue, metrics: Arc<Metrics>) -> Result<Counter, QueueError> {
        let generation = queue.generation();
        Ok(Counter {
            cursor: stored_cursor(&queue)?,
            generation,
            queue,
            metrics,
            retention: cfg.retention,
            minutes: Open::new(Span::Minute),
            hours: Open::new(Span::Hour),
            last_prune: None,
        })
    }

    /// After the queue's database was opened again: the cursor and counts in memory
    /// may hold what the failed database lost; counting resumes from what the new one
    /// kept.
    fn reread(&mut self, generation: u64) -> Result<(), QueueError> {
        let cursor = stored_cursor(&self.queue)?;
        tracing::warn!(
            was = self.cursor,
            cursor,
            "stats: the queue's storage was opened again; counting resumes from the stored cursor"
        );
        self.cursor = cursor;
        self.generation = generation;
        self.minutes.forget_all();
        self.hours.forget_all();
        Ok(())
    }

    fn run(&mut self, stopped: &Receiver<()>) {
        tracing::info!(next_seq = self.cursor, "stats rollup running");
        let mut behind = false;
        let mut last_turn: Option<Instant> = None;
        loop {
            if self.last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                self.prune(now_ms());
                self.last_prune = Some(Instant::now());
            }
            if behind || last_turn.is_none_or(|t| t.elapsed() >= POLL) {
                last_turn = Some(Instant::now());
                // Behind (a full read): go on at once; caught up: wait for more.
                behind = match self.turn() {
                    Ok(n) => n >= READ,
                    Err(e) => {
                        tracing::error!(error = %e, "stats rollup cannot read or write the queue; retrying");
                        false
                    }
                };
            }
            let due = self.flush();
            let next_turn = last_turn.map_or(POLL, |t| POLL.saturating_sub(t.elapsed()));
            let wait = match (behind, due) {
                (true, _) => Duration::ZERO,
                (false, Some(d)) => d.min(next_turn),
                (false, None) => next_turn,
            };
            if stopped.recv_timeout(wait).is_ok() {
                break;
            }
        }
        // Enrichment has drained into the queue before the stop reaches here: count
        // what is left (bounded), so that the numbers are whole when the process ends.
        let deadline = Instant::now() + FINAL_TURNS;
        while Instant::now() < deadline && self.turn().is_ok_and(|n| n > 0) {}
        if let Err(e) = self.queue.flush() {
            tracing::error!(error = %e, "stats rollup: final flush failed");
        }
        tracing::info!(next_seq = self.cursor, "stats rollup stopped");
    }

    /// Counts the next events; returns how many were read.
    fn turn(&mut self) -> Result<usize, QueueError> {
        let generation = self.queue.generation();
        if generation != self.generation {
            self.reread(generation)?;
        }
        let m = &self.metrics;
        m.stats_lag
            .set(self.queue.head().saturating_sub(self.cursor) as i64);
        let events = self.queue.read(self.cursor, READ)?;
        let Some(last) = events.last().map(|e| e.seq) else {
            // Everything before the front is gone (retention, room): skip it.
            let first = self.queue.first();
            if first > self.cursor {
                m.stats_missed.inc_by(first - self.cursor);
                self.cursor = first;
                store::write(&self.queue, generation, std::iter::empty(), self.cursor)?;
            }
            return Ok(0);
        };
        let next = last + 1;
        let (mut missed, mut unreadable, mut counted) = (0, 0, 0);
        let mut expected = self.cursor;
        let written = (|| {
            for e in &events {
                missed += e.seq.saturating_sub(expected);
                expected = e.seq + 1;
                let Some(keys) = read::keys(e.bytes()) else {
                    unreadable += 1;
                    continue;
                };
                let click = keys.click();
                self.minutes.add(&self.queue, e.at_ms, &click)?;
                self.hours.add(&self.queue, e.at_ms, &click)?;
                counted += 1;
            }
            store::write(
                &self.queue,
                generation,
                self.minutes.touched().chain(self.hours.touched()),
                next,
            )
        })();
        if let Err(e) = written {
            // The counts in memory hold events the disk does not: read them again
            // from the stored records with the next turn.
            self.minutes.forget_all();
            self.hours.forget_all();
            return Err(e);
        }
        m.stats_missed.inc_by(missed);
        m.stats_unreadable.inc_by(unreadable);
        m.stats_counted.inc_by(counted);
        self.cursor = next;
        m.stats_lag
            .set(self.queue.head().saturating_sub(next) as i64);
        self.minutes.done();
        self.hours.done();
        Ok(events.len())
    }

    /// Removes the minutes past the retention at `now`.
    fn prune(&mut self, now: u64) {
        let oldest = now.saturating_sub(self.retention.as_millis() as u64) / Span::Minute.ms();
        match store::prune(&self.queue, oldest) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(minutes = n, "stats: minutes past stats.retention removed"),
            Err(e) => {
                tracing::error!(error = %e, "stats: cannot remove minutes past stats.retention")
            }
        }
        self.minutes.forget_before(oldest);
        self.hours
            .forget_before(oldest * Span::Minute.ms() / Span::Hour.ms());
    }

    /// Puts what was written on disk within `queue.flush_interval`; returns how long
    /// until waiting writes are due.
    fn flush(&self) -> Option<Duration> {
        self.queue.flush_if_due().unwrap_or_else(|e| {
            tracing::error!(error = %e, "stats rollup cannot flush the queue");
            Some(POLL)
        })
    }
}

#[cfg(test)]
mod tests;

/// The minutes (or hours) being counted: whole in memory, loaded from their stored
/// record when first touched (after a restart, the record cut to its top keys).
struct Open {
    span: Span,
    counts: BTreeMap<u64, Minute>,
    touched: Vec<u64>,
}

impl Open {
    fn new(span: Span) -> Open {
        Open {
            span,
            counts: BTreeMap::new(),
            touched: Vec::new(),
        }
    }

    fn add(&mut self, queue: &Queue, at_ms: u64, click: &minute::Click) -> Result<(), QueueError> {
        let n = at_ms / self.span.ms();
        let counts = match self.counts.entry(n) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(store::load(queue, self.span, n)?.unwrap_or_default())
            }
        };
        counts.add(click);
        if !self.touched.contains(&n) {
            self.touched.push(n);
        }
        Ok(())
    }

    /// What this turn changed, to be written.
    fn touched(&self) -> impl Iterator<Item = (Span, u64, &Minute)> {
        self.touched
            .iter()
            .filter_map(|n| Some((self.span, *n, self.counts.get(n)?)))
    }

    /// After the write: forgets what is done.
    fn done(&mut self) {
        self.touched.clear();
        if let Some(&newest) = self.counts.keys().next_back() {
            self.forget_before(newest.saturating_sub(OPEN_BEHIND));
        }
    }

    fn forget_all(&mut self) {
        self.counts.clear();
        self.touched.clear();
    }

    fn forget_before(&mut self, n: u64) {
        self.counts = self.counts.split_off(&n);
    }
}
