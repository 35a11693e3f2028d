//! The delivery log: every attempt, kept for `delivery.log_retention` and then pruned.
//!
//! One tree for all webhooks (`state:delivery_log`), keyed by webhook, time, event
//! sequence and attempt, so that one webhook's attempts in a time range are one
//! contiguous scan and pruning is a range removal per webhook.

use serde::{Deserialize, Serialize};

use crate::queue::{Queue, QueueError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attempt {
    pub webhook: String,
    pub event_id: String,
    pub seq: u64,
    pub attempt: u32,
    /// RFC 3339 with milliseconds.
    pub at: String,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// The first bytes of the response body (`delivery.log_body_bytes`).
    pub response: String,
}

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

    pub fn record(&self, at_ms: u64, a: &Attempt) -> Result<(), QueueError> {
        let mut k = prefix(&a.webhook);
        k.extend_from_slice(&at_ms.to_be_bytes());
        k.extend_from_slice(&a.seq.to_be_bytes());
        k.extend_from_slice(&a.attempt.to_be_bytes());
        self.tree
            .insert(k, serde_json::to_vec(a).unwrap_or_default())?;
        Ok(())
    }

    /// A webhook's attempts since `since_ms`, oldest first, at most `limit`.
    pub fn list(&self, webhook: &str, since_ms: u64, limit: usize) -> Vec<Attempt> {
        let mut from = prefix(webhook);
        from.extend_from_slice(&since_ms.to_be_bytes());
        let mut to = prefix(webhook);
        to.extend_from_slice(&u64::MAX.to_be_bytes());
        self.tree
            .range(from..to)
            .flatten()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .take(limit)
            .collect()
    }

    /// Removes a webhook's attempts older than `cutoff_ms`; returns how many.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use std::sync::Arc;

    fn attempt(webhook: &str, seq: u64) -> Attempt {
        Attempt {
            webhook: webhook.into(),
            event_id: format!("e{seq}"),
            seq,
            attempt: 1,
            at: String::new(),
            status: Some(200),
            latency_ms: 1,
            error: None,
            response: String::new(),
        }
    }

    #[test]
    fn attempts_are_listed_by_webhook_and_pruned_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::config::QueueConfig {
            path: dir.path().join("q"),
            flush_interval: std::time::Duration::ZERO,
            max_events: 10,
            max_bytes: 1 << 20,
            when_full: crate::config::WhenFull::DropNewest,
            retention: std::time::Duration::from_secs(60),
            cache_size: 1 << 20,
        };
        let q = Queue::open(&cfg, Arc::new(Metrics::new())).unwrap();
        let log = DeliveryLog::open(&q).unwrap();
        log.record(1_000, &attempt("a", 1)).unwrap();
        log.record(2_000, &attempt("a", 2)).unwrap();
        log.record(3_000, &attempt("ab", 3)).unwrap();
        assert_eq!(
            log.list("a", 0, 10).len(),
            2,
            "a webhook's prefix does not reach another's"
        );
        assert_eq!(log.list("a", 1_500, 10)[0].seq, 2);
        assert_eq!(log.prune("a", 1_500).unwrap(), 1);
        assert_eq!(log.list("a", 0, 10).len(), 1);
        assert_eq!(log.list("ab", 0, 10).len(), 1);
    }
}
