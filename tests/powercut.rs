//! Power cuts at random moments under steady load. The queue lives on a file system
//! that forgets every write not yet synced when the power goes ([`lazyfs`]); clicktap
//! is killed, the power cut, and clicktap started again on what the disk kept:
//! - sled opens every time (a database that does not open fails the test);
//! - every click answered more than the flush window plus [`MARGIN`] before a cut
//!   is in the queue after it and reaches the webhook, then or after a restart (a
//!   click delivered before the cut but gone from the queue counts as lost: the
//!   webhook was faster than the disk, which says nothing of the disk);
//! - duplicates (events delivered again because their cursor had not reached the
//!   disk) are counted and bounded.
//!
//! And a power cut after a graceful stop loses nothing.
//!
//! `cargo test --test powercut` makes [`DEFAULT_CUTS`] cuts; the long run is
//! `CLICKTAP_POWERCUTS=20 cargo test --test powercut -- --nocapture`.

mod common;
mod lazyfs;

use common::load::Load;
use common::receiver::{self, body_json};
use common::{Clicktap, Options, events_cli, upstream, wait_until};
use lazyfs::Disk;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// Cuts in `cargo test`; `CLICKTAP_POWERCUTS` sets another number.
const DEFAULT_CUTS: usize = 3;

/// `queue.flush_interval` in these runs (the default).
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// Beyond the flush window, what a click may take to reach the disk: the capture
/// channel (taken every 10 ms), the flush's own sync through FUSE, and a machine busy
/// with other work (a SIGKILL run saw up to 1.9 s with compilers writing beside it).
const MARGIN: Duration = Duration::from_secs(2);

/// How long most processes serve before their cut, at least: long enough that a
/// queue that is not durable loses clicks far older than the window. One cut in
/// [`SHORT_EVERY`] after the first comes instead within 300 ms of 20 clicks after the
/// restart, while sled has just recovered (and written its snapshot).
const UP_AT_LEAST: Duration = Duration::from_millis(3000);
const SHORT_EVERY: f64 = 4.0;

fn cuts() -> usize {
    std::env::var("CLICKTAP_POWERCUTS")
        .ok()
        .map(|v| v.parse().expect("CLICKTAP_POWERCUTS: a number of cuts"))
        .unwrap_or(DEFAULT_CUTS)
}

