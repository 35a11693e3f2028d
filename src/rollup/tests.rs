//! The rollup against a real queue: what it counts, where it keeps its cursor, what a
//! restart, the queue's retention and its own do to the counts.

use std::sync::Arc;
use std::time::Duration;

use super::Counter;
use super::query::{Window, summarize};
use super::store::{self, Span};
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
    // Two hours later by the queue's clock, which retention judges by.
    q.retain(q.clock().now_ms() + 2 * 3600 * 1000).unwrap();
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

#[test]
fn a_window_over_hours_takes_whole_hours_from_hour_records_and_its_edges_from_minutes() {
    let (_dir, q) = crate::queue::tests::open_for_tests();
    let m = Arc::new(Metrics::new());
    let h0 = T0 / 3_600_000 * 3_600_000;
    append(&q, h0 - 10 * MIN, &[event("human", "/r/before", None)]);
    append(
        &q,
        h0 + 5 * MIN,
        &[event("human", "/r/in", None), event("bot", "/r/in", None)],
    );
    append(&q, h0 + 70 * MIN, &[event("human", "/r/after", None)]);
    catch_up(&mut counter(&q, &m));
    let s = summarize(&q, &Window::new(h0 - 20 * MIN, h0 + 80 * MIN, Some(600))).unwrap();
    assert_eq!(s.series.len(), 10);
    assert_eq!(s.totals, [3, 1, 0, 0, 0]);
    assert_eq!(
        s.tops[0].top(5),
        [("/r/in", 2), ("/r/after", 1), ("/r/before", 1)]
    );
    // No whole hour inside: minutes only, and only those in the window.
    let s = summarize(&q, &Window::new(h0 + 10 * MIN, h0 + 75 * MIN, None)).unwrap();
    assert_eq!(s.tops[0].top(5), [("/r/after", 1)]);
    // The hour record holds the same counts as its minutes.
    let hour = store::load(&q, Span::Hour, h0 / 3_600_000)
        .unwrap()
        .unwrap();
    assert_eq!(hour.kinds, [1, 1, 0, 0, 0]);
    assert_eq!(hour.dims[0].top(5), [("/r/in", 2)]);
}

/// Keys drawn from a Zipf-like spread (key `i` about `1/(i+1)` as often as the first):
/// a few links, hosts and countries take most clicks, a long tail the rest.
struct Spread {
    cumulative: Vec<f64>,
}

impl Spread {
    fn new(n: usize) -> Spread {
        let mut sum = 0.0;
        let cumulative = (0..n)
            .map(|i| {
                sum += 1.0 / (i as f64 + 1.0);
                sum
            })
            .collect();
        Spread { cumulative }
    }

    fn pick(&self, r: f64) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        self.cumulative.partition_point(|c| *c < r * total)
    }
}

