//! Clicks being dropped, read off the counters: capture channel full, queue full, disk
//! below `queue.min_free_bytes`, spool full, evicted unread. The request path only
//! counts; this looks at the counts every [`super::DROP_LOOK`] and says when a spell of
//! drops begins, and when none has come for [`DROPS_OVER`]: two messages a spell,
//! however long it lasts.

use std::time::{Duration, Instant};

use super::message::Message;
use crate::metrics::Metrics;

/// A spell of drops is over when none has come for this long.
pub const DROPS_OVER: Duration = Duration::from_secs(60);

/// The drop counters as last read, and whether a spell of drops is on.
#[derive(Default)]
pub struct Drops {
    last: Option<[u64; 5]>,
    spell: Option<Spell>,
}

struct Spell {
    last_drop: Instant,
    total: u64,
}

const DROP_REASONS: [&str; 5] = [
    "capture channel full (enrichment behind)",
    "queue full (queue.max_events or queue.max_bytes)",
    "disk below queue.min_free_bytes",
    "captured before the queue opened, beyond queue.spool_bytes",
    "evicted unread to make room (queue.when_full = drop_oldest)",
];

impl Drops {
    /// Reads the counters; a message when a spell of drops begins or ends.
    pub fn look(&mut self, m: &Metrics, now: Instant, origin: &str) -> Option<Message> {
        let read = [
            m.capture_dropped_full.get(),
            m.queue_dropped_full.get(),
            m.queue_dropped_no_space.get(),
            m.queue_dropped_spool_full.get(),
            m.queue_evicted.get(),
        ];
        let last = self.last.replace(read).unwrap_or([0; 5]);
        let new: Vec<(&str, u64)> = DROP_REASONS
            .iter()
            .zip(read.iter().zip(last.iter()))
            .map(|(why, (r, l))| (*why, r.saturating_sub(*l)))
            .collect();
        let dropped: u64 = new.iter().map(|n| n.1).sum();
        match &mut self.spell {
            None if dropped > 0 => {
                self.spell = Some(Spell {
                    last_drop: now,
                    total: dropped,
                });
                Some(Message::dropping(&new, origin))
            }
            Some(s) if dropped > 0 => {
                s.last_drop = now;
                s.total += dropped;
                None
            }
            Some(s) if now.duration_since(s.last_drop) >= DROPS_OVER => {
                let total = s.total;
                self.spell = None;
                Some(Message::no_longer_dropping(total, origin))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spell_of_drops_is_told_once_when_it_begins_and_once_when_it_ends() {
        let m = Metrics::new();
        let mut d = Drops::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(d.look(&m, at(0), "").is_none());
        m.queue_dropped_full.inc_by(3);
        m.queue_dropped_no_space.inc();
        let first = d.look(&m, at(1), "").expect("a spell begins");
        assert!(
            first
                .body
                .contains("queue full (queue.max_events or queue.max_bytes): 3"),
            "{}",
            first.body
        );
        assert!(
            first.body.contains("disk below queue.min_free_bytes: 1"),
            "{}",
            first.body
        );
        for s in 2..30 {
            m.capture_dropped_full.inc();
            assert!(d.look(&m, at(s), "").is_none(), "one message per spell");
        }
        assert!(d.look(&m, at(60), "").is_none(), "not over yet");
        let over = d.look(&m, at(89), "").expect("the spell is over");
        assert!(over.subject.contains("32 were"), "{}", over.subject);
    }
}
