//! A per-thread memo of user-agent readings.
//!
//! A shortener's clicks come from few distinct user agents (the current browser
//! versions, a handful of preview bots), and reading one costs a few microseconds
//! (woothee plus the bot rules) against a fraction of one to look it up. Each
//! enrichment thread keeps its own map, so there is no lock; when it reaches its
//! bound it starts over, which keeps the memory fixed without bookkeeping.

use std::cell::RefCell;
use std::collections::HashMap;

use super::agent;
use crate::click::{Agent, Bot};

/// Distinct user agents remembered per thread.
const CAPACITY: usize = 4096;

/// A user agent's reading.
type Reading = (Agent, Option<Bot>);

thread_local! {
    static SEEN: RefCell<HashMap<Box<str>, Reading>> = RefCell::new(HashMap::new());
}

/// [`agent::classify`], remembered.
pub fn classify(user_agent: Option<&str>) -> Reading {
    let Some(ua) = user_agent else {
        return agent::classify(None);
    };
    SEEN.with_borrow_mut(|seen| {
        if let Some(hit) = seen.get(ua) {
            return hit.clone();
        }
        let reading = agent::classify(Some(ua));
        if seen.len() >= CAPACITY {
            seen.clear();
        }
        seen.insert(ua.into(), reading.clone());
        reading
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_reading_is_the_same_reading() {
        let ua = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        let first = classify(Some(ua));
        assert_eq!(first, agent::classify(Some(ua)));
        assert_eq!(classify(Some(ua)), first);
        assert_eq!(classify(None), agent::classify(None));
    }

    #[test]
    fn the_memo_stays_bounded() {
        for i in 0..CAPACITY + 10 {
            classify(Some(&format!("tool/{i}")));
        }
        SEEN.with_borrow(|seen| assert!(seen.len() <= CAPACITY));
    }
}