/// The size of a day of minutes at realistic cardinality, and the time a week's window
/// takes. Run: `cargo test --release --lib rollup::tests::measure -- --ignored --nocapture`
#[test]
#[ignore]
fn measure_bytes_per_minute_per_day_and_a_week_window() {
    use super::minute::{Click, Minute};
    let clicks_per_minute = 1_000;
    // Distinct keys per dimension in a day, and their lengths.
    let links: Vec<String> = (0..2_000).map(|i| format!("/r/{i:07x}")).collect();
    let hosts: Vec<String> = (0..200)
        .map(|i| format!("www.shop-{i:03}.example.com"))
        .collect();
    let countries: Vec<String> = (0..60)
        .map(|i| format!("{}{}", (b'A' + i / 26) as char, (b'A' + i % 26) as char))
        .collect();
    let devices: Vec<String> = [
        "desktop/Windows 10",
        "desktop/Mac OSX",
        "mobile/iOS",
        "mobile/Android",
        "tablet/iPadOS",
        "desktop/Linux",
        "bot",
        "other",
        "tablet/Android",
        "desktop/ChromeOS",
        "mobile/Windows Phone",
        "desktop/Windows 7",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let browsers: Vec<String> = [
        "Chrome",
        "Safari",
        "Firefox",
        "Edge",
        "Opera",
        "Samsung Internet",
        "unknown",
        "Vivaldi",
        "UC Browser",
        "Yandex",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let referrers: Vec<String> = (0..300)
        .map(|i| format!("news-{i:03}.example.org"))
        .collect();
    let spreads = [&links, &hosts, &countries, &devices, &browsers, &referrers]
        .map(|v| (v, Spread::new(v.len())));
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let minute_of_clicks = |next: &mut dyn FnMut() -> f64| {
        let mut m = Minute::default();
        for _ in 0..clicks_per_minute {
            let kind = match next() {
                r if r < 0.80 => 0,
                r if r < 0.92 => 1,
                r if r < 0.97 => 2,
                r if r < 0.99 => 3,
                _ => 4,
            };
            let mut keys = [""; 6];
            for (k, (values, spread)) in keys.iter_mut().zip(&spreads) {
                *k = &values[spread.pick(next())];
            }
            m.add(&Click { kind, keys });
        }
        m
    };
    let (_dir, q) = crate::queue::tests::open_for_tests();
    let disk_before = q.size_on_disk().unwrap();
    let day = 1440u64;
    let t0 = T0 / MIN;
    let started = std::time::Instant::now();
    let mut hour = (t0 / 60, Minute::default());
    let (mut minute_bytes, mut hour_bytes) = (0, 0);
    let write = |minute: u64, m: &Minute, times: usize, hour: &mut (u64, Minute)| {
        if hour.0 != minute / 60 {
            *hour = (minute / 60, Minute::default());
        }
        for (top, d) in hour.1.dims.iter_mut().zip(&m.dims) {
            top.merge(d);
        }
        for (k, n) in hour.1.kinds.iter_mut().zip(m.kinds) {
            *k += n;
        }
        for _ in 0..times {
            let records = [(Span::Minute, minute, m), (Span::Hour, hour.0, &hour.1)];
            store::write(&q, q.generation(), records.into_iter(), 0).unwrap();
        }
    };
    for minute in t0..t0 + day {
        let m = minute_of_clicks(&mut next);
        // The rollup rewrites the current minute and hour once a second.
        write(minute, &m, 60, &mut hour);
        minute_bytes += m.encode().len();
        if (minute + 1) % 60 == 0 {
            hour_bytes += hour.1.encode().len();
        }
    }
    q.flush().unwrap();
    let wrote = started.elapsed();
    let disk_after = q.size_on_disk().unwrap();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "a day at {clicks_per_minute} clicks/min: {} bytes per minute record, {} per hour record; {:.2} MiB of records per day; sled size_on_disk {:.1} -> {:.1} MiB after 86,400 writes ({wrote:?})",
        minute_bytes / day as usize,
        hour_bytes / 24,
        mib((minute_bytes + hour_bytes) as u64),
        mib(disk_before),
        mib(disk_after),
    );
    // A week of minutes (each written once), then the window over all of it.
    for minute in t0 + day..t0 + 7 * day {
        let m = minute_of_clicks(&mut next);
        write(minute, &m, 1, &mut hour);
    }
    q.flush().unwrap();
    println!(
        "a week stored: sled size_on_disk {:.1} MiB",
        mib(q.size_on_disk().unwrap())
    );
    for step in [None, Some(60)] {
        let w = Window::new(T0, T0 + 7 * day * MIN, step);
        let started = std::time::Instant::now();
        let s = summarize(&q, &w).unwrap();
        let took = started.elapsed();
        let tops: Vec<usize> = s.tops.iter().map(|t| t.keys.len()).collect();
        println!(
            "a week's window, step {} ms: {} minute records read, {} points, distinct keys in the tops {tops:?}, {took:?}",
            w.step_ms,
            s.minutes,
            s.series.len()
        );
        assert_eq!(s.minutes as u64, 7 * day);
    }
}
