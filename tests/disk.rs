//! The queue's file system full at runtime, on a real small tmpfs the test mounts: the
//! proxy keeps serving, what cannot be stored is counted, and capture resumes by itself
//! once there is space again.
//!
//! A file system cannot be remounted read-only while clicktap holds its files open for
//! writing (the kernel answers EBUSY); it turns read-only under a writer only after
//! I/O errors, which sled meets as it meets a full disk: the same failure and the same
//! reopen that the first test goes through.
//!
//! Mounting needs root (or CAP_SYS_ADMIN), as CI runs; without it these tests fail and
//! say so rather than pass.

mod common;

use common::{Clicktap, Options, upstream, wait_until};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A tmpfs of `mib` MiB mounted at `dir`, unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
    sudo: bool,
}

/// `mount` or `umount` with `args`, as root: directly, or through `sudo -n`.
fn as_root(sudo: bool, program: &str, args: &[&str], dir: &Path) -> std::process::Output {
    let mut c = if sudo {
        let mut c = Command::new("sudo");
        c.args(["-n", program]);
        c
    } else {
        Command::new(program)
    };
    c.args(args).arg(dir).output().expect("run mount")
}

impl SmallDisk {
    fn mount(dir: &Path, mib: u32) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let size = format!("size={mib}m,mode=1777");
        let args = ["-t", "tmpfs", "-o", &size, "tmpfs"];
        let mut out = as_root(false, "mount", &args, dir);
        let mut sudo = false;
        if !out.status.success() {
            sudo = true;
            out = as_root(true, "mount", &args, dir);
        }
        assert!(
            out.status.success(),
            "these tests mount a small tmpfs for the queue and need root, CAP_SYS_ADMIN or \
             passwordless sudo, as CI has. mount said: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk {
            dir: dir.to_path_buf(),
            sudo,
        }
    }

    /// Writes a file until the disk is full, or until `leave` bytes are left free.
    fn fill(&self, leave: u64) -> PathBuf {
        let path = self.dir.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        loop {
            if free(&self.dir) <= leave + chunk.len() as u64 {
                if leave == 0 {
                    // Down to the last bytes.
                    while f.write_all(&chunk[..4096]).and_then(|_| f.flush()).is_ok() {}
                }
                break;
            }
            if f.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = as_root(self.sudo, "umount", &["-l"], &self.dir);
    }
}

fn free(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

fn clicks(ct: &Clicktap, prefix: &str, n: usize) {
    for i in 0..n {
        assert_eq!(
            ct.click(&format!("/r/{prefix}-{i}"), ""),
            302,
            "the visitor is served whatever the disk does"
        );
    }
}

/// What was captured, stored and counted as dropped. Every captured click is stored
/// or dropped; a stored one may be dropped later too (expired, evicted, or lost with a
/// failed database before it reached the disk), so stored + dropped >= captured.
fn accounted(ct: &Clicktap) -> (f64, f64, f64) {
    let m = ct.admin_get("/metrics");
    let get = |name: &str, labels: &str| common::clicktap::metric_in(&m, name, labels);
    (
        get("clicktap_capture_clicks_total", ""),
        get("clicktap_queue_appended_total", ""),
        get("clicktap_queue_dropped_total", ""),
    )
}

fn start_on(disk: &SmallDisk, dir: &Path, min_free: &str) -> (Clicktap, common::TestServer) {
    start_with(disk, dir, min_free, Options::default())
}

/// clicktap with the queue on `disk`, a floor of 8 MiB and a webhook `down` whose
/// receiver answers 500, retried up to 100 times on `schedule`.
fn start_failing(
    disk: &SmallDisk,
    dir: &Path,
    schedule: &str,
) -> (Clicktap, common::TestServer, common::TestServer) {
    let rx = common::receiver::always(500);
    let hook = format!(
        "[[webhooks]]\nid = \"down\"\nurl = \"{}\"\nformat = \"native\"\n\
         [webhooks.retry]\nmax_attempts = 100\n{schedule}\n",
        rx.url("/")
    );
    let (ct, up) = start_with(disk, dir, "8MiB", Options::default().tail(&hook));
    (ct, up, rx)
}

fn start_with(
    disk: &SmallDisk,
    dir: &Path,
    min_free: &str,
    o: Options,
) -> (Clicktap, common::TestServer) {
    let up = upstream::start();
    let (config, proxy, admin) = common::clicktap::write_config(
        dir,
        up.addr,
        &o.queue(&format!("min_free_bytes = \"{min_free}\"")),
    );
    // The queue on the small disk.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("path = \"{}\"", dir.join("queue").display()),
        &format!("path = \"{}\"", disk.dir.join("queue").display()),
    );
    std::fs::write(&config, text).unwrap();
    (Clicktap::start_with(config, proxy, admin, dir), up)
}

