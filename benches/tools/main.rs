//! `bench-tools`: the small programs `benches/run.sh` needs besides wrk and nginx.
//!
//! The script orchestrates (processes, ports, rounds); everything that needs precise
//! clocks, HTTP or arithmetic lives here, so that the script stays plain bash with no
//! dependency beyond wrk, nginx and coreutils:
//! - `ports`: free loopback ports;
//! - `origin`: the built-in redirect server and webhook sink, used where nginx is not;
//! - `sample`: CPU and resident memory of a process tree over a window (/proc), and
//!   the CPU other processes took meanwhile; `quiet`: wait for an idle machine;
//! - `metrics`, `settle`, `drain`: read clicktap's `/metrics`;
//! - `delivered`: wait until a contender has delivered every click it served;
//! - `pace`: clicks at a fixed rate (open loop), timing their redirects and, with a
//!   receiver, their webhooks;
//! - `slow`: slow visitors holding a proxy's connections (`benches/slow_clients.sh`);
//! - `report`: medians, ratios, the markdown table and the JSON file.

mod delivered;
mod metrics;
mod origin;
mod pace;
mod procstat;
mod report;
mod report_fleet;
mod report_paced;
mod slow;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print `count` loopback ports that are free now, one per line, chosen below the
    /// ephemeral range so that no client connection takes one before it is bound.
    Ports { count: usize },
    /// Redirect server: 302 for every path, 204 for `/hook*` (the webhook sink).
    Origin {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Append a line to this file for every `/hook*` request (the bench counts them).
        #[arg(long)]
        hook_log: Option<PathBuf>,
    },
    /// CPU and resident memory of `pid` and its children for `seconds`, as JSON;
    /// several pids (comma-separated) add up, for a contender of several programs.
    Sample {
        #[arg(long, value_delimiter = ',', required = true)]
        pid: Vec<u32>,
        #[arg(long)]
        seconds: f64,
        #[arg(long, default_value_t = 200)]
        interval_ms: u64,
        /// Stop early once this file exists (for windows of unknown length).
        #[arg(long)]
        stop_file: Option<PathBuf>,
        /// Processes of the benchmark itself (origin, wrk), left out of `others_pct`.
        #[arg(long, value_delimiter = ',')]
        exclude: Vec<u32>,
    },
    /// Waits until the machine is nearly idle (other work on a shared machine skews
    /// every figure); prints the CPU use seen and the time waited.
    Quiet {
        /// CPU use to wait for, 100 = one core.
        #[arg(long, default_value_t = 15.0)]
        below: f64,
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
    },
    /// clicktap's counters, summed over labels, as one JSON object.
    Metrics { url: String },
    /// Waits until every captured click is enriched and stored, then prints `metrics`.
    Settle {
        url: String,
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
    },
    /// Waits until `expect` events are delivered; prints the delivery rate as JSON.
    Drain {
        url: String,
        #[arg(long)]
        expect: u64,
        #[arg(long, default_value_t = 120.0)]
        timeout: f64,
        /// The counter that counts the drained events: `name` or `name{key="value"}`.
        #[arg(long, default_value = "clicktap_delivery_delivered_total")]
        counter: String,
    },
    /// Waits until every click a contender served was delivered as a webhook; prints
    /// the counts and the time it took as JSON.
    Delivered(delivered::Args),
    /// Sends clicks at `rate` per second and times their redirects and, unless
    /// `--no-receiver`, their arrival as webhooks.
    Pace(pace::Args),
    /// Slow visitors (trickled heads or bodies, slow readers) holding a proxy's
    /// connections; prints what the proxy did to them as JSON.
    Slow(slow::Args),
    /// Medians and ratios of a run's raw records: markdown on stdout, JSON to `out`.
    Report {
        #[arg(long)]
        raw: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// A JSON object describing the machine and the settings, copied into `out`.
        #[arg(long)]
        meta: PathBuf,
    },
}

/// Ports in 20000..32000 (below Linux's default ephemeral range, 32768..60999) that
/// can be bound now; held together so that no two are the same.
fn free_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .subsec_nanos() as usize
        ^ std::process::id() as usize;
    let mut held = Vec::new();
    for i in 0..12_000usize {
        if held.len() == count {
            break;
        }
        let port = 20_000 + ((seed + i * 7919) % 12_000) as u16;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    anyhow::ensure!(held.len() == count, "not enough free ports");
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ports { count } => {
            for p in free_ports(count)? {
                println!("{p}");
            }
        }
        Command::Origin {
            listen,
            threads,
            hook_log,
        } => origin::run(listen, threads, hook_log.as_deref())?,
        Command::Sample {
            pid,
            seconds,
            interval_ms,
            stop_file,
            exclude,
        } => {
            let s = procstat::sample(&pid, seconds, interval_ms, stop_file.as_deref(), &exclude)?;
            println!("{}", serde_json::to_string(&s)?);
        }
        Command::Quiet { below, timeout } => {
            let (busy, waited) = procstat::quiet(below, timeout);
            println!(
                "{}",
                serde_json::json!({"busy_pct": busy, "waited_s": waited})
            );
        }
        Command::Metrics { url } => println!("{}", metrics::fetch(&url)?),
        Command::Settle { url, timeout } => println!("{}", metrics::settle(&url, timeout)?),
        Command::Drain {
            url,
            expect,
            timeout,
            counter,
        } => println!("{}", metrics::drain(&url, expect, timeout, &counter)?),
        Command::Delivered(args) => println!("{}", delivered::run(args)?),
        Command::Pace(args) => println!("{}", pace::run(args)?),
        Command::Slow(args) => println!("{}", slow::run(args)?),
        Command::Report { raw, out, meta } => report::run(&raw, &out, &meta)?,
    }
    Ok(())
}
