//! The queue's guarantees, checked on a real sled directory.

use std::sync::Arc;
use std::time::Duration;

use super::{Queue, Record};
use crate::config::{QueueConfig, WhenFull};
use crate::metrics::Metrics;

/// A queue in a fresh directory, for other modules' unit tests.
pub(crate) fn open_for_tests() -> (tempfile::TempDir, Queue) {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(
        &cfg(dir.path(), 1_000_000, WhenFull::DropNewest),
        Arc::new(Metrics::new()),
    )
    .unwrap();
    (dir, q)
}

fn cfg(dir: &std::path::Path, max_events: u64, when_full: WhenFull) -> QueueConfig {
    QueueConfig {
        path: dir.join("q"),
        flush_interval: Duration::ZERO,
        max_events,
        max_bytes: 1 << 30,
        when_full,
        retention: Duration::from_secs(3600),
        cache_size: 1 << 20,
        min_free_bytes: 0,
        spool_bytes: 0,
    }
}

const BODIES: [&[u8]; 8] = [
    b"{\"n\":0}",
    b"{\"n\":1}",
    b"{\"n\":2}",
    b"{\"n\":3}",
    b"{\"n\":4}",
    b"{\"n\":5}",
    b"{\"n\":6}",
    b"{\"n\":7}",
];

fn records(at_ms: u64, n: usize) -> Vec<Record<'static>> {
    (0..n)
        .map(|i| Record {
            at_ms: at_ms + i as u64,
            bytes: BODIES[i % BODIES.len()],
        })
        .collect()
}

#[test]
fn appends_are_numbered_in_order_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 100, WhenFull::DropNewest);
    {
        let metrics = Arc::new(Metrics::new());
        let q = Queue::open(&c, metrics.clone()).unwrap();
        assert_eq!(q.append(&records(1000, 3)).unwrap().stored, 3);
        assert_eq!(metrics.queue_unflushed.get(), 3, "stored, not yet on disk");
        q.flush().unwrap();
        assert_eq!(metrics.queue_unflushed.get(), 0);
        let read = q.read(0, 10).unwrap();
        assert_eq!(
            read.iter().map(|s| s.seq).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(read[1].at_ms, 1001);
        assert_eq!(read[2].bytes(), b"{\"n\":2}");
    }
    let q = Queue::open(&c, Arc::new(Metrics::new())).unwrap();
    assert_eq!(q.head(), 3);
    assert_eq!(q.depth(), 3);
    q.append(&records(2000, 1)).unwrap();
    assert_eq!(q.tail(1).unwrap()[0].seq, 3);
}

#[test]
fn drop_newest_refuses_what_does_not_fit_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let m = Arc::new(Metrics::new());
    let q = Queue::open(&cfg(dir.path(), 5, WhenFull::DropNewest), m.clone()).unwrap();
    let out = q.append(&records(0, 8)).unwrap();
    assert_eq!((out.stored, out.refused), (5, 3));
    assert_eq!(m.queue_dropped_full.get(), 3);
    assert_eq!(q.depth(), 5);
    assert_eq!(q.append(&records(0, 1)).unwrap().refused, 1);
}

#[test]
fn drop_oldest_evicts_and_counts_only_unread_events() {
    let dir = tempfile::tempdir().unwrap();
    let m = Arc::new(Metrics::new());
    let q = Queue::open(&cfg(dir.path(), 5, WhenFull::DropOldest), m.clone()).unwrap();
    // Five appends of one: eviction removes whole appended batches.
    for i in 0..5 {
        q.append(&records(i, 1)).unwrap();
    }
    // One consumer has read the first two.
    q.set_cursor("webhook:a", 2).unwrap();
    let out = q.append(&records(10, 3)).unwrap();
    assert_eq!(out.stored, 3);
    assert_eq!(out.evicted, 1, "seq 0 and 1 were read; seq 2 was not");
    assert_eq!(m.queue_evicted.get(), 1);
    assert_eq!(q.first(), 3);
    assert_eq!(q.depth(), 5);
}

