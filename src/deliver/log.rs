//! The delivery log: every attempt, kept for `delivery.log_retention` and then pruned.
//!
//! One tree for all webhooks (`state:delivery_log`). A request's attempt is stored once
//! for all the events it carried, and a webhook's attempts are written together, at
//! most [`FLUSH_AFTER`] after they happened or [`MAX_VALUE`] bytes at a time: one sled
//! insert per request, let alone per event, would cost more than the request itself.
//! Keys are the webhook, the time of the value's last attempt, and that attempt's event
//! sequence and number, so one webhook's attempts since a time are one contiguous scan
//! and pruning is a range removal per webhook. Listing gives one entry per event.

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

use crate::queue::{Queue, QueueError, cache};

/// What came back for a request, shared by every event it carried.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Answer {
    /// RFC 3339 with milliseconds.
    pub at: String,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// The first bytes of the response body (`delivery.log_body_bytes`).
    pub response: String,
}

/// One event's attempt, as the admin API lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attempt {
    pub webhook: String,
    pub event_id: String,
    pub seq: u64,
    pub attempt: u32,
    #[serde(flatten)]
    pub answer: Answer,
}

/// One request's attempt, as stored: what was sent and what came back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub at_ms: u64,
    #[serde(flatten)]
    pub answer: Answer,
    /// `(sequence, attempt number, event id)` of each event the request carried.
    pub events: Vec<(u64, u32, String)>,
}

/// Attempts wait in memory at most this long before they are written.
pub const FLUSH_AFTER: Duration = Duration::from_secs(1);
/// The largest value written, in bytes (the queue's limit, for the same reason).
const MAX_VALUE: usize = crate::queue::MAX_VALUE;
/// Events of one request stored together (about 60 bytes each).
const EVENTS_PER_PART: usize = 64;

#[derive(Clone)]
pub struct DeliveryLog {
    tree: sled::Tree,
}

fn prefix(webhook: &str) -> Vec<u8> {
    let mut k = webhook.as_bytes().to_vec();
    k.push(0);
    k
}

impl DeliveryLog {
    pub fn open(queue: &Queue) -> Result<DeliveryLog, QueueError> {
        Ok(DeliveryLog {
            tree: queue.state_tree("delivery_log")?,
        })
    }

    /// Stores requests (in the order they happened) as one value.
    fn write(&self, webhook: &str, requests: &[Request]) -> Result<(), QueueError> {
        let Some(last) = requests.last() else {
            return Ok(());
        };
        let (seq, attempt) = last.events.first().map_or((0, 0), |e| (e.0, e.1));
        let mut k = prefix(webhook);
        k.extend_from_slice(&last.at_ms.to_be_bytes());
        k.extend_from_slice(&seq.to_be_bytes());
        k.extend_from_slice(&attempt.to_be_bytes());
        self.tree
            .insert(&k, serde_json::to_vec(requests).unwrap_or_default())?;
        cache::touch(&self.tree, &k, cache::WRITE_TOUCHES);
        Ok(())
    }

    /// A webhook's attempts since `since_ms`, oldest first, one per event, at most
    /// `limit`.
    pub fn list(&self, webhook: &str, since_ms: u64, limit: usize) -> Vec<Attempt> {
        let mut from = prefix(webhook);
        from.extend_from_slice(&since_ms.to_be_bytes());
        let mut to = prefix(webhook);
        to.extend_from_slice(&u64::MAX.to_be_bytes());
        self.tree
            .range(from..to)
            .flatten()
            .filter_map(|(_, v)| serde_json::from_slice::<Vec<Request>>(&v).ok())
            .flatten()
            .filter(|r| r.at_ms >= since_ms)
            .flat_map(|mut r| {
                let events = std::mem::take(&mut r.events);
                events
                    .into_iter()
                    .map(move |(seq, attempt, event_id)| Attempt {
                        webhook: webhook.to_string(),
                        event_id,
                        seq,
                        attempt,
                        answer: r.answer.clone(),
                    })
            })
            .take(limit)
            .collect()
    }

    /// Removes a webhook's attempts older than `cutoff_ms`; returns how many values.
    pub fn prune(&self, webhook: &str, cutoff_ms: u64) -> Result<usize, QueueError> {
        let from = prefix(webhook);
        let mut to = prefix(webhook);
        to.extend_from_slice(&cutoff_ms.to_be_bytes());
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for (k, _) in self.tree.range(from..to).flatten() {
            batch.remove(k);
            n += 1;
        }
        self.tree.apply_batch(batch)?;
        Ok(n)
    }
}

