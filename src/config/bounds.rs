//! The ranges values must fall in, each refusal in one shape: the value as written, the
//! range, and why when the range alone does not say it.
//!
//! A value out of range is one an operator did not mean (a zero that makes a loop spin,
//! a count that exhausts threads or memory, a rate whose interval overflows), so it is
//! refused at `check` rather than clamped at run time.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::parse;
use super::problems::Problems;

/// The shortest duration that means "soon" rather than "never wait": below it a loop
/// spins or a deadline has passed before anything starts.
pub const MILLI: Duration = Duration::from_millis(1);

/// `n` within `range`; out of it, a problem under `key`.
pub fn count<T: PartialOrd + Display>(p: &mut Problems, key: &str, n: T, range: RangeInclusive<T>) {
    if !range.contains(&n) {
        p.push(
            key,
            format!("{n} is outside {}-{}", range.start(), range.end()),
        );
    }
}

/// A duration of at least `min`, and at most `max` when there is one.
pub fn duration(
    p: &mut Problems,
    key: &str,
    text: &str,
    min: Duration,
    max: Option<Duration>,
) -> Option<Duration> {
    let d = p.check(key, parse::duration(text))?;
    let min_text = humantime::format_duration(min);
    match max {
        Some(max) if !(min..=max).contains(&d) => {
            let max_text = humantime::format_duration(max);
            p.push(key, format!("{text:?} is outside {min_text}-{max_text}"));
            None
        }
        None if d < min => {
            p.push(key, format!("{text:?} is below {min_text}"));
            None
        }
        _ => Some(d),
    }
}

/// A size of at least `min` bytes.
pub fn size(p: &mut Problems, key: &str, text: &str, min: u64) -> Option<u64> {
    let n = p.check(key, parse::size(text))?;
    if n < min {
        p.push(key, format!("{text:?} is below {}", bytes(min)));
        return None;
    }
    Some(n)
}

/// `1048576` as `1MiB`: the largest binary unit that divides it.
fn bytes(n: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn messages(f: impl FnOnce(&mut Problems)) -> Vec<String> {
        let mut p = Problems::new(Path::new("t.toml"));
        f(&mut p);
        p.list
            .into_iter()
            .map(|x| format!("{}: {}", x.key, x.message))
            .collect()
    }

    #[test]
    fn each_refusal_says_the_value_and_the_range() {
        let m = messages(|p| {
            count(p, "a", 0usize, 1..=64);
            count(p, "b", 64usize, 1..=64);
            assert_eq!(duration(p, "c", "0s", MILLI, None), None);
            assert_eq!(
                duration(
                    p,
                    "d",
                    "8d",
                    Duration::ZERO,
                    Some(Duration::from_secs(7 * 86_400))
                ),
                None
            );
            assert_eq!(duration(p, "e", "1ms", MILLI, None), Some(MILLI));
            assert_eq!(size(p, "f", "512KiB", 1 << 20), None);
            assert_eq!(size(p, "g", "1MiB", 1 << 20), Some(1 << 20));
        });
        assert_eq!(
            m,
            [
                "a: 0 is outside 1-64",
                "c: \"0s\" is below 1ms",
                "d: \"8d\" is outside 0s-7days",
                "f: \"512KiB\" is below 1MiB",
            ]
        );
    }

    #[test]
    fn sizes_print_in_the_largest_exact_unit() {
        assert_eq!(bytes(1 << 20), "1MiB");
        assert_eq!(bytes(64 << 20), "64MiB");
        assert_eq!(bytes(2048), "2KiB");
        assert_eq!(bytes(1536), "1536B");
    }
}
