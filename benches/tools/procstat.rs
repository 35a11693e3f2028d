//! What a server process costs while it is loaded: CPU time and resident memory of
//! the process and its children (nginx's workers are children of its master), read
//! from /proc at a fixed interval.

use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Serialize)]
pub struct Sample {
    /// CPU seconds (user + system) spent during the window.
    pub cpu_s: f64,
    /// The same as a share of one core: 100 = one core busy all the time.
    pub cpu_pct: f64,
    pub rss_max_kib: u64,
    pub rss_mean_kib: u64,
    pub rss_end_kib: u64,
    pub seconds: f64,
}

/// The process and every descendant, read through the `children` lists.
fn tree(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                let path = t.path().join("children");
                if let Ok(s) = std::fs::read_to_string(path) {
                    out.extend(s.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
                }
            }
        }
        i += 1;
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// utime + stime in clock ticks; fields after the parenthesised command name.
fn ticks(pid: u32) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some(rest) = s.rfind(')').map(|i| &s[i + 1..]) else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn clock_ticks_per_s() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

pub fn sample(
    pid: u32,
    seconds: f64,
    interval_ms: u64,
    stop_file: Option<&std::path::Path>,
) -> anyhow::Result<Sample> {
    let hz = clock_ticks_per_s();
    let pids = tree(pid);
    anyhow::ensure!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "no process {pid}"
    );
    let start = Instant::now();
    let cpu0: u64 = pids.iter().map(|&p| ticks(p)).sum();
    let window = Duration::from_secs_f64(seconds);
    let (mut max, mut sum, mut n) = (0u64, 0u64, 0u64);
    let mut last;
    loop {
        let rss: u64 = pids.iter().map(|&p| rss_kib(p)).sum();
        max = max.max(rss);
        sum += rss;
        n += 1;
        last = rss;
        let left = window.saturating_sub(start.elapsed());
        if left.is_zero() || stop_file.is_some_and(|f| f.exists()) {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(interval_ms)));
    }
    let cpu1: u64 = pids.iter().map(|&p| ticks(p)).sum();
    let elapsed = start.elapsed().as_secs_f64();
    let cpu_s = cpu1.saturating_sub(cpu0) as f64 / hz;
    Ok(Sample {
        cpu_s,
        cpu_pct: 100.0 * cpu_s / elapsed,
        rss_max_kib: max,
        rss_mean_kib: sum / n.max(1),
        rss_end_kib: last,
        seconds: elapsed,
    })
}