/// One webhook's attempts on their way to the log.
pub struct Recorder {
    log: DeliveryLog,
    webhook: String,
    pending: Mutex<Pending>,
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
            + r.events.iter().map(|e| 32 + e.2.len()).sum::<usize>();
        let full = {
            let mut p = self.pending.lock();
            if p.bytes + size > MAX_VALUE && !p.requests.is_empty() {
                let out = std::mem::take(&mut *p);
                drop(p);
                self.log.write(&self.webhook, &out.requests)?;
                p = self.pending.lock();
            }
            p.requests.push(r);
            p.bytes += size;
            let since = *p.since.get_or_insert_with(Instant::now);
            p.bytes >= MAX_VALUE || since.elapsed() >= FLUSH_AFTER
        };
        if full { self.flush() } else { Ok(()) }
    }

    /// Removes this webhook's attempts older than `cutoff_ms`.
    pub fn prune(&self, cutoff_ms: u64) -> Result<usize, QueueError> {
        self.log.prune(&self.webhook, cutoff_ms)
    }

    /// Writes every attempt that waits.
    pub fn flush(&self) -> Result<(), QueueError> {
        let out = std::mem::take(&mut *self.pending.lock());
        self.log.write(&self.webhook, &out.requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use std::sync::Arc;

    fn request(at_ms: u64, seqs: std::ops::Range<u64>) -> Request {
        Request {
            at_ms,
            answer: Answer {
                at: String::new(),
                status: Some(200),
                latency_ms: 1,
                error: None,
                response: String::new(),
            },
            events: seqs.map(|s| (s, 1, format!("e{s}"))).collect(),
        }
    }

    fn open() -> (tempfile::TempDir, DeliveryLog) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::config::QueueConfig {
            path: dir.path().join("q"),
            flush_interval: Duration::ZERO,
            max_events: 10,
            max_bytes: 1 << 20,
            when_full: crate::config::WhenFull::DropNewest,
            retention: Duration::from_secs(60),
            cache_size: 1 << 20,
            min_free_bytes: 0,
        };
        let q = Queue::open(&cfg, Arc::new(Metrics::new())).unwrap();
        let log = DeliveryLog::open(&q).unwrap();
        (dir, log)
    }

    #[test]
    fn attempts_are_listed_per_event_by_webhook_and_pruned_by_age() {
        let (_dir, log) = open();
        let a = Recorder::new(log.clone(), "a");
        let ab = Recorder::new(log.clone(), "ab");
        a.record(request(1_000, 1..2)).unwrap();
        a.flush().unwrap();
        a.record(request(2_000, 2..5)).unwrap();
        a.flush().unwrap();
        ab.record(request(3_000, 5..6)).unwrap();
        ab.flush().unwrap();
        let all = log.list("a", 0, 10);
        let seqs: Vec<u64> = all.iter().map(|x| x.seq).collect();
        assert_eq!(
            seqs,
            [1, 2, 3, 4],
            "a webhook's prefix does not reach another's"
        );
        assert_eq!(all[3].event_id, "e4");
        assert_eq!(log.list("a", 1_500, 10)[0].seq, 2);
        assert_eq!(log.list("a", 0, 2).len(), 2, "limit counts events");
        assert_eq!(log.prune("a", 1_500).unwrap(), 1);
        assert_eq!(log.list("a", 0, 10).len(), 3);
        assert_eq!(log.list("ab", 0, 10).len(), 1);
    }

    #[test]
    fn attempts_wait_until_flushed_and_a_value_stays_small() {
        let (_dir, log) = open();
        let r = Recorder::new(log.clone(), "w");
        r.record(request(1_000, 0..1)).unwrap();
        assert!(log.list("w", 0, 10).is_empty(), "one small attempt waits");
        r.flush().unwrap();
        assert_eq!(log.list("w", 0, 10).len(), 1);
        // A batch of 1000 events is written in parts, none over the value limit.
        r.record(request(2_000, 1..1001)).unwrap();
        r.flush().unwrap();
        assert_eq!(log.list("w", 0, 5000).len(), 1001);
        let largest = log
            .tree
            .iter()
            .flatten()
            .map(|(_, v)| v.len())
            .max()
            .unwrap();
        assert!(largest <= MAX_VALUE, "largest value {largest} bytes");
        // Attempts within one value keep their own times for `since_ms`.
        for t in 0..10 {
            r.record(request(10_000 + t, 2000 + t..2001 + t)).unwrap();
        }
        r.flush().unwrap();
        let since: Vec<u64> = log.list("w", 10_005, 100).iter().map(|x| x.seq).collect();
        assert_eq!(since, [2005, 2006, 2007, 2008, 2009]);
    }
}
