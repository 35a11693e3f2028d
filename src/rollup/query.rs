//! Reading the rollups for a window: a series of counts by kind per step, totals, and
//! the largest keys of each dimension over the whole window.
//!
//! The work is bounded by the records stored in the window, never by the events the
//! queue holds: the series reads the counts by kind of each minute (at most 10,080 for
//! a week, only their first bytes), the tops merge the hours wholly inside the window
//! (168 for a week) and the minutes of the hours at its edges (at most 118). The series
//! has at most [`MAX_POINTS`], whatever window or step is asked.

use super::minute::{Counts, DIMENSIONS, KINDS, Minute};
use super::store::{self, HOUR_MS, MINUTE_MS, Span};
use crate::queue::{Queue, QueueError};

/// The most points a series has: a week of minutes. A step that would give more is
/// widened to the smallest whole minute that does not.
pub const MAX_POINTS: u64 = 10_080;
/// Windows up to this long get one point a minute when no step is asked.
const MINUTE_STEPS_UP_TO_MS: u64 = 3 * 3600 * 1000;
/// About how many points a series has when no step is asked and the window is longer.
const AUTO_POINTS: u64 = 300;
/// The steps chosen for longer windows, in minutes: round ones a chart can label.
const NICE_STEPS_MIN: [u64; 12] = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];

/// A window cut into steps: `since_ms` is a multiple of `step_ms` (itself a whole
/// number of minutes), and `until_ms` is `points` steps later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since_ms: u64,
    pub until_ms: u64,
    pub step_ms: u64,
    pub points: u64,
}

impl Window {
    /// The window from `since_ms` up to `until_ms` (not included), with a step of
    /// `step_s` seconds (a multiple of 60, checked by the caller) or one chosen for the
    /// window's length. An inverted or empty window has no points.
    pub fn new(since_ms: u64, until_ms: u64, step_s: Option<u64>) -> Window {
        let span = until_ms.saturating_sub(since_ms);
        let mut step_ms = match step_s {
            Some(s) => s.saturating_mul(1000).max(MINUTE_MS) / MINUTE_MS * MINUTE_MS,
            None => auto_step(span),
        };
        if span.div_ceil(step_ms) > MAX_POINTS {
            step_ms = span.div_ceil(MAX_POINTS).div_ceil(MINUTE_MS) * MINUTE_MS;
        }
        let since = since_ms / step_ms * step_ms;
        let points = match until_ms > since_ms {
            true => (until_ms - since).div_ceil(step_ms),
            false => 0,
        };
        // The end of the last step may pass u64::MAX ms; the window ends there instead.
        let until = (u128::from(since) + u128::from(points) * u128::from(step_ms))
            .min(u128::from(u64::MAX)) as u64;
        Window {
            since_ms: since,
            until_ms: until,
            step_ms,
            points,
        }
    }
}

fn auto_step(span: u64) -> u64 {
    if span <= MINUTE_STEPS_UP_TO_MS {
        return MINUTE_MS;
    }
    for minutes in NICE_STEPS_MIN {
        let step = minutes * MINUTE_MS;
        if span.div_ceil(step) <= AUTO_POINTS {
            return step;
        }
    }
    let day = 1440 * MINUTE_MS;
    span.div_ceil(AUTO_POINTS).div_ceil(day) * day
}

/// What the rollups say about a window.
#[derive(Debug, Default)]
pub struct Summary {
    /// Counts by kind per step, oldest first, every step of the window.
    pub series: Vec<[u64; KINDS]>,
    pub totals: [u64; KINDS],
    /// One per dimension, in [`DIMENSIONS`] order, summed over the window.
    pub tops: Vec<Counts>,
    /// Minute records read.
    pub minutes: usize,
}

