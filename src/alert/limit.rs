//! Each alert's rate limit: at most `max_messages` messages in any `per`, so that a
//! webhook flapping between failing and healthy sends a bounded number of mails.
//!
//! A message over the limit is not sent: it is counted
//! (`clicktap_alerts_suppressed_total`), and the next message that is sent says how many
//! were not. The window slides (the times of the messages sent in the last `per`), so
//! the bound holds over every stretch of `per`, not only over fixed hours.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub struct Limit {
    max: usize,
    per: Duration,
    sent: VecDeque<Instant>,
    /// Messages not sent since the last one that was.
    suppressed: u64,
}

impl Limit {
    pub fn new(max: u32, per: Duration) -> Limit {
        Limit {
            max: max.max(1) as usize,
            per,
            sent: VecDeque::new(),
            suppressed: 0,
        }
    }

    /// Takes a reloaded `max_messages` and `per`, keeping the times already sent.
    pub fn set(&mut self, max: u32, per: Duration) {
        self.max = max.max(1) as usize;
        self.per = per;
    }

    /// Whether a message may go at `now`: `Some(n)` with the number of messages not
    /// sent before it, or `None` (then it is counted as not sent).
    pub fn take(&mut self, now: Instant) -> Option<u64> {
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.per)
        {
            self.sent.pop_front();
        }
        if self.sent.len() >= self.max {
            self.suppressed += 1;
            return None;
        }
        self.sent.push_back(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_in_any_window_and_the_next_one_says_how_many_were_not_sent() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut l = Limit::new(3, Duration::from_secs(60));
        assert_eq!(l.take(at(0)), Some(0));
        assert_eq!(l.take(at(10)), Some(0));
        assert_eq!(l.take(at(20)), Some(0));
        // A flapping webhook: 100 changes within the minute, none sent.
        for s in 0..100 {
            assert_eq!(l.take(at(21 + s / 10)), None);
        }
        // The first message's minute is over: one more may go, and says 100 were not.
        assert_eq!(l.take(at(60)), Some(100));
        assert_eq!(l.take(at(61)), None);
        assert_eq!(l.take(at(70)), Some(1));
    }
}
