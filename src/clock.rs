//! The wall clock as every stage reads it: milliseconds since the Unix epoch.
//!
//! Event times, retry times, health times and the delivery log are all stored in this
//! unit, so that they compare with one another and survive restarts. A clock set
//! before 1970 reads as 0 rather than failing.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    ms_of(SystemTime::now())
}

/// `t` in milliseconds since the Unix epoch (0 before it).
pub fn ms_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}
