//! SIGKILL at random moments under steady load, a restart after each: every redirect
//! served is accounted for. A click is lost only when the kill came within the crash
//! window after the visitor's answer (the clicks still in the capture channel and those
//! stored since the last flush), and every stored event reaches the webhook, a few
//! twice (those delivered whose cursor had not reached the disk), never not at all.

mod common;

use common::load::Load;
use common::receiver::{self, native_ids};
use common::{Clicktap, Options, events_cli, upstream, wait_until};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Kills per run.
const KILLS: usize = 10;

/// What a run found.
struct Run {
    served: usize,
    stored: usize,
    /// For each served click not stored: how long before the next kill it was answered.
    lost_before_kill: Vec<Duration>,
    delivered_unique: usize,
    duplicates: usize,
}

/// One run at a time: two would share the two cores and each measure the other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run(flush_interval: &str) -> Run {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .queue(&format!("flush_interval = \"{flush_interval}\""))
        .tail(&format!(
            "[[webhooks]]\nid = \"crash\"\nurl = \"{}\"\nformat = \"native\"\n",
            rx.url("/")
        ));
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    let load = Load::start(ct.proxy);
    let mut kills = Vec::new();
    for _ in 0..KILLS {
        // At least a few clicks served since the restart, then a random moment.
        load.wait_served(20, "clicks served");
        std::thread::sleep(Duration::from_millis(rand::random_range(0..400)));
        kills.push(Instant::now());
        ct.kill9();
        load.next_process();
        ct = Clicktap::start_with(ct.config.clone(), ct.proxy, ct.admin, dir.path());
    }
    load.wait_served(20, "clicks served after the last restart");
    let served = load.finish();

    // Everything stored is delivered, then a graceful stop.
    ct.wait_settled(0);
    let head = ct.metric("clicktap_queue_depth", "") as usize;
    wait_until(
        "every stored event delivered",
        Duration::from_secs(60),
        || {
            let ids: HashSet<String> = rx.requests().iter().flat_map(native_ids).collect();
            ids.len() >= head
        },
    );
    assert!(ct.stop().success(), "{}", ct.log_text());

    let events = events_cli(&ct.config, 1_000_000);
    let stored: HashMap<String, String> = events
        .iter()
        .map(|e| {
            (
                e["link"]["path"].as_str().unwrap().to_string(),
                e["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(stored.len(), events.len(), "one event per click");
    let ids: HashSet<&String> = stored.values().collect();
    let deliveries: Vec<String> = rx.requests().iter().flat_map(native_ids).collect();
    let delivered: HashSet<&String> = deliveries.iter().collect();
    assert!(
        ids.iter().all(|id| delivered.contains(id)),
        "every stored event reached the webhook"
    );
    // The loader sends one click at a time, so clicks reach the channel in the order
    // they were answered: what a kill loses is the newest clicks of that process, never
    // one older than a click that survived it.
    let mut newest_stored: HashMap<usize, usize> = HashMap::new();
    for (i, s) in served.iter().enumerate() {
        if let Some(p) = s.process
            && stored.contains_key(&s.path)
        {
            newest_stored.insert(p, i);
        }
    }
    for (i, s) in served.iter().enumerate() {
        if let Some(p) = s.process
            && !stored.contains_key(&s.path)
            && let Some(&after) = newest_stored.get(&p)
        {
            assert!(
                i > after,
                "{} was lost although {} of the same process, answered later, survived",
                s.path,
                served[after].path
            );
        }
    }
    let lost_before_kill = served
        .iter()
        .filter(|s| !stored.contains_key(&s.path))
        .map(|s| s.before_end(&kills))
        .collect();
    Run {
        served: served.len(),
        stored: stored.len(),
        lost_before_kill,
        delivered_unique: delivered.len(),
        duplicates: deliveries.len() - delivered.len(),
    }
}

/// `window` is a sanity bound on how long before a kill a lost click was answered: what
/// sat in the channel and, with a flush interval, what was stored since the last flush.
/// A loaded machine stretches it (a flush waits for a busy disk while clicks gather in
/// the channel: up to 1.9 s was seen here with two CPU hogs and compilers writing), so
/// it is generous; the order check in [`run`] is the exact one.
fn check(r: &Run, window: Duration) {
    let worst = r.lost_before_kill.iter().max().copied().unwrap_or_default();
    eprintln!(
        "served {}, stored {}, lost {} (answered at most {:?} before a kill), delivered {} once, {} twice",
        r.served,
        r.stored,
        r.lost_before_kill.len(),
        worst,
        r.delivered_unique,
        r.duplicates
    );
    assert!(
        worst <= window,
        "a click answered {worst:?} before a kill was lost; the crash window is {window:?}"
    );
    // A kill sends again at most what was delivered since the cursor last reached the
    // disk: a flush interval's worth of requests, `concurrency` (4) at a time.
    assert!(
        r.duplicates <= KILLS * 64,
        "{} events delivered twice over {KILLS} kills",
        r.duplicates
    );
}

/// The crash window docs/reliability.md states for `flush_interval = "50ms"`: the clicks in the
/// channel (taken every `enrich.poll_interval`, 10 ms) and those stored since the last
/// flush (50 ms), with room for a loaded machine's scheduling.
#[test]
fn sigkills_under_load_lose_only_the_crash_window_and_deliver_every_stored_event() {
    let r = run("50ms");
    check(&r, Duration::from_secs(5));
}

/// With a flush after every batch, what remains is the channel's share.
#[test]
fn with_a_flush_per_batch_a_sigkill_loses_only_what_sat_in_the_channel() {
    let r = run("0s");
    check(&r, Duration::from_secs(5));
}