#[test]
fn a_full_disk_is_survived_and_capture_resumes_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("small"), 24);
    // No free-space floor: sled itself runs into the full disk.
    let (mut ct, _up) = start_on(&disk, dir.path(), "0");
    clicks(&ct, "before", 50);
    ct.wait_settled(50);
    assert_eq!(ct.metric("clicktap_queue_appended_total", ""), 50.0);

    let filler = disk.fill(0);
    clicks(&ct, "full", 300);
    wait_until("the failure noticed", Duration::from_secs(20), || {
        ct.metric("clicktap_queue_dropped_total", "") > 0.0
    });
    ct.wait_settled(350);

    std::fs::remove_file(&filler).unwrap();
    let stored_before = ct.metric("clicktap_queue_appended_total", "");
    // Capture resumes by itself: clicks are stored again within a few seconds.
    let mut i = 0;
    wait_until("capture resumed", Duration::from_secs(30), || {
        clicks(&ct, &format!("after-{i}"), 10);
        i += 1;
        ct.wait_settled(350 + 10 * i);
        ct.metric("clicktap_queue_appended_total", "") >= stored_before + 10.0
    });
    assert_eq!(ct.metric("clicktap_queue_available", ""), 1.0);
    let (captured, stored, dropped) = accounted(&ct);
    assert!(
        stored + dropped >= captured,
        "every click stored or counted"
    );
    assert!(ct.log_text().contains("opened again"), "{}", ct.log_text());

    // The stop's final flush works, and what was stored after the failure is there.
    let status = ct.stop();
    assert!(status.success(), "{status}:\n{}", ct.log_text());
    let events = common::events_cli(&ct.config, 100_000);
    assert!(
        events
            .iter()
            .any(|e| e["link"]["path"].as_str().unwrap().starts_with("/r/after-")),
        "events captured after the disk came back are stored"
    );
}

#[test]
fn below_the_free_space_floor_appends_are_refused_and_counted_until_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("small"), 32);
    let (ct, _up) = start_on(&disk, dir.path(), "8MiB");
    clicks(&ct, "before", 20);
    ct.wait_settled(20);

    let filler = disk.fill(4 << 20);
    clicks(&ct, "low", 100);
    ct.wait_settled(120);
    assert_eq!(
        ct.metric("clicktap_queue_dropped_total", r#"reason="no_space""#),
        100.0
    );
    assert_eq!(
        ct.metric("clicktap_queue_available", ""),
        1.0,
        "sled never met the full disk"
    );
    assert!(
        ct.log_text().contains("min_free_bytes"),
        "{}",
        ct.log_text()
    );

    std::fs::remove_file(&filler).unwrap();
    clicks(&ct, "back", 20);
    ct.wait_settled(140);
    assert_eq!(ct.metric("clicktap_queue_appended_total", ""), 40.0);
    let (captured, stored, dropped) = accounted(&ct);
    assert_eq!(captured, stored + dropped);
}

/// The link paths a receiver was sent, in the native format.
fn paths_seen(rx: &common::TestServer) -> Vec<String> {
    let mut out = Vec::new();
    for s in rx.requests() {
        let v = common::receiver::body_json(&s);
        let events = match v.get("events") {
            Some(list) => list.as_array().unwrap().clone(),
            None => vec![v],
        };
        for e in events {
            out.push(e["link"]["path"].as_str().unwrap_or("").to_string());
        }
    }
    out
}

