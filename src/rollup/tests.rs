//! The rollup against a real queue: what it counts, where it keeps its cursor, what a
//! restart, the queue's retention and its own do to the counts.

use std::sync::Arc;
use std::time::Duration;

use super::query::{Window, summarize};
use super::{Counter, store};
use crate::config::StatsConfig;
use crate::metrics::Metrics;
use crate::queue::{Queue, Record};

const MIN: u64 = 60_000;
/// A minute boundary, some day in 2023.
const T0: u64 = 1_700_000_040_000;

fn event(kind: &str, path: &str, country: Option<&str>) -> String {
    let geo = match country {
        Some(c) => format!("{{\"country_code\":\"{c}\"}}"),
        None => "null".into(),
    };
    format!(
        r#"{{"id":"x","kind":"{kind}","link":{{"url":"https://sho.rt{path}","path":"{path}"}},"destination":{{"url":"https://example.com/a","host":"example.com"}},"referrer":{{"url":null,"host":"direct"}},"agent":{{"browser":"Chrome","os":"Windows 10","device_type":"desktop"}},"geo":{geo}}}"#
    )
}

fn append(q: &Queue, at_ms: u64, events: &[String]) {
    let records: Vec<Record> = events
        .iter()
        .map(|e| Record {
            at_ms,
            bytes: e.as_bytes(),
        })
        .collect();
    q.append(&records).unwrap();
}

fn counter(q: &Queue, metrics: &Arc<Metrics>) -> Counter {
    let cfg = StatsConfig {
        enabled: true,
        retention: Duration::from_secs(3600),
    };
    Counter::open(&cfg, q.clone(), metrics.clone()).unwrap()
}

fn catch_up(c: &mut Counter) {
    while c.turn().unwrap() > 0 {}
}

fn window(q: &Queue, since: u64, until: u64) -> super::query::Summary {
    summarize(q, &Window::new(since, until, Some(60))).unwrap()
}

#[test]
fn events_are_counted_in_the_minute_they_were_captured_by_kind_and_key() {
    let (_dir, q) = crate::queue::tests::open_for_tests();
    let m = Arc::new(Metrics::new());
    append(
        &q,
        T0 + 5,
        &[
            event("human", "/r/a", Some("DE")),
            event("human", "/r/a", None),
            event("bot", "/r/b", Some("DE")),
        ],
    );
    append(&q, T0 + MIN + 1, &[event("head", "/r/a", Some("FR"))]);
    let mut c = counter(&q, &m);
    catch_up(&mut c);
    let s = window(&q, T0, T0 + 3 * MIN);
    assert_eq!(s.series, [[2, 1, 0, 0, 0], [0, 0, 0, 1, 0], [0; 5]]);
    assert_eq!(s.totals, [2, 1, 0, 1, 0]);
    assert_eq!(s.tops[0].top(5), [("/r/a", 3), ("/r/b", 1)]);
    assert_eq!(s.tops[2].top(5), [("DE", 2), ("FR", 1), ("unknown", 1)]);
    assert_eq!(s.tops[3].top(5), [("desktop/Windows 10", 4)]);
    assert_eq!(m.stats_counted.get(), 4);
    assert_eq!(m.stats_lag.get(), 0);
    // Its cursor is its own: the queue's consumers (webhooks) do not include it, so it
    // holds back nothing and counts in no `expired` drop.
    assert!(q.cursors().unwrap().is_empty());
    assert_eq!(q.min_cursor().unwrap(), u64::MAX);
    assert_eq!(store::cursor(&q).unwrap(), Some(q.head()));
}

#[test]
fn a_new_counter_resumes_at_the_stored_cursor_without_counting_twice() {
    let (_dir, q) = crate::queue::tests::open_for_tests();
    let m = Arc::new(Metrics::new());
    append(
        &q,
        T0,
        &[event("human", "/r/a", None), event("preview", "/r/a", None)],
    );
    catch_up(&mut counter(&q, &m));
    append(&q, T0 + 10, &[event("prefetch", "/r/c", None)]);
    // A restart: nothing in memory, the cursor and minutes from the tree.
    let mut again = counter(&q, &m);
    catch_up(&mut again);
    catch_up(&mut again);
    let s = window(&q, T0, T0 + MIN);
    assert_eq!(s.totals, [1, 0, 1, 0, 1]);
    assert_eq!(s.tops[0].top(5), [("/r/a", 2), ("/r/c", 1)]);
}

#[test]
fn events_the_queue_removed_before_they_were_read_are_skipped_and_counted() {
    let (_dir, q) = crate::queue::tests::open_for_tests();
    let m = Arc::new(Metrics::new());
    let mut c = counter(&q, &m);
    // Captured two hours ago: past the queue's retention (an hour in these tests).
    let old = crate::clock::now_ms() - 2 * 3600 * 1000;
    append(
        &q,
        old,
        &[
            event("human", "/r/old", None),
            event("human", "/r/old", None),
        ],
    );
    q.retain(crate::clock::now_ms()).unwrap();
    let now = crate::clock::now_ms();
    append(&q, now, &[event("bot", "/r/new", None)]);
    catch_up(&mut c);
    assert_eq!(m.stats_missed.get(), 2);
    assert_eq!(m.stats_counted.get(), 1);
    let s = window(&q, old - MIN, now + MIN);
    assert_eq!(s.totals, [0, 1, 0, 0, 0]);
}

#[test]
fn minutes_past_the_retention_are_removed_and_bytes_that_are_no_event_are_counted() {
    let (_dir, q) = crate::queue::tests::open_for_tests();
    let m = Arc::new(Metrics::new());
    append(&q, T0, &[event("human", "/r/a", None)]);
    append(
        &q,
        T0 + 90 * MIN,
        &[event("human", "/r/b", None), "not json".into()],
    );
    let mut c = counter(&q, &m);
    catch_up(&mut c);
    assert_eq!(m.stats_unreadable.get(), 1);
    assert_eq!(window(&q, T0, T0 + 2 * 3600 * 1000).minutes, 2);
    // An hour's retention, an hour and a half later: the first minute goes.
    c.prune(T0 + 90 * MIN + 1);
    let s = window(&q, T0, T0 + 2 * 3600 * 1000);
    assert_eq!(s.minutes, 1);
    assert_eq!(s.tops[0].top(5), [("/r/b", 1)]);
}
