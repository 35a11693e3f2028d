//! The `clicktap` command: run the sidecar, check a configuration, read events.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use clicktap::config::{self, Config};

/// jemalloc rather than glibc's malloc, chosen here, by the program, not by the library:
/// a click's request buffers are allocated by a proxy thread and freed by an enrichment
/// thread, and sled copies leaves on every insert. glibc serves both through its slow
/// paths and arena locks (a quarter of an enrichment thread's time); with jemalloc,
/// clicktap with capture off went from 0.70-0.73x to 0.88-0.96x of bare Pingora's
/// requests/s (bare Pingora on jemalloc too, `benches/bare_pingora.rs`), at the same memory.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main`: two arenas rather than four per CPU. Every
/// arena keeps its own freed pages for a while; with eight on two cores clicktap held
/// 73-79 MiB at saturation, with two 43-50 MiB at the same throughput. An operator can
/// override it through the `_RJEM_MALLOC_CONF` environment variable.
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 10] = b"narenas:2\0";

#[derive(Parser)]
#[command(
    name = "clicktap",
    version,
    about = "Click webhooks for any URL shortener: a reverse-proxy sidecar"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy, the enrichment and delivery until SIGTERM or SIGINT (SIGHUP
    /// reloads the configuration; SIGQUIT hands the listening sockets to a new process).
    Run {
        #[arg(long, short)]
        config: PathBuf,
        /// Take the listening sockets over from the clicktap running on the same queue,
        /// without refusing a connection (a binary upgrade).
        #[arg(long)]
        upgrade: bool,
    },
    /// Run clicktap with a toy shortener on proxy.upstream and a webhook receiver that
    /// prints what it gets: the whole flow on one machine.
    Demo {
        #[arg(long, short, default_value = "conf/demo.toml")]
        config: PathBuf,
        /// Where the demo receiver listens.
        #[arg(long, default_value = "127.0.0.1:8082")]
        receiver: std::net::SocketAddr,
    },
    /// Validate a configuration file: exit 0, or 2 with every problem listed.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print stored events as JSON lines, newest last.
    Events {
        #[arg(long, short)]
        config: PathBuf,
        /// How many of the newest events.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

/// Exit code for configuration problems, as `check` documents.
const CONFIG_PROBLEM: u8 = 2;

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    config::load(path).map_err(|problems| {
        eprintln!("{problems}");
        eprintln!(
            "{} problem{} found",
            problems.list.len(),
            if problems.list.len() == 1 { "" } else { "s" }
        );
        ExitCode::from(CONFIG_PROBLEM)
    })
}

fn run(config: &std::path::Path, mut opts: clicktap::run::Options) -> ExitCode {
    let cfg = match load(config) {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    opts.logging = Some(std::sync::Arc::new(clicktap::logging::Logging::init(
        &cfg.log,
    )));
    match clicktap::run::run(cfg, opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("clicktap: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match load(&config) {
            Ok(cfg) => {
                println!(
                    "{}: ok ({} webhook{})",
                    config.display(),
                    cfg.webhooks.len(),
                    if cfg.webhooks.len() == 1 { "" } else { "s" }
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Run { config, upgrade } => run(
            &config,
            clicktap::run::Options {
                upgrade,
                ..Default::default()
            },
        ),
        Command::Demo { config, receiver } => run(
            &config,
            clicktap::run::Options {
                demo: Some(clicktap::run::Demo { receiver }),
                ..Default::default()
            },
        ),
        Command::Events { config, limit } => {
            let cfg = match load(&config) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            match clicktap::events::print(&cfg, limit) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("clicktap: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