#[test]
fn after_the_queue_is_opened_again_new_clicks_reach_every_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("small"), 24);
    // A receiver that holds its answers while `hold` is set: a delivery in flight
    // across the failure and the reopen (the 300 clicks of the failing window in one
    // request).
    let hold = Arc::new(AtomicBool::new(false));
    let h = hold.clone();
    let rx = common::receiver::scripted(move |_, _| {
        let h = h.clone();
        async move {
            for _ in 0..2400 {
                if !h.load(Ordering::SeqCst) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            common::reply(200, &[], "ok")
        }
    });
    let hook = format!(
        "[[webhooks]]\nid = \"main\"\nurl = \"{}\"\nformat = \"native\"\ntimeout = \"150s\"\n\
         [webhooks.batch]\nmax_events = 300\nmax_wait = \"5s\"\n",
        rx.url("/")
    );
    // No free-space floor: sled itself runs into the full disk and is opened again.
    // A flush every 60 s, and no stats rollup (whose writes would put the clicks on
    // disk at once): the clicks of the failing window never reach the disk, while the
    // webhook has read them. The steps from one flush to the full disk take a few
    // seconds, and up to half a minute on a machine busy with the whole suite: the
    // interval leaves them twice that.
    let o = Options::default()
        .queue(r#"flush_interval = "60s""#)
        .tail(&hook)
        .tail("[stats]\nenabled = false\n");
    let (mut ct, _up) = start_with(&disk, dir.path(), "0", o);
    clicks(&ct, "before", 50);
    ct.wait_settled(50);
    wait_until(
        "the first clicks delivered",
        Duration::from_secs(20),
        || paths_seen(&rx).len() >= 50,
    );
    // Their attempts written to the delivery log: nothing more is written to sled until
    // the next flush, so the clicks that follow stay in its memory.
    ct.wait_deliveries("main", 50);
    // Just after a flush, 300 clicks are stored in sled's memory and sent to the
    // webhook in one request, which the receiver holds; then the disk fills up, and the
    // next flush fails: the 300 never reach the disk.
    let flushes = ct.metric("clicktap_queue_flushes_total", "");
    wait_until("a flush", Duration::from_secs(75), || {
        ct.metric("clicktap_queue_flushes_total", "") > flushes
    });
    hold.store(true, Ordering::SeqCst);
    clicks(&ct, "lost", 300);
    ct.wait_settled(350);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while paths_seen(&rx)
        .iter()
        .filter(|p| p.starts_with("/r/lost-"))
        .count()
        < 300
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the lost clicks in flight: {} seen\n{}",
            paths_seen(&rx).len(),
            ct.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let filler = disk.fill(0);
    // The next flush, at most one interval after the last, finds the disk full.
    let deadline = std::time::Instant::now() + Duration::from_secs(75);
    while !ct.log_text().contains("queue storage failed") {
        assert!(
            std::time::Instant::now() < deadline,
            "the failure not noticed:\n{}\n{}",
            ct.log_text(),
            ct.admin_get("/metrics")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_file(&filler).unwrap();
    let stored_before = ct.metric("clicktap_queue_appended_total", "");
    let mut i = 0;
    wait_until("capture resumed", Duration::from_secs(30), || {
        clicks(&ct, &format!("after-{i}"), 10);
        i += 1;
        ct.wait_settled(350 + 10 * i);
        ct.metric("clicktap_queue_appended_total", "") >= stored_before + 10.0
    });
    assert!(ct.log_text().contains("opened again"), "{}", ct.log_text());
    // The deliveries held since before the failure end now, and settle.
    hold.store(false, Ordering::SeqCst);

    // Every click stored after the reopen has a number of its own: the webhook, whose
    // cursor the held request moved to past the lost clicks, reaches every one of them.
    clicks(&ct, "new", 300);
    ct.wait_settled(650 + 10 * i);
    wait_until("the new clicks delivered", Duration::from_secs(60), || {
        paths_seen(&rx)
            .iter()
            .filter(|p| p.starts_with("/r/new-"))
            .collect::<std::collections::HashSet<_>>()
            .len()
            == 300
    });
    let status = ct.stop();
    assert!(status.success(), "{status}:\n{}", ct.log_text());
}

#[test]
fn below_the_free_space_floor_a_failing_webhook_takes_no_new_events() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("small"), 32);
    let (ct, _up, _rx) = start_failing(&disk, dir.path(), "schedule = [\"1h\"]");
    clicks(&ct, "before", 20);
    ct.wait_settled(20);
    wait_until("20 retries recorded", Duration::from_secs(20), || {
        ct.metric("clicktap_delivery_retried_total", "") == 20.0
    });
    assert_eq!(ct.metric("clicktap_delivery_held_total", ""), 0.0);

    // Below the floor, retries and dead letters stop growing: no new event is taken.
    let filler = disk.fill(4 << 20);
    wait_until("new events held back", Duration::from_secs(20), || {
        ct.metric("clicktap_delivery_held_total", r#"webhook="down""#) == 1.0
    });
    assert!(
        ct.log_text().contains("at their bound"),
        "{}",
        ct.log_text()
    );

    std::fs::remove_file(&filler).unwrap();
    wait_until("new events taken again", Duration::from_secs(20), || {
        ct.log_text().contains("new events taken again")
    });
}

/// Below the floor the delivery log, a history for people, stores no new attempts:
/// they are made and settled as ever, and counted as skipped by the log.
#[test]
fn below_the_free_space_floor_the_delivery_log_stores_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("small"), 32);
    let (ct, _up, _rx) = start_failing(&disk, dir.path(), "schedule = [\"300ms\"]\njitter = 0.0");
    clicks(&ct, "before", 5);
    ct.wait_settled(5);
    wait_until(
        "attempts in the delivery log",
        Duration::from_secs(20),
        || ct.metric("clicktap_delivery_log_bytes", "") > 0.0,
    );

    let filler = disk.fill(4 << 20);
    wait_until("the log skipping values", Duration::from_secs(20), || {
        ct.metric("clicktap_delivery_log_skipped_total", "") >= 1.0
    });
    let bytes = ct.metric("clicktap_delivery_log_bytes", "");
    let retried = ct.metric("clicktap_delivery_retried_total", "");
    wait_until(
        "more attempts below the floor",
        Duration::from_secs(30),
        || {
            ct.metric("clicktap_delivery_retried_total", "") >= retried + 20.0
                && ct.metric("clicktap_delivery_log_skipped_total", "") >= 3.0
        },
    );
    assert!(
        ct.metric("clicktap_delivery_log_bytes", "") <= bytes,
        "the delivery log grew below the floor: {} > {bytes}",
        ct.metric("clicktap_delivery_log_bytes", "")
    );
    assert!(
        ct.log_text()
            .contains("the delivery log stores no new attempts")
    );

    std::fs::remove_file(&filler).unwrap();
    wait_until("the log storing again", Duration::from_secs(20), || {
        ct.metric("clicktap_delivery_log_bytes", "") > bytes
    });
}
