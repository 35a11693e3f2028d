//! Two clocks: the wall clock for times people read, and the queue's clock for deciding.
//!
//! The wall clock ([`now_ms`]): milliseconds since the Unix epoch, as event timestamps,
//! the delivery log, dead letters and health report them. A clock set before 1970
//! reads as 0 rather than failing.
//!
//! The wall clock can step, forward or back, by any amount (an NTP correction, an
//! operator, a virtual machine resumed): anything that decides by it stalls for the
//! size of a backward step or fires early by a forward one. So due times, ages and
//! retention are kept on a [`Timeline`] instead: milliseconds that rise with the
//! monotonic clock while the process runs and never fall, not even across a restart.
//! A timeline starts at the later of the wall clock and the last time it wrote down
//! (the queue writes its clock with every flush): a step back while stopped is not
//! seen at all, and a step forward while stopped cannot be told from time spent
//! stopped, so it counts as such (retries come due, batches age, by that much). While
//! the wall clock is right the two read the same; after a step they part, and only the
//! timeline decides.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The last instant RFC 3339 text can say: 9999-12-31T23:59:59.999Z.
const LAST_WRITABLE: Duration = Duration::from_millis(253_402_300_799_999);

pub fn now_ms() -> u64 {
    ms_of(SystemTime::now())
}

/// `t` in milliseconds since the Unix epoch (0 before it).
pub fn ms_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// `t` within what RFC 3339 text can say: from the epoch to the year 9999. A clock can
/// be set outside it, and humantime's formatter panics before 1970 and fails after
/// 9999 (which serde_json turns into a panic): the nearest time it can write instead.
pub fn writable(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) if d <= LAST_WRITABLE => t,
        Ok(_) => UNIX_EPOCH + LAST_WRITABLE,
        Err(_) => UNIX_EPOCH,
    }
}

/// `ms` since the epoch as RFC 3339 with milliseconds (`2026-12-04T10:00:00.000Z`).
pub fn rfc3339_ms(ms: u64) -> String {
    let t = UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH + LAST_WRITABLE);
    humantime::format_rfc3339_millis(writable(t)).to_string()
}

/// How far ahead of the wall clock a stored timeline reading is still believed.
const MOST_AHEAD: Duration = Duration::from_secs(5 * 366 * 86_400);

/// Milliseconds that rise with the monotonic clock and never fall: the clock the queue
/// and delivery decide by (see the module's opening).
#[derive(Debug)]
pub struct Timeline {
    origin: Instant,
    /// What the timeline read at `origin`; only ever raised.
    at_origin: AtomicU64,
}

impl Timeline {
    /// A timeline reading the later of the wall clock and `floor` (the last reading
    /// written down by an earlier process). A floor more than [`MOST_AHEAD`] past the
    /// wall clock is not a clock step but damage, and would expire every stored event
    /// at once: it is logged and passed over.
    pub fn resume(floor: u64) -> Timeline {
        let wall = now_ms();
        let start = if floor > wall.saturating_add(MOST_AHEAD.as_millis() as u64) {
            tracing::warn!(
                stored = floor,
                wall,
                "the queue's stored clock lies years ahead of the wall clock; it starts again from the wall clock"
            );
            wall
        } else {
            wall.max(floor)
        };
        Timeline {
            origin: Instant::now(),
            at_origin: AtomicU64::new(start),
        }
    }

    pub fn now_ms(&self) -> u64 {
        let elapsed = self.origin.elapsed().as_millis() as u64;
        self.at_origin
            .load(Ordering::Acquire)
            .saturating_add(elapsed)
    }

    /// Moves the timeline on to at least `ms`, never back.
    pub fn advance_to(&self, ms: u64) {
        let elapsed = self.origin.elapsed().as_millis() as u64;
        self.at_origin
            .fetch_max(ms.saturating_sub(elapsed), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeline_resumes_past_its_floor_and_never_falls() {
        let ahead = now_ms() + 86_400_000;
        let t = Timeline::resume(ahead);
        let first = t.now_ms();
        assert!(first >= ahead);
        t.advance_to(5);
        assert!(
            t.now_ms() >= first,
            "advancing to an earlier time moves nothing"
        );
        t.advance_to(first + 60_000);
        assert!(t.now_ms() >= first + 60_000);
        // A reading years ahead is damage, not a step.
        let damaged = Timeline::resume(u64::MAX / 2);
        assert!(damaged.now_ms() < now_ms() + 60_000);
    }

    #[test]
    fn times_outside_what_text_can_say_are_written_as_the_nearest_it_can() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(u64::MAX), "9999-12-31T23:59:59.999Z");
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(writable(before), UNIX_EPOCH);
    }
}