#[test]
fn retention_removes_old_events_and_numbering_continues() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 100, WhenFull::DropNewest);
    let m = Arc::new(Metrics::new());
    {
        let q = Queue::open(&c, m.clone()).unwrap();
        q.append(&records(0, 4)).unwrap();
        q.set_cursor("webhook:a", 1).unwrap();
        // An hour of retention, measured an hour and a bit later: all four go.
        let expired = q.retain(q.clock().now_ms() + 3_600_000 + 10).unwrap();
        assert_eq!(
            expired, 3,
            "the three the consumer had not read count as expired"
        );
        assert_eq!(q.depth(), 0);
        q.flush().unwrap();
    }
    let q = Queue::open(&c, Arc::new(Metrics::new())).unwrap();
    assert_eq!(q.head(), 4, "an emptied log keeps its numbering");
    q.append(&records(5_000_000, 1)).unwrap();
    assert_eq!(q.read(0, 10).unwrap()[0].seq, 4);
}

#[test]
fn a_reader_waiting_on_the_head_is_woken_by_an_append() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(
        &cfg(dir.path(), 100, WhenFull::DropNewest),
        Arc::new(Metrics::new()),
    )
    .unwrap();
    let mut rx = q.subscribe();
    q.append(&records(0, 2)).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 2);
}

#[test]
fn reads_start_inside_a_batch_and_cross_batches() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(
        &cfg(dir.path(), 100, WhenFull::DropNewest),
        Arc::new(Metrics::new()),
    )
    .unwrap();
    q.append(&records(0, 4)).unwrap();
    q.append(&records(10, 3)).unwrap();
    let seqs = |v: Vec<super::Stored>| v.iter().map(|s| s.seq).collect::<Vec<_>>();
    assert_eq!(seqs(q.read(2, 3).unwrap()), vec![2, 3, 4]);
    assert_eq!(seqs(q.read(5, 10).unwrap()), vec![5, 6]);
    assert_eq!(seqs(q.tail(5).unwrap()), vec![2, 3, 4, 5, 6]);
    assert_eq!(q.get(4).unwrap().unwrap().at_ms, 10);
    assert!(q.get(7).unwrap().is_none());
}

#[test]
fn a_search_by_capture_time_finds_events_on_both_sides_of_a_clock_step() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(
        &cfg(dir.path(), 100, WhenFull::DropNewest),
        Arc::new(Metrics::new()),
    )
    .unwrap();
    let now = crate::clock::now_ms();
    let day = 86_400_000;
    q.append(&records(now, 3)).unwrap();
    // The wall clock steps back a day: later events carry earlier capture times.
    q.append(&records(now - day, 3)).unwrap();
    let found = |since: u64, until: u64| -> Vec<u64> {
        let range = q.seqs_captured(since, until).unwrap();
        q.read(range.start, 100)
            .unwrap()
            .into_iter()
            .filter(|s| s.seq < range.end && (since..=until).contains(&s.at_ms))
            .map(|s| s.seq)
            .collect()
    };
    assert_eq!(found(now - day, now - day + 2), [3, 4, 5]);
    assert_eq!(found(now, now + 2), [0, 1, 2]);
    assert_eq!(found(now - day, now + 2), [0, 1, 2, 3, 4, 5]);
    assert!(found(now + 10, now + 20).is_empty());
}

