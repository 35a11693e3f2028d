//! A webhook's `rate_limit`: requests spaced `1 / rate_limit` seconds apart.
//!
//! Each request takes the next free slot and sleeps until it. The wait is part of the
//! attempt, so a stop cuts it short like any other part ([`super::dispatch`]).

use std::time::{Duration, Instant};

/// Slots are at most this far apart, whatever the rate says: configuration refuses
/// rates below one request in 1000 s, and this keeps a bad value from overflowing
/// the clock rather than from panicking a delivery task.
const LONGEST: Duration = Duration::from_secs(3600);

pub struct Limiter {
    interval: Option<Duration>,
    next: parking_lot::Mutex<Instant>,
}

impl Limiter {
    pub fn new(rate: Option<f64>) -> Limiter {
        let interval = rate.filter(|r| *r > 0.0).map(|r| {
            Duration::try_from_secs_f64(1.0 / r)
                .unwrap_or(LONGEST)
                .min(LONGEST)
        });
        Limiter {
            interval: interval.filter(|iv| !iv.is_zero()),
            next: parking_lot::Mutex::new(Instant::now()),
        }
    }

    /// Waits for this request's slot.
    pub async fn wait(&self) {
        let Some(iv) = self.interval else { return };
        let slot = {
            let mut next = self.next.lock();
            let slot = (*next).max(Instant::now());
            *next = slot + iv;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_rate_makes_a_limiter_without_panicking() {
        for r in [1e-300, 1e-20, 0.001, 1.0, 1e9, 1e300, f64::MIN_POSITIVE] {
            let l = Limiter::new(Some(r));
            assert!(l.interval.is_none_or(|iv| iv <= LONGEST), "{r}");
        }
        assert!(Limiter::new(Some(0.0)).interval.is_none());
        assert!(Limiter::new(Some(f64::NAN)).interval.is_none());
        assert_eq!(
            Limiter::new(Some(10.0)).interval,
            Some(Duration::from_millis(100))
        );
    }
}
