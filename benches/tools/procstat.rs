//! What a server process costs while it is loaded: CPU time and resident memory of
//! the process and its children (nginx's workers are children of its master), or of
//! several such trees added up (nginx and syslog-ng), read from /proc at a fixed
//! interval.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
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
    /// CPU the whole machine spent in the window (100 = one core).
    pub machine_pct: f64,
    /// The CPU seconds of `cpu_s` by thread, threads of one kind added up under their
    /// name less a trailing number (`sled-io-0` .. `sled-io-6` are `sled-io`; nginx's
    /// workers are `nginx`), from each thread's run time in the scheduler (ns).
    pub threads: BTreeMap<String, f64>,
    /// The machine's CPU less this process tree and the `others_exclude` trees (the
    /// origin, wrk): work of processes outside the benchmark, which it competes with.
    pub others_pct: f64,
    /// CPU time the hypervisor took from this machine's virtual CPUs in the window
    /// (/proc/stat's steal, 100 = one core): on a shared VM, the run was slowed by as
    /// much, and the figures of runs with much steal are not comparable with others.
    pub steal_pct: f64,
}

/// Busy, total and stolen jiffies of all CPUs, from the first line of /proc/stat
/// (busy counts steal: a stolen tick was not idle).
fn machine_ticks() -> (u64, u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = f.iter().take(8).sum();
    // idle and iowait are fields 4 and 5.
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    // steal is field 8.
    (total - idle, total, f.get(7).copied().unwrap_or(0))
}

/// Waits until the machine's CPU use over one second falls below `below_pct` (100 =
/// one core), at most `timeout` seconds. Returns (last busy %, seconds waited).
pub fn quiet(below_pct: f64, timeout: f64) -> (f64, f64) {
    let hz = clock_ticks_per_s();
    let start = Instant::now();
    loop {
        let (b0, _, _) = machine_ticks();
        std::thread::sleep(Duration::from_secs(1));
        let (b1, _, _) = machine_ticks();
        let busy = 100.0 * (b1 - b0) as f64 / hz;
        let waited = start.elapsed().as_secs_f64();
        if busy < below_pct || waited >= timeout {
            return (busy, waited);
        }
    }
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

/// Every thread of `pids`: (tid, its kind, nanoseconds it has run), from
/// /proc/<pid>/task/<tid>/schedstat (exact, where utime and stime count scheduler ticks).
fn thread_times(pids: &[u32]) -> Vec<(u32, String, u64)> {
    let mut out = Vec::new();
    for &p in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let ns = std::fs::read_to_string(t.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if let Some(ns) = ns {
                out.push((tid, kind(comm.trim()), ns));
            }
        }
    }
    out
}

/// A thread's kind: its name less a trailing number and separator.
fn kind(comm: &str) -> String {
    let k = comm.trim_end_matches(|c: char| c.is_ascii_digit());
    let k = k.trim_end_matches(['-', '_', ' ', '#']);
    if k.is_empty() { comm } else { k }.to_string()
}

/// Run time by thread over a window: the first and the last reading of each thread seen
/// (a thread born during the window starts from nothing).
#[derive(Default)]
struct Threads {
    seen: HashMap<u32, (String, u64, u64)>,
    started: bool,
}

impl Threads {
    fn read(&mut self, pids: &[u32]) {
        for (tid, kind, ns) in thread_times(pids) {
            let first = if self.started { 0 } else { ns };
            let e = self.seen.entry(tid).or_insert((kind, first, ns));
            e.2 = e.2.max(ns);
        }
        self.started = true;
    }

    fn by_kind(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (kind, first, last) in self.seen.values() {
            *out.entry(kind.clone()).or_insert(0.0) += last.saturating_sub(*first) as f64 / 1e9;
        }
        out
    }
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
    roots: &[u32],
    seconds: f64,
    interval_ms: u64,
    stop_file: Option<&std::path::Path>,
    others_exclude: &[u32],
) -> anyhow::Result<Sample> {
    let hz = clock_ticks_per_s();
    let mut pids: Vec<u32> = roots.iter().flat_map(|&p| tree(p)).collect();
    pids.sort_unstable();
    pids.dedup();
    let mut excluded: Vec<u32> = others_exclude.iter().flat_map(|&p| tree(p)).collect();
    excluded.retain(|p| !pids.contains(p));
    excluded.sort_unstable();
    excluded.dedup();
    for pid in roots {
        anyhow::ensure!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "no process {pid}"
        );
    }
    let start = Instant::now();
    let cpu0: u64 = pids.iter().map(|&p| ticks(p)).sum();
    let mut threads = Threads::default();
    threads.read(&pids);
    let ex0: Vec<u64> = excluded.iter().map(|&p| ticks(p)).collect();
    // The last reading of each excluded process: one that exits before the window
    // ends (pace, whose end closes the window) keeps the CPU it had spent.
    let mut ex_last = ex0.clone();
    let (m0, _, st0) = machine_ticks();
    let window = Duration::from_secs_f64(seconds);
    let (mut max, mut sum, mut n) = (0u64, 0u64, 0u64);
    let mut last;
    loop {
        let rss: u64 = pids.iter().map(|&p| rss_kib(p)).sum();
        max = max.max(rss);
        sum += rss;
        n += 1;
        last = rss;
        for (seen, &p) in ex_last.iter_mut().zip(&excluded) {
            *seen = (*seen).max(ticks(p));
        }
        threads.read(&pids);
        let left = window.saturating_sub(start.elapsed());
        if left.is_zero() || stop_file.is_some_and(|f| f.exists()) {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(interval_ms)));
    }
    let cpu1: u64 = pids.iter().map(|&p| ticks(p)).sum();
    threads.read(&pids);
    for (seen, &p) in ex_last.iter_mut().zip(&excluded) {
        *seen = (*seen).max(ticks(p));
    }
    let ex_s = ex_last
        .iter()
        .zip(&ex0)
        .map(|(b, a)| b.saturating_sub(*a))
        .sum::<u64>() as f64
        / hz;
    let (m1, _, st1) = machine_ticks();
    let elapsed = start.elapsed().as_secs_f64();
    let cpu_s = cpu1.saturating_sub(cpu0) as f64 / hz;
    let machine_s = m1.saturating_sub(m0) as f64 / hz;
    let ours_s = cpu_s + ex_s;
    Ok(Sample {
        cpu_s,
        cpu_pct: 100.0 * cpu_s / elapsed,
        rss_max_kib: max,
        rss_mean_kib: sum / n.max(1),
        rss_end_kib: last,
        seconds: elapsed,
        machine_pct: 100.0 * machine_s / elapsed,
        others_pct: (100.0 * (machine_s - ours_s) / elapsed).max(0.0),
        steal_pct: 100.0 * st1.saturating_sub(st0) as f64 / hz / elapsed,
        threads: threads.by_kind(),
    })
}
