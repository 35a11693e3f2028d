//! When the next attempt happens.

use std::time::Duration;

use crate::config::RetryPolicy;

/// The delay before attempt `attempts + 1`, after `attempts` failures, moved at random
/// by up to `jitter` of itself either way so that a receiver coming back from an
/// outage is not hit by every retry at the same instant.
pub fn delay(policy: &RetryPolicy, attempts: u32) -> Duration {
    let i = (attempts.max(1) - 1) as usize;
    let base = policy
        .schedule
        .get(i)
        .or(policy.schedule.last())
        .copied()
        .unwrap_or(Duration::from_secs(5));
    if policy.jitter <= 0.0 || base.is_zero() {
        return base;
    }
    let f: f64 = rand::random_range(-policy.jitter..=policy.jitter);
    base.mul_f64((1.0 + f).max(0.0))
}

/// `Retry-After` in seconds or as an HTTP date, capped at a day (delivery caps it again
/// at the webhook's `retry.max_backoff`).
pub fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    let d = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate_parse(v)?.duration_since(now).unwrap_or_default(),
    };
    Some(d.min(Duration::from_secs(86_400)))
}

fn httpdate_parse(v: &str) -> Option<std::time::SystemTime> {
    // RFC 9110 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
    let rest = v.split_once(", ")?.1;
    let mut it = rest.split(' ');
    let day: u64 = it.next()?.parse().ok()?;
    let mon = it.next()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == mon)?;
    let year: u64 = it.next()?.parse().ok()?;
    let rfc3339 = format!("{year:04}-{:02}-{day:02}T{}Z", month + 1, it.next()?);
    humantime::parse_rfc3339(&rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(schedule: &[u64], jitter: f64) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            schedule: schedule.iter().map(|s| Duration::from_secs(*s)).collect(),
            jitter,
            max_backoff: Duration::from_secs(3600),
        }
    }

    #[test]
    fn schedule_is_followed_and_its_last_step_repeats() {
        let p = policy(&[1, 10, 100], 0.0);
        assert_eq!(delay(&p, 1), Duration::from_secs(1));
        assert_eq!(delay(&p, 2), Duration::from_secs(10));
        assert_eq!(delay(&p, 3), Duration::from_secs(100));
        assert_eq!(delay(&p, 9), Duration::from_secs(100));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let p = policy(&[100], 0.2);
        for _ in 0..200 {
            let d = delay(&p, 1).as_secs_f64();
            assert!((80.0..=120.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = humantime::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(retry_after("soon", now), None);
    }
}
