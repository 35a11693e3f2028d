//! The delivery log: every attempt, kept for `delivery.log_retention` and then pruned.
//!
//! One tree for all webhooks (`state:delivery_log`). A request's attempt is stored once
//! for all the events it carried, and a webhook's attempts are written together, at
//! most [`FLUSH_AFTER`] after they happened or [`PLAIN_PER_VALUE`] bytes of JSON at a
//! time: one sled insert per request, let alone per event, would cost more than the
//! request itself.
//! Keys are the webhook, the time of the value's last attempt, and that attempt's event
//! sequence and number, so one webhook's attempts since a time are one contiguous scan
//! and pruning is a range removal per webhook. Listing gives one entry per event,
//! newest first.
//!
//! Each request keeps what it was ([`Sending`]): its message id, whether it was a test
//! send or an operator's replay (and of which message), and what was sent, secrets
//! redacted (`sent.rs`): headers, the body's size and SHA-256, and the body itself
//! within `delivery.log_body_max_bytes`. A kept body is part of the stored value, so
//! the bounds below count it like the rest.
//!
//! Values are LZ4-compressed JSON (`log_value.rs`), and the bounds count stored bytes.
//!
//! Bounded twice: by age (`delivery.log_retention`) and by bytes
//! (`delivery.log_max_bytes`, the oldest values of any webhook removed first), so that
//! a busy receiver cannot fill the disk with its history. Times here are the wall
//! clock's, as people list them; the age cutoff moves no faster than the monotonic
//! clock ([`next_cutoff`]), so a step of the wall clock never prunes early.

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use super::sent::Sent;
use crate::metrics::Metrics;
use crate::queue::{Queue, QueueError, cache};

/// What came back for a request, shared by every event it carried.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Answer {
    /// RFC 3339 with milliseconds.
    pub at: String,
    /// What the answer meant: delivered, failed, backoff (429, 502, 503, 504), gone
    /// (410) or interrupted (by a stop). Absent in entries written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<super::attempt::Class>,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// The first bytes of the response body (`delivery.log_body_bytes`).
    pub response: String,
}

/// What a request was: its message id, whether it was a test or a replay, and what it
/// carried (`sent.rs`). Every field is absent in entries written before it was kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Sending {
    /// The Standard Webhooks message id (`webhook-id`, `idempotency-key`).
    #[serde(default)]
    pub message_id: Option<String>,
    /// A test event (`clicktap webhooks test`): not in the queue, its `seq` is 0.
    #[serde(default)]
    pub test: bool,
    /// Put in line again by an operator (a replay, a resend of a dead letter or a
    /// failed message), or a retry of such.
    #[serde(default)]
    pub replay: bool,
    /// For a replay: the message id the events were sent in before.
    #[serde(default)]
    pub replay_of: Option<String>,
    /// The request as sent, secrets redacted; absent when nothing was sent (refused by
    /// the address guard, no credentials) and for an attempt a stop cut short.
    #[serde(default)]
    pub sent: Option<Sent>,
}

/// One event's attempt, as the admin API lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attempt {
    pub webhook: String,
    /// When the answer came (ms since the Unix epoch): the listing's order.
    pub at_ms: u64,
    pub event_id: String,
    pub seq: u64,
    pub attempt: u32,
    #[serde(flatten)]
    pub answer: Answer,
    #[serde(flatten)]
    pub sending: Sending,
}

/// One request's attempt, as stored: what was sent and what came back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Request {
    pub at_ms: u64,
    #[serde(flatten)]
    pub answer: Answer,
    #[serde(flatten)]
    pub sending: Sending,
    /// `(sequence, attempt number, event id)` of each event the request carried.
    pub events: Vec<(u64, u32, String)>,
}

/// Attempts wait in memory at most this long before they are written.
pub const FLUSH_AFTER: Duration = Duration::from_secs(1);
/// The largest value written, in bytes (the queue's limit, for the same reason).
const MAX_VALUE: usize = crate::queue::MAX_VALUE;
/// Attempts' JSON gathered into one value: compressed, such JSON takes about a quarter
/// of its bytes, so a value comes near [`MAX_VALUE`]; one that would not fit is split.
/// Fewer, fuller values: each write is a sled batch, whose log rolls wake sled's I/O
/// threads.
const PLAIN_PER_VALUE: usize = 4 * MAX_VALUE;
/// Events of one request stored together (about 60 bytes each).
const EVENTS_PER_PART: usize = 64;

