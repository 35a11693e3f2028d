//! The wall clock as every stage reads it: milliseconds since the Unix epoch.
//!
//! Event times, retry times, health times and the delivery log are all stored in this
//! unit, so that they compare with one another and survive restarts. A clock set
//! before 1970 reads as 0 rather than failing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_outside_what_text_can_say_are_written_as_the_nearest_it_can() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(u64::MAX), "9999-12-31T23:59:59.999Z");
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(writable(before), UNIX_EPOCH);
    }
}
