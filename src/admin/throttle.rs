//! Wrong tokens at the API, slowed per client address: each failure from an address
//! waits a little longer before its answer, up to [`MAX_DELAY`], while failures from
//! it keep coming, so that guessing the token is slow. The wait is the request's own
//! (an async sleep): other clients, and the same client's right tokens, are answered
//! at once. The sign-in form has its own throttle (`session.rs`).
//!
//! At most [`MAX_ADDRESSES`] addresses are remembered; past that, the ones quiet the
//! longest are forgotten first.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What each recent failure from an address adds to the next one's wait.
pub const STEP: Duration = Duration::from_millis(100);
/// The longest a wrong token waits before its answer.
pub const MAX_DELAY: Duration = Duration::from_secs(2);
/// Failures older than this no longer slow the next one.
const MEMORY: Duration = Duration::from_secs(60);
/// Addresses remembered at once.
pub const MAX_ADDRESSES: usize = 4096;

struct Failures {
    recent: u32,
    last: Instant,
}

#[derive(Default)]
pub struct Throttle {
    by_address: Mutex<HashMap<IpAddr, Failures>>,
}

impl Throttle {
    /// Records a wrong token from `addr`; returns how long its answer waits and how
    /// many failures from it are recent.
    pub fn failed(&self, addr: IpAddr) -> (Duration, u32) {
        let now = Instant::now();
        let mut map = self.by_address.lock();
        if !map.contains_key(&addr) && map.len() >= MAX_ADDRESSES {
            map.retain(|_, f| now.duration_since(f.last) <= MEMORY);
            while map.len() >= MAX_ADDRESSES {
                let quietest = map.iter().min_by_key(|(_, f)| f.last).map(|(a, _)| *a);
                match quietest {
                    Some(a) => map.remove(&a),
                    None => break,
                };
            }
        }
        let f = map.entry(addr).or_insert(Failures {
            recent: 0,
            last: now,
        });
        if now.duration_since(f.last) > MEMORY {
            f.recent = 0;
        }
        f.recent = f.recent.saturating_add(1);
        f.last = now;
        (STEP.saturating_mul(f.recent).min(MAX_DELAY), f.recent)
    }

    #[cfg(test)]
    pub fn addresses(&self) -> usize {
        self.by_address.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_waits_longer_up_to_a_bound_and_others_are_not_slowed() {
        let t = Throttle::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let delays: Vec<Duration> = (0..20).map(|_| t.failed(a).0).collect();
        assert_eq!(delays[0], STEP);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*delays.last().unwrap(), MAX_DELAY);
        assert_eq!(t.failed(b), (STEP, 1), "another address starts afresh");
    }

    #[test]
    fn the_addresses_remembered_are_bounded() {
        let t = Throttle::default();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            t.failed(IpAddr::from(i.to_be_bytes()));
        }
        assert_eq!(t.addresses(), MAX_ADDRESSES);
    }
}