#[test]
fn a_value_that_does_not_decode_is_removed_and_counted_not_a_wall() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let q = Queue::open(&cfg(dir.path(), 100, WhenFull::DropNewest), metrics.clone()).unwrap();
    for n in [2, 3, 2, 1] {
        q.append(&records(1000, n)).unwrap();
    }
    // Batches hold seqs 0-1, 2-4, 5-6 and 7. Damage the second and the first, as a
    // layout no version reads would look.
    let garbage: &[u8] = b"\x00\x00\x01\x9a not a batch";
    for key in [2u64, 0] {
        q.store()
            .unwrap()
            .events
            .insert(key.to_be_bytes(), garbage)
            .unwrap();
    }
    let read = q.read(0, 10).unwrap();
    assert_eq!(
        read.iter().map(|s| s.seq).collect::<Vec<_>>(),
        vec![5, 6, 7]
    );
    assert_eq!(metrics.queue_dropped_corrupt.get(), 5, "seqs 0-4");
    // Read again: nothing left to empty, nothing counted twice.
    assert_eq!(q.read(0, 10).unwrap().len(), 3);
    assert_eq!(metrics.queue_dropped_corrupt.get(), 5);

    // The same for retention and the tail, on a value damaged later.
    q.store()
        .unwrap()
        .events
        .insert(7u64.to_be_bytes(), garbage)
        .unwrap();
    assert_eq!(
        q.tail(10)
            .unwrap()
            .iter()
            .map(|s| s.seq)
            .collect::<Vec<_>>(),
        vec![5, 6]
    );
    assert_eq!(metrics.queue_dropped_corrupt.get(), 6);
    q.store()
        .unwrap()
        .events
        .insert(5u64.to_be_bytes(), garbage)
        .unwrap();
    q.retain(u64::MAX / 2).unwrap();
    assert_eq!(metrics.queue_dropped_corrupt.get(), 8);
    q.retain(u64::MAX / 2).unwrap();
    assert_eq!(q.read(0, 10).unwrap().len(), 0);
    assert_eq!(
        q.store().unwrap().events.len(),
        0,
        "emptied values are removed by retention"
    );
    assert_eq!(q.depth(), 0);
}

#[test]
fn the_queue_clock_resumes_past_the_reading_its_last_flush_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 100, WhenFull::DropNewest);
    let ahead = crate::clock::now_ms() + 86_400_000;
    {
        let q = Queue::open(&c, Arc::new(Metrics::new())).unwrap();
        // As if an earlier run had stood a day ahead of the wall clock now.
        q.clock().advance_to(ahead);
        q.flush().unwrap();
    }
    let q = Queue::open(&c, Arc::new(Metrics::new())).unwrap();
    assert!(
        q.clock().now_ms() >= ahead,
        "it never runs back, across a restart too"
    );
}

#[test]
fn a_batch_captured_a_day_ahead_expires_with_those_around_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 100, WhenFull::DropNewest);
    let q = Queue::open(&c, Arc::new(Metrics::new())).unwrap();
    let now = crate::clock::now_ms();
    q.append(&records(now, 2)).unwrap();
    // Captured while the wall clock ran a day ahead.
    q.append(&records(now + 86_400_000, 2)).unwrap();
    q.append(&records(now, 2)).unwrap();
    let later = q.clock().now_ms() + 3_600_000 + 10;
    q.retain(later).unwrap();
    assert_eq!(q.depth(), 0, "judged by when they were stored, all six go");
    assert_eq!(
        q.read(0, 10).unwrap().len(),
        0,
        "nothing is left to read either"
    );
}

#[test]
fn a_cursor_is_never_written_past_the_head() {
    let (_dir, q) = open_for_tests();
    q.append(&[Record {
        at_ms: 1,
        bytes: b"{}",
    }])
    .unwrap();
    q.set_cursor("c", 10).unwrap();
    assert_eq!(q.cursor("c").unwrap(), Some(1));
}

#[test]
fn a_reopen_changes_the_generation_and_refuses_state_prepared_before_it() {
    let (_dir, q) = open_for_tests();
    q.append(&[Record {
        at_ms: 1,
        bytes: b"{}",
    }])
    .unwrap();
    let before = q.generation();
    let store = q.inner.slot.get().unwrap();
    let e = sled::Error::Io(std::io::Error::other("a disk failing for the test"));
    let _ = q.failed(&store, e);
    drop(store);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while q.store().is_err() {
        assert!(std::time::Instant::now() < deadline, "not opened again");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(q.generation(), before + 1);
    assert_eq!(q.head(), 1, "the numbering goes on");
    let stale = q.write_state_in(before, "x", sled::Batch::default());
    assert!(
        matches!(stale, Err(super::QueueError::Reopened)),
        "{stale:?}"
    );
    q.write_state_in(before + 1, "x", sled::Batch::default())
        .unwrap();
}