pub fn summarize(queue: &Queue, w: &Window) -> Result<Summary, QueueError> {
    let mut s = Summary {
        series: vec![[0; KINDS]; w.points as usize],
        tops: vec![Counts::default(); DIMENSIONS.len()],
        ..Summary::default()
    };
    if w.points == 0 {
        return Ok(s);
    }
    let (minute, hour) = (MINUTE_MS, HOUR_MS);
    let (from, to) = (w.since_ms / minute, w.until_ms.div_ceil(minute));
    // The series and totals: the counts by kind of every minute.
    for item in store::range(queue, Span::Minute, from, to, store::kinds)? {
        let (n, kinds) = item?;
        s.minutes += 1;
        let i = ((n * minute - w.since_ms) / w.step_ms) as usize;
        if let Some(point) = s.series.get_mut(i) {
            for (k, c) in kinds.iter().enumerate() {
                point[k] += c;
                s.totals[k] += c;
            }
        }
    }
    // The tops: the hours wholly inside the window, and the minutes of the others.
    let (first_hour, end_hour) = (w.since_ms.div_ceil(hour), w.until_ms / hour);
    let mut merge = |span, from, to| -> Result<(), QueueError> {
        for item in store::range(queue, span, from, to, Minute::decode)? {
            for (top, d) in s.tops.iter_mut().zip(&item?.1.dims) {
                top.merge(d);
            }
        }
        Ok(())
    };
    if first_hour < end_hour {
        merge(Span::Minute, from, first_hour * 60)?;
        merge(Span::Hour, first_hour, end_hour)?;
        merge(Span::Minute, end_hour * 60, to)?;
    } else {
        merge(Span::Minute, from, to)?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600 * 1000;

    #[test]
    fn an_hour_is_sixty_one_minute_steps_aligned_to_the_minute() {
        let now = 1_700_000_012_345;
        let w = Window::new(now - H, now, None);
        assert_eq!(w.step_ms, MINUTE_MS);
        assert_eq!(w.since_ms % MINUTE_MS, 0);
        assert!(w.since_ms <= now - H && w.until_ms >= now);
        assert_eq!(w.points, 61);
        assert_eq!(w.until_ms - w.since_ms, w.points * w.step_ms);
    }

    #[test]
    fn longer_windows_get_round_steps_and_about_three_hundred_points() {
        assert_eq!(Window::new(0, 3 * H, None).step_ms, MINUTE_MS);
        let day = Window::new(0, 24 * H, None);
        assert_eq!(day.step_ms, 5 * MINUTE_MS);
        assert_eq!(day.points, 288);
        let week = Window::new(0, 7 * 24 * H, None);
        assert_eq!(week.step_ms, 60 * MINUTE_MS);
        assert_eq!(week.points, 168);
        let ages = Window::new(0, u64::MAX, None);
        assert!(ages.points <= AUTO_POINTS, "{ages:?}");
        assert_eq!(ages.step_ms % (1440 * MINUTE_MS), 0);
    }

    #[test]
    fn a_step_is_kept_unless_it_gives_more_than_a_week_of_minutes() {
        let w = Window::new(0, 7 * 24 * H, Some(60));
        assert_eq!((w.step_ms, w.points), (MINUTE_MS, MAX_POINTS));
        let w = Window::new(0, 14 * 24 * H, Some(60));
        assert_eq!((w.step_ms, w.points), (2 * MINUTE_MS, MAX_POINTS));
        let w = Window::new(0, u64::MAX, Some(60));
        assert!(
            w.points <= MAX_POINTS && w.step_ms.is_multiple_of(MINUTE_MS),
            "{w:?}"
        );
        let w = Window::new(90 * MINUTE_MS, 2 * H, Some(3600));
        assert_eq!((w.since_ms, w.until_ms, w.points), (H, 2 * H, 1));
        let w = Window::new(0, H, Some(u64::MAX / 1000 * 60));
        assert_eq!(w.points, 1);
    }

    #[test]
    fn an_inverted_or_empty_window_has_no_points() {
        let w = Window::new(2 * H, H, None);
        assert_eq!(w.points, 0);
        assert_eq!(w.until_ms, w.since_ms);
        assert_eq!(Window::new(H, H, None).points, 0);
        assert_eq!(Window::new(2000, 1000, None).points, 0, "within one minute");
    }
}