/// The paths of the clicks a request to the webhook carried (native format).
fn delivered_paths(body: &serde_json::Value) -> Vec<String> {
    let events = match body.get("events") {
        Some(list) => list.as_array().unwrap().clone(),
        None => vec![body.clone()],
    };
    events
        .iter()
        .map(|e| e["link"]["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn power_cuts_under_load_lose_no_click_older_than_the_flush_window() {
    let cuts = cuts();
    let tmp = tempfile::tempdir().unwrap();
    let mut disk = Disk::new(tmp.path());

    let up = upstream::start();
    let rx = receiver::ok();
    // Nested below the mount, so that the directories sled creates must be synced too.
    let queue = disk.path().join("data/queue");
    let o = Options::default()
        .queue(&format!("path = \"{}\"", queue.display()))
        .queue(&format!(
            "flush_interval = \"{}ms\"",
            FLUSH_INTERVAL.as_millis()
        ))
        .tail(&format!(
            "[[webhooks]]\nid = \"power\"\nurl = \"{}\"\nformat = \"native\"\n",
            rx.url("/")
        ));
    let mut ct = Clicktap::start(tmp.path(), up.addr, &o);
    let load = Load::start(ct.proxy);
    let mut cut_at = Vec::new();
    let (mut pages, mut entries, mut syncs, mut shorts) = (0, 0, 0, 0);
    for i in 0..cuts {
        let up_since = Instant::now();
        load.wait_served(20, "clicks served");
        // The first process always lives long: its clicks are the oldest at every cut.
        let short = i > 0 && rand::random_bool(1.0 / SHORT_EVERY);
        shorts += usize::from(short);
        let until = if short {
            up_since.elapsed() + Duration::from_millis(rand::random_range(0..300))
        } else {
            UP_AT_LEAST + Duration::from_millis(rand::random_range(0..2000))
        };
        std::thread::sleep(until.saturating_sub(up_since.elapsed()));
        cut_at.push(Instant::now());
        ct.kill9();
        let cut = disk.cut();
        pages += cut.pages;
        entries += cut.entries;
        syncs += cut.syncs;
        load.next_process();
        ct = restart(&ct, tmp.path());
    }
    load.wait_served(20, "clicks served after the last restart");
    let served = load.finish();

    // Everything stored is delivered, then a graceful stop.
    ct.wait_settled(0);
    let depth = ct.metric("clicktap_queue_depth", "") as usize;
    let delivered = || -> Vec<String> {
        rx.requests()
            .iter()
            .flat_map(|s| delivered_paths(&body_json(s)))
            .collect()
    };
    wait_until(
        "every stored event delivered",
        Duration::from_secs(60),
        || delivered().into_iter().collect::<HashSet<_>>().len() >= depth,
    );
    assert!(ct.stop().success(), "{}", ct.log_text());
    let stored: HashSet<String> = events_cli(&ct.config, 1_000_000)
        .iter()
        .map(|e| e["link"]["path"].as_str().unwrap().to_string())
        .collect();
    drop(disk);

    let deliveries = delivered();
    let mut times: HashMap<&str, usize> = HashMap::new();
    for p in &deliveries {
        *times.entry(p).or_default() += 1;
    }
    assert!(
        stored.iter().all(|p| times.contains_key(p.as_str())),
        "every stored event reached the webhook"
    );
    let window = FLUSH_INTERVAL + MARGIN;
    // A click delivered before the cut says nothing about the disk: the queue must
    // have kept it too (it keeps events after delivery, until `queue.retention`).
    let mut lost = Vec::new();
    for s in &served {
        let kept = stored.contains(&s.path);
        let delivered = times.contains_key(s.path.as_str());
        if kept && delivered {
            continue;
        }
        let before_cut = s.before_end(&cut_at);
        lost.push(before_cut);
        assert!(
            before_cut <= window,
            "{} was answered {before_cut:?} before a power cut and then {}; the window is \
             {window:?} (flush interval {FLUSH_INTERVAL:?} + margin {MARGIN:?})",
            s.path,
            if kept {
                "never delivered"
            } else {
                "lost from the queue"
            },
        );
    }
    let duplicates = deliveries.len() - times.len();
    eprintln!(
        "power cuts: {cuts} ({shorts} soon after a restart); clicks served {}, stored {}, delivered {}, lost {} (answered at \
         most {:?} before a cut), delivered twice or more {duplicates}; flush interval {FLUSH_INTERVAL:?}; \
         {syncs} syncs, and the cuts threw away {pages} unsynced pages and {entries} unsynced \
         directory entries",
        served.len(),
        stored.len(),
        times.len(),
        lost.len(),
        lost.iter().max().copied().unwrap_or_default(),
    );
    // A cut sends again at most what was delivered since the cursor last reached the
    // disk: a flush interval's worth of requests, `concurrency` (4) at a time.
    assert!(
        duplicates <= cuts * 64,
        "{duplicates} events delivered twice over {cuts} cuts"
    );
    // The cuts did cut: something written was not synced (the pid file at least,
    // which says which process runs and is not synced on purpose).
    assert!(pages > 0, "no cut found a page not yet synced");
}

/// clicktap started again after a cut: sled must open what the disk kept.
fn restart(old: &Clicktap, dir: &Path) -> Clicktap {
    let ct = Clicktap::start_with(old.config.clone(), old.proxy, old.admin, dir);
    assert_eq!(
        ct.metric("clicktap_queue_available", ""),
        1.0,
        "the queue did not open after a power cut:\n{}",
        ct.log_text()
    );
    ct
}

/// A graceful stop flushes everything; a power cut after it loses nothing.
#[test]
fn a_power_cut_after_a_graceful_stop_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut disk = Disk::new(tmp.path());
    let mnt = disk.path().to_path_buf();
    let up = upstream::start();
    let o = Options::default().queue(&format!("path = \"{}\"", mnt.join("queue").display()));
    let mut ct = Clicktap::start(tmp.path(), up.addr, &o);
    for i in 0..300 {
        assert_eq!(ct.click(&format!("/r/stop-{i}"), ""), 302);
    }
    ct.wait_settled(300);
    assert!(ct.stop().success(), "{}", ct.log_text());
    disk.cut();
    assert_eq!(
        events_cli(&ct.config, 1_000).len(),
        300,
        "every click after the cut"
    );
}

/// The file system itself: what is not synced does not survive a cut.
#[test]
fn the_power_cut_file_system_keeps_only_what_was_synced() {
    use std::fs::File;
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let mut disk = Disk::new(tmp.path());
    let mnt = disk.path().to_path_buf();
    std::fs::create_dir(mnt.join("d")).unwrap();
    // Synced file, synced directory: kept, as of its sync.
    let mut kept = File::create(mnt.join("d/kept")).unwrap();
    kept.write_all(b"synced").unwrap();
    kept.sync_data().unwrap();
    kept.write_all(b" and more").unwrap();
    // Named, never synced: an empty file.
    File::create(mnt.join("d/empty"))
        .unwrap()
        .write_all(b"lost")
        .unwrap();
    File::open(mnt.join("d")).unwrap().sync_all().unwrap();
    File::open(&mnt).unwrap().sync_all().unwrap();
    // Synced file, never named in a synced directory: gone with its name.
    let mut unnamed = File::create(mnt.join("unnamed")).unwrap();
    unnamed.write_all(b"data").unwrap();
    unnamed.sync_all().unwrap();
    // Renamed after the directory's sync: under its old name.
    std::fs::rename(mnt.join("d/empty"), mnt.join("d/renamed")).unwrap();
    drop((kept, unnamed));
    assert_eq!(
        std::fs::read(mnt.join("d/kept")).unwrap(),
        b"synced and more"
    );
    let cut = disk.cut();
    assert!(cut.pages > 0 && cut.entries > 0, "{cut:?}");

    // What the mount serves again, and the backing directory holds.
    for root in [&mnt, disk.backing()] {
        let read = |p: &str| std::fs::read(root.join(p)).ok();
        assert_eq!(read("d/kept").as_deref(), Some(&b"synced"[..]));
        assert_eq!(read("unnamed"), None);
        assert_eq!(read("d/empty").as_deref(), Some(&b""[..]));
        assert_eq!(read("d/renamed"), None);
    }
}