/// The delivery log of every webhook, shared: one tree, one byte count.
#[derive(Clone)]
pub struct DeliveryLog {
    inner: Arc<Shared>,
}

struct Shared {
    queue: Queue,
    max_bytes: u64,
    /// Bytes of keys and values stored, kept under [`BYTES`] with every write.
    bytes: AtomicI64,
    metrics: Arc<Metrics>,
    /// The last write found the disk below `queue.min_free_bytes` (logged once a spell).
    below_floor: std::sync::atomic::AtomicBool,
}

const TREE: &str = "delivery_log";
/// The stored byte count. Webhook ids are ASCII, so no webhook's prefix reaches it.
const BYTES: &[u8] = b"\xffbytes";

fn prefix(webhook: &str) -> Vec<u8> {
    let mut k = webhook.as_bytes().to_vec();
    k.push(0);
    k
}

/// The time a value's key carries (its last attempt), after the webhook's prefix.
fn key_time(key: &[u8]) -> Option<u64> {
    let end = key.iter().position(|b| *b == 0)?;
    let t = key.get(end + 1..end + 9)?;
    Some(u64::from_be_bytes(t.try_into().ok()?))
}

impl DeliveryLog {
    /// Opens the log; a log written before its bytes were counted is counted once.
    pub fn open(
        queue: &Queue,
        max_bytes: u64,
        metrics: Arc<Metrics>,
    ) -> Result<DeliveryLog, QueueError> {
        let tree = queue.state_tree(TREE)?;
        let bytes = match tree.get(BYTES)? {
            Some(v) if v.len() == 8 => {
                u64::from_be_bytes(v.as_ref().try_into().unwrap_or_default())
            }
            _ => {
                let mut n = 0u64;
                for item in tree.iter() {
                    let (k, v) = item?;
                    n += (k.len() + v.len()) as u64;
                }
                n
            }
        };
        metrics.delivery_log_bytes.set(bytes as i64);
        Ok(DeliveryLog {
            inner: Arc::new(Shared {
                queue: queue.clone(),
                max_bytes,
                bytes: AtomicI64::new(bytes as i64),
                metrics,
                below_floor: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    fn tree(&self) -> Result<sled::Tree, QueueError> {
        self.inner.queue.state_tree(TREE)
    }

    /// Applies `batch`, which changes the stored bytes by `delta`, with the new count.
    fn apply(&self, mut batch: sled::Batch, delta: i64) -> Result<(), QueueError> {
        batch.insert(BYTES, &self.count(delta).to_be_bytes());
        let r = self.inner.queue.write_state(TREE, batch);
        if r.is_err() {
            self.count(-delta);
        }
        r
    }

    /// Changes the byte count by `delta`; returns the new count.
    fn count(&self, delta: i64) -> u64 {
        let now = (self.inner.bytes.fetch_add(delta, Ordering::Relaxed) + delta).max(0);
        self.inner.metrics.delivery_log_bytes.set(now);
        now as u64
    }

    /// Bytes the log holds.
    pub fn bytes(&self) -> u64 {
        self.inner.bytes.load(Ordering::Relaxed).max(0) as u64
    }

    /// Whether the disk is below `queue.min_free_bytes`, logged when that starts and
    /// ends: the log, a history for people, stores nothing new meanwhile, so that it
    /// never brings sled nearer a full disk than the queue lets clicks bring it.
    fn below_floor(&self) -> bool {
        let below = self.inner.queue.below_disk_floor();
        if self.inner.below_floor.swap(below, Ordering::Relaxed) != below {
            if below {
                tracing::warn!(
                    "less free disk space than queue.min_free_bytes: the delivery log stores no new attempts (counted in clicktap_delivery_log_skipped_total)"
                );
            } else {
                tracing::info!("free disk space is back: the delivery log stores attempts again");
            }
        }
        below
    }

    /// Stores requests (in the order they happened) as one value, then removes the
    /// oldest values of any webhook while the log holds more than its bound. Below the
    /// disk floor nothing is stored, and the skipped value is counted.
    fn write(&self, webhook: &str, requests: &[Request]) -> Result<(), QueueError> {
        let Some(last) = requests.last() else {
            return Ok(());
        };
        if self.below_floor() {
            self.inner.metrics.delivery_log_skipped.inc();
            return Ok(());
        }
        let v = super::log_value::encode(requests);
        if v.len() > MAX_VALUE && requests.len() > 1 {
            // Answers that do not compress: half as many attempts per value.
            let (older, newer) = requests.split_at(requests.len() / 2);
            self.write(webhook, older)?;
            return self.write(webhook, newer);
        }
        let (seq, attempt) = last.events.first().map_or((0, 0), |e| (e.0, e.1));
        let mut k = prefix(webhook);
        k.extend_from_slice(&last.at_ms.to_be_bytes());
        k.extend_from_slice(&seq.to_be_bytes());
        k.extend_from_slice(&attempt.to_be_bytes());
        let tree = self.tree()?;
        let replaced = tree.get(&k)?.map_or(0, |old| (k.len() + old.len()) as i64);
        let delta = (k.len() + v.len()) as i64 - replaced;
        // The value, then the count: two plain inserts rather than one batch, which
        // would hand sled's thread pool two writes for every value (the thread pool wakes
        // all its threads for each). A crash between them leaves the stored count, which
        // only the bound is kept by, one value (at most 6 KiB) short.
        self.inner.queue.insert_state(TREE, &k, &v)?;
        let now = self.count(delta);
        self.inner
            .queue
            .insert_state(TREE, BYTES, &now.to_be_bytes())?;
        cache::touch(&tree, &k, cache::WRITE_TOUCHES);
        if self.bytes() > self.inner.max_bytes {
            self.evict()?;
        }
        Ok(())
    }

    /// Removes the oldest values, whichever webhook they belong to, until the log is
    /// back under nine tenths of its bound (so that it does not evict on every write).
    fn evict(&self) -> Result<(), QueueError> {
        let target = self.inner.max_bytes / 10 * 9;
        let tree = self.tree()?;
        while self.bytes() > target {
            // Each webhook's oldest value is the first under its prefix.
            let mut oldest: Option<(u64, sled::IVec, usize)> = None;
            let mut from = Vec::new();
            while let Some(item) = tree.range(from.clone()..).next() {
                let (k, v) = item?;
                let Some(end) = k.iter().position(|b| *b == 0) else {
                    break; // the byte count, after every prefix
                };
                let at = key_time(&k).unwrap_or(0);
                if oldest.as_ref().is_none_or(|o| at < o.0) {
                    oldest = Some((at, k.clone(), k.len() + v.len()));
                }
                from = k[..end].to_vec();
                from.push(1);
            }
            let Some((_, key, size)) = oldest else {
                return Ok(());
            };
            let mut batch = sled::Batch::default();
            batch.remove(key);
            self.apply(batch, -(size as i64))?;
            self.inner.metrics.delivery_log_evicted.inc();
        }
        Ok(())
    }

    /// A webhook's attempts since `since_ms`, newest first, one per event, at most
    /// `limit`.
    pub fn list(&self, webhook: &str, since_ms: u64, limit: usize) -> Vec<Attempt> {
        self.list_where(webhook, since_ms, limit, |_| true)
    }

    /// [`DeliveryLog::list`] of the attempts `keep` selects.
    pub fn list_where(
        &self,
        webhook: &str,
        since_ms: u64,
        limit: usize,
        keep: impl Fn(&Attempt) -> bool,
    ) -> Vec<Attempt> {
        let mut from = prefix(webhook);
        from.extend_from_slice(&since_ms.to_be_bytes());
        let mut to = prefix(webhook);
        to.extend_from_slice(&u64::MAX.to_be_bytes());
        let Ok(tree) = self.tree() else {
            return Vec::new();
        };
        tree.range(from..to)
            .rev()
            .flatten()
            .filter_map(|(_, v)| super::log_value::decode(&v))
            .flat_map(|requests| requests.into_iter().rev())
            .filter(|r| r.at_ms >= since_ms)
            .flat_map(|mut r| {
                let events = std::mem::take(&mut r.events);
                events
                    .into_iter()
                    .map(move |(seq, attempt, event_id)| Attempt {
                        webhook: webhook.to_string(),
                        at_ms: r.at_ms,
                        event_id,
                        seq,
                        attempt,
                        answer: r.answer.clone(),
                        sending: r.sending.clone(),
                    })
            })
            .filter(keep)
            .take(limit)
            .collect()
    }

    /// Removes a webhook's attempts older than `cutoff_ms`; returns how many values.
    pub fn prune(&self, webhook: &str, cutoff_ms: u64) -> Result<usize, QueueError> {
        let mut to = prefix(webhook);
        to.extend_from_slice(&cutoff_ms.to_be_bytes());
        self.remove_range(prefix(webhook), to)
    }

    /// Removes every attempt of a webhook (one removed from the configuration).
    pub fn remove_webhook(&self, webhook: &str) -> Result<usize, QueueError> {
        let mut to = webhook.as_bytes().to_vec();
        to.push(1);
        self.remove_range(prefix(webhook), to)
    }

    fn remove_range(&self, from: Vec<u8>, to: Vec<u8>) -> Result<usize, QueueError> {
        let mut batch = sled::Batch::default();
        let (mut n, mut freed) = (0, 0i64);
        for item in self.tree()?.range(from..to) {
            let (k, v) = item?;
            freed += (k.len() + v.len()) as i64;
            batch.remove(k);
            n += 1;
        }
        if n > 0 {
            self.apply(batch, -freed)?;
        }
        Ok(n)
    }
}

/// One webhook's attempts on their way to the log.
pub struct Recorder {
    log: DeliveryLog,
    webhook: String,
    pending: Mutex<Pending>,
    /// The last cutoff pruned to, and when.
    pruned: Mutex<Option<(u64, Instant)>>,
}

#[derive(Default)]
struct Pending {
    requests: Vec<Request>,
    /// An estimate of their encoded size.
    bytes: usize,
    since: Option<Instant>,
}

impl Recorder {
    pub fn new(log: DeliveryLog, webhook: &str) -> Recorder {
        Recorder {
            log,
            webhook: webhook.to_string(),
            pending: Mutex::new(Pending::default()),
            pruned: Mutex::new(None),
        }
    }

    /// Keeps a request's attempt; writes what waits once it is large or old enough.
    pub fn record(&self, mut r: Request) -> Result<(), QueueError> {
        // A large batch is kept as several parts, so that no value outgrows the limit.
        while r.events.len() > EVENTS_PER_PART {
            let rest = r.events.split_off(EVENTS_PER_PART);
            let part = std::mem::replace(&mut r.events, rest);
            self.keep(Request {
                events: part,
                ..r.clone()
            })?;
        }
        self.keep(r)
    }

    fn keep(&self, r: Request) -> Result<(), QueueError> {
        let a = &r.answer;
        let size = 96
            + a.at.len()
            + a.response.len()
            + a.error.as_ref().map_or(0, String::len)
            + r.sending.sent.as_ref().map_or(0, Sent::size)
            + r.events.iter().map(|e| 32 + e.2.len()).sum::<usize>();
        let full = {
            let mut p = self.pending.lock();
            if p.bytes + size > PLAIN_PER_VALUE && !p.requests.is_empty() {
                let out = std::mem::take(&mut *p);
                drop(p);
                self.log.write(&self.webhook, &out.requests)?;
                p = self.pending.lock();
            }
            p.requests.push(r);
            p.bytes += size;
            let since = *p.since.get_or_insert_with(Instant::now);
            p.bytes >= PLAIN_PER_VALUE || since.elapsed() >= FLUSH_AFTER
        };
        if full { self.flush() } else { Ok(()) }
    }

    /// Removes this webhook's attempts made more than `retention` ago.
    pub fn prune(&self, retention: Duration) -> Result<usize, QueueError> {
        let wall = crate::clock::now_ms().saturating_sub(retention.as_millis() as u64);
        let cutoff = {
            let mut pruned = self.pruned.lock();
            let cutoff = next_cutoff(wall, pruned.map(|(at, when)| (at, when.elapsed())));
            *pruned = Some((cutoff, Instant::now()));
            cutoff
        };
        self.log.prune(&self.webhook, cutoff)
    }

    /// Writes every attempt that waits.
    pub fn flush(&self) -> Result<(), QueueError> {
        let out = std::mem::take(&mut *self.pending.lock());
        self.log.write(&self.webhook, &out.requests)
    }
}

/// Where pruning may cut now: the log is keyed and listed by the wall clock, but its
/// cutoff moves no faster than the monotonic clock since the `last` one, so a step of
/// the wall clock forward does not remove attempts early. A step back lowers the
/// cutoff with it: attempts are then kept longer by the step (within
/// `delivery.log_max_bytes`), never shorter than `log_retention`.
fn next_cutoff(wall_cutoff: u64, last: Option<(u64, Duration)>) -> u64 {
    match last {
        Some((at, since)) => wall_cutoff.min(at.saturating_add(since.as_millis() as u64)),
        None => wall_cutoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_of_the_wall_clock_forward_does_not_prune_early() {
        let day = 86_400_000;
        // Five seconds after the last prune the wall clock reads a day later.
        let next = next_cutoff(1_000 + day + 5_000, Some((1_000, Duration::from_secs(5))));
        assert_eq!(next, 6_000);
        // Stepped back, the cutoff goes back with it.
        assert_eq!(next_cutoff(500, Some((6_000, Duration::from_secs(5)))), 500);
        assert_eq!(next_cutoff(7_000, None), 7_000);
    }

    fn request(at_ms: u64, seqs: std::ops::Range<u64>) -> Request {
        Request {
            at_ms,
            answer: Answer {
                at: String::new(),
                outcome: None,
                status: Some(200),
                latency_ms: 1,
                error: None,
                response: "x".repeat(200),
            },
            sending: Sending::default(),
            events: seqs.map(|s| (s, 1, format!("e{s}"))).collect(),
        }
    }

    fn open(max_bytes: u64) -> (tempfile::TempDir, DeliveryLog, Arc<Metrics>) {
        let (dir, q) = crate::queue::tests::open_for_tests();
        let metrics = Arc::new(Metrics::new());
        let log = DeliveryLog::open(&q, max_bytes, metrics.clone()).unwrap();
        (dir, log, metrics)
    }

    fn seqs(list: &[Attempt]) -> Vec<u64> {
        list.iter().map(|x| x.seq).collect()
    }

    #[test]
    fn attempts_are_listed_newest_first_per_webhook_and_pruned_by_age() {
        let (_dir, log, _) = open(1 << 30);
        let a = Recorder::new(log.clone(), "a");
        let ab = Recorder::new(log.clone(), "ab");
        a.record(request(1_000, 1..2)).unwrap();
        a.flush().unwrap();
        a.record(request(2_000, 2..5)).unwrap();
        a.flush().unwrap();
        ab.record(request(3_000, 5..6)).unwrap();
        ab.flush().unwrap();
        let all = log.list("a", 0, 10);
        assert_eq!(
            seqs(&all),
            [2, 3, 4, 1],
            "newest request first; a webhook's prefix does not reach another's"
        );
        assert_eq!(all[0].event_id, "e2");
        assert_eq!(seqs(&log.list("a", 1_500, 10)), [2, 3, 4]);
        assert_eq!(
            seqs(&log.list("a", 0, 2)),
            [2, 3],
            "the limit keeps the newest"
        );
        assert_eq!(log.prune("a", 1_500).unwrap(), 1);
        assert_eq!(log.list("a", 0, 10).len(), 3);
        assert_eq!(log.list("ab", 0, 10).len(), 1);
        assert_eq!(log.remove_webhook("a").unwrap(), 1);
        assert!(log.list("a", 0, 10).is_empty());
        assert_eq!(log.list("ab", 0, 10).len(), 1, "ab is not a's");
    }

    #[test]
    fn attempts_wait_until_flushed_and_a_value_stays_small() {
        let (_dir, log, _) = open(1 << 30);
        let r = Recorder::new(log.clone(), "w");
        r.record(request(1_000, 0..1)).unwrap();
        assert!(log.list("w", 0, 10).is_empty(), "one small attempt waits");
        r.flush().unwrap();
        assert_eq!(log.list("w", 0, 10).len(), 1);
        // A batch of 1000 events is written in parts, none over the value limit.
        r.record(request(2_000, 1..1001)).unwrap();
        r.flush().unwrap();
        assert_eq!(log.list("w", 0, 5000).len(), 1001);
        let largest = values(&log).into_iter().max().unwrap();
        assert!(largest <= MAX_VALUE, "largest value {largest} bytes");
        // Attempts within one value keep their own times for `since_ms`.
        for t in 0..10 {
            r.record(request(10_000 + t, 2000 + t..2001 + t)).unwrap();
        }
        r.flush().unwrap();
        assert_eq!(
            seqs(&log.list("w", 10_005, 100)),
            [2009, 2008, 2007, 2006, 2005]
        );
    }

    /// The sizes of the attempts' values (the byte count's key has no separator).
    fn values(log: &DeliveryLog) -> Vec<usize> {
        log.tree()
            .unwrap()
            .iter()
            .flatten()
            .filter(|(k, _)| k.contains(&0))
            .map(|(_, v)| v.len())
            .collect()
    }

    #[test]
    fn compressed_attempts_fill_few_values_and_answers_that_do_not_compress_are_split() {
        let (_dir, log, _) = open(1 << 30);
        let r = Recorder::new(log.clone(), "w");
        for i in 0..2_000u64 {
            let mut q = request(1_000 + i, i..i + 1);
            q.answer.response = String::new();
            q.answer.status = Some(204);
            q.events[0].2 = format!("019ae5c4-7d2b-7c1e-9a3f-{i:012}");
            r.record(q).unwrap();
        }
        r.flush().unwrap();
        assert_eq!(log.list("w", 0, 5_000).len(), 2_000);
        let small = values(&log);
        // About 170 bytes of JSON each: 24 KiB of it per value, ~6 KiB stored.
        assert!(
            small.len() <= 16,
            "{} values for 2,000 attempts",
            small.len()
        );
        assert!(small.iter().all(|v| *v <= MAX_VALUE), "{small:?}");

        let (_dir, log, _) = open(1 << 30);
        let r = Recorder::new(log.clone(), "w");
        for i in 0..200u64 {
            let mut q = request(1_000 + i, i..i + 1);
            q.answer.response = (0..1_000).map(|_| rand::random_range('!'..='~')).collect();
            r.record(q).unwrap();
        }
        r.flush().unwrap();
        assert_eq!(log.list("w", 0, 5_000).len(), 200);
        let large = values(&log);
        assert!(large.iter().all(|v| *v <= MAX_VALUE), "{large:?}");
    }

    #[test]
    fn kept_request_bodies_count_toward_the_logs_bytes() {
        let max = 1 << 20;
        let (_dir, log, metrics) = open(max);
        let r = Recorder::new(log.clone(), "w");
        let body = |_| -> String { (0..4096).map(|_| rand::random_range('!'..='~')).collect() };
        // 400 bodies of 4 KiB that do not compress: 1.6 MiB of them.
        for t in 0..400u64 {
            let mut q = request(1_000 + t, t..t + 1);
            let kept = body(t);
            q.sending.sent = Some(Sent {
                method: "POST".into(),
                url: "https://hooks.example/in".into(),
                headers: Default::default(),
                body_bytes: kept.len() as u64,
                body_sha256: String::new(),
                body: Some(kept),
            });
            r.record(q).unwrap();
            assert!(log.bytes() <= max, "{} bytes after {t}", log.bytes());
        }
        r.flush().unwrap();
        assert!(log.bytes() <= max);
        assert!(
            metrics.delivery_log_evicted.get() > 0,
            "the bodies were counted"
        );
        let kept = log.list("w", 0, 1_000);
        assert!(kept.len() < 400 && kept.len() > 100, "{} kept", kept.len());
        let newest = kept[0].sending.sent.as_ref().unwrap();
        assert_eq!(newest.body.as_ref().map(String::len), Some(4096));
    }

    #[test]
    fn the_log_stays_within_its_bytes_removing_the_oldest_of_any_webhook() {
        let max = 64 * 1024;
        let (_dir, log, metrics) = open(max);
        let (a, b) = (
            Recorder::new(log.clone(), "a"),
            Recorder::new(log.clone(), "b"),
        );
        for t in 0..2_000u64 {
            let r = if t % 2 == 0 { &a } else { &b };
            r.record(request(1_000 + t, t..t + 1)).unwrap();
            r.flush().unwrap();
            assert!(log.bytes() <= max, "{} bytes after {t}", log.bytes());
        }
        let stored: u64 = log
            .tree()
            .unwrap()
            .iter()
            .flatten()
            .filter(|(k, _)| k.as_ref() != BYTES)
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum();
        assert_eq!(stored, log.bytes(), "the count is what the tree holds");
        assert!(metrics.delivery_log_evicted.get() > 0);
        // What is left is the newest of both webhooks.
        let (la, lb) = (log.list("a", 0, 10_000), log.list("b", 0, 10_000));
        assert_eq!(la[0].seq, 1998);
        assert_eq!(lb[0].seq, 1999);
        let oldest = la.last().unwrap().seq.min(lb.last().unwrap().seq);
        assert!(oldest > 1000, "oldest kept {oldest}");
        // The count survives a reopen.
        let again = DeliveryLog::open(&log.inner.queue, max, metrics).unwrap();
        assert_eq!(again.bytes(), log.bytes());
    }
}
