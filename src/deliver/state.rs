//! What delivery remembers per webhook, in the queue's sled database: events waiting
//! for a retry, dead letters, and health. One tree per webhook (`state:webhook:<id>`).
//!
//! The cursor (the next event never attempted) is kept by the queue itself; this tree
//! holds only what lies behind it, so that the common case, a healthy receiver, writes
//! nothing here at all.

use serde::{Deserialize, Serialize};

use super::health::Health;
use crate::queue::{Queue, QueueError};

/// An event that failed and waits for its next attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub attempts: u32,
    pub next_at_ms: u64,
    pub last_error: String,
}

/// An event that failed its last attempt; kept for replay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dead {
    pub attempts: u32,
    pub at_ms: u64,
    pub last_error: String,
}

pub struct WebhookState {
    tree: sled::Tree,
}

const HEALTH: &[u8] = b"h";
const PENDING: u8 = b'p';
const DEAD: u8 = b'd';

fn key(kind: u8, seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = kind;
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn seq_of(k: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&k[1..9]);
    u64::from_be_bytes(b)
}

impl WebhookState {
    pub fn open(queue: &Queue, webhook: &str) -> Result<WebhookState, QueueError> {
        Ok(WebhookState {
            tree: queue.state_tree(&format!("webhook:{webhook}"))?,
        })
    }

    pub fn health(&self) -> Health {
        self.tree
            .get(HEALTH)
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default()
    }

    pub fn set_health(&self, h: &Health) -> Result<(), QueueError> {
        self.tree
            .insert(HEALTH, serde_json::to_vec(h).unwrap_or_default())?;
        Ok(())
    }

    pub fn pending(&self, seq: u64) -> Option<Pending> {
        let v = self.tree.get(key(PENDING, seq)).ok()??;
        serde_json::from_slice(&v).ok()
    }

    pub fn set_pending(&self, seq: u64, p: &Pending) -> Result<(), QueueError> {
        self.tree
            .insert(key(PENDING, seq), serde_json::to_vec(p).unwrap_or_default())?;
        Ok(())
    }

    pub fn clear_pending(&self, seq: u64) -> Result<(), QueueError> {
        self.tree.remove(key(PENDING, seq))?;
        Ok(())
    }

    /// Pending events due at `now_ms`, oldest event first, at most `limit`; and the
    /// earliest time one that is not yet due will be.
    pub fn due(&self, now_ms: u64, limit: usize) -> (Vec<(u64, Pending)>, Option<u64>) {
        let mut due = Vec::new();
        let mut next = None;
        for (k, v) in self.tree.scan_prefix([PENDING]).flatten() {
            let Ok(p) = serde_json::from_slice::<Pending>(&v) else {
                continue;
            };
            if p.next_at_ms <= now_ms {
                if due.len() < limit {
                    due.push((seq_of(&k), p));
                }
            } else {
                next = Some(next.map_or(p.next_at_ms, |n: u64| n.min(p.next_at_ms)));
            }
        }
        (due, next)
    }

    pub fn pending_count(&self) -> usize {
        self.tree.scan_prefix([PENDING]).count()
    }

    pub fn add_dead(&self, seq: u64, d: &Dead) -> Result<(), QueueError> {
        let mut batch = sled::Batch::default();
        batch.remove(&key(PENDING, seq));
        batch.insert(&key(DEAD, seq), serde_json::to_vec(d).unwrap_or_default());
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Every dead letter, oldest event first.
    pub fn dead(&self) -> Vec<(u64, Dead)> {
        self.tree
            .scan_prefix([DEAD])
            .flatten()
            .filter_map(|(k, v)| Some((seq_of(&k), serde_json::from_slice(&v).ok()?)))
            .collect()
    }

    /// Moves every dead letter back to pending, due now. Returns how many.
    pub fn replay_dead(&self, now_ms: u64) -> Result<usize, QueueError> {
        let dead = self.dead();
        let mut batch = sled::Batch::default();
        for (seq, d) in &dead {
            batch.remove(&key(DEAD, *seq));
            let p = Pending {
                attempts: 0,
                next_at_ms: now_ms,
                last_error: d.last_error.clone(),
            };
            batch.insert(
                &key(PENDING, *seq),
                serde_json::to_vec(&p).unwrap_or_default(),
            );
        }
        self.tree.apply_batch(batch)?;
        Ok(dead.len())
    }
}
