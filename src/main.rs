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
/// 73-79 MiB at saturation, with two 43-50 MiB at the same throughput. Thread caches
/// hold blocks up to 64 KiB (32 KiB by default): Pingora allocates a 64 KiB buffer for
/// every answer body it reads, which otherwise comes from the arena's extents (a lock,
/// a split and a merge per request): 0.3-0.8 µs less CPU per request in three of three
/// alternating runs. An operator can override these through the `_RJEM_MALLOC_CONF`
/// environment variable.
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 27] = b"narenas:2,tcache_max:65536\0";

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
    /// Deliver the webhooks from the JetStream stream that sidecars' [[sinks]] publish
    /// into, sharing the work with every other relay, until SIGTERM or SIGINT.
    Relay {
        #[arg(long, short)]
        config: PathBuf,
        /// Instead of running: send each dead letter of this webhook once more; those
        /// delivered are removed from the dead-letter stream. Exit 1 when any failed.
        #[arg(long, value_name = "WEBHOOK", conflicts_with = "reactivate")]
        replay_dead: Option<String>,
        /// Instead of running: take a webhook disabled by a 410 back into delivery, for
        /// every relay (within 5 s).
        #[arg(long, value_name = "WEBHOOK")]
        reactivate: Option<String>,
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
    /// Print stored events as JSON lines, newest last, each with its `seq` and the
    /// message ids it is sent with.
    Events {
        #[arg(long, short)]
        config: PathBuf,
        /// How many of the newest events (that match the filters).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Captured at or after (RFC 3339 or Unix ms).
        #[arg(long)]
        since: Option<String>,
        /// Captured at or before (RFC 3339 or Unix ms).
        #[arg(long)]
        until: Option<String>,
        /// The link, as host/path or /path; a trailing * matches what starts so.
        #[arg(long)]
        link: Option<String>,
        /// The event type: link.clicked, link.scanned, page.viewed, page.link_clicked.
        #[arg(long = "type")]
        event_type: Option<String>,
        /// The kind: human, bot, preview, head, prefetch.
        #[arg(long)]
        kind: Option<String>,
        /// One line per event for people, instead of JSON lines.
        #[arg(long, conflicts_with = "json")]
        table: bool,
        /// JSON lines (the default; for scripts, as every listing takes it).
        #[arg(long)]
        json: bool,
    },
    /// What the running clicktap is: version, uptime, configuration, queue, webhooks.
    Status {
        #[arg(long, short)]
        config: PathBuf,
        /// The admin API's JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Ask the running clicktap to read its configuration file again (as SIGHUP does);
    /// exit 2 with every problem when it refuses the file.
    Reload {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The running clicktap's webhooks.
    Webhooks {
        #[command(subcommand)]
        command: Webhooks,
    },
}

#[derive(clap::Args)]
struct On {
    /// The configuration file: the admin listener's address and token.
    #[arg(long, short)]
    config: PathBuf,
    /// The admin API's JSON, for scripts.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Webhooks {
    /// Each webhook: format, state, lag, retries, dead letters.
    List {
        #[command(flatten)]
        on: On,
    },
    /// Send a synthetic event of kind "test" now and show the receiver's answer; exit 2
    /// when it was not delivered.
    Test {
        id: String,
        #[command(flatten)]
        on: On,
    },
    /// Send again the events captured in a time range (RFC 3339 or Unix ms), with their
    /// ids; shows them going out unless --no-wait.
    Replay {
        id: String,
        #[arg(long)]
        since: String,
        #[arg(long)]
        until: String,
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        on: On,
    },
    /// Make an ed25519 key pair for `v1a` signatures: the `secret_key` line for the
    /// webhook's table, and the public key for its receiver. Needs no running clicktap.
    Keygen,
    /// A disabled webhook back to healthy.
    Reactivate {
        id: String,
        #[command(flatten)]
        on: On,
    },
    /// The delivery log, newest first: each attempt's answer and what was sent.
    Deliveries {
        id: String,
        /// success, failure, backoff, gone or a status code.
        #[arg(long)]
        status: Option<String>,
        /// Only the attempts of the event with this sequence number.
        #[arg(long)]
        seq: Option<u64>,
        /// Only the attempts of this message id.
        #[arg(long)]
        message_id: Option<String>,
        /// Only test sends.
        #[arg(long, conflicts_with = "replay")]
        test: bool,
        /// Only replays (replays, resends, and their retries).
        #[arg(long)]
        replay: bool,
        #[arg(long, default_value_t = 50)]
        limit: u64,
        #[command(flatten)]
        on: On,
    },
    /// Messages not delivered: failed (waiting for their next attempt) and dead
    /// letters, oldest first, a page at a time.
    Messages {
        id: String,
        #[command(flatten)]
        filter: MessageFilterArgs,
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// Where the page starts: the cursor the previous page ended with.
        #[arg(long, conflicts_with = "all")]
        cursor: Option<String>,
        /// Every page.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        on: On,
    },
    /// Send failed or dead messages again now, as replays of their messages: the one at
    /// --seq, or every one the filters select.
    Resend {
        id: String,
        #[arg(long)]
        seq: Option<u64>,
        #[command(flatten)]
        filter: MessageFilterArgs,
        #[command(flatten)]
        on: On,
    },
    /// Dead letters: listed (all, or the one at --seq), or replayed or purged (all, or
    /// the one at --seq).
    DeadLetters {
        id: String,
        #[arg(long, conflicts_with = "purge")]
        replay: bool,
        #[arg(long)]
        purge: bool,
        #[arg(long)]
        seq: Option<u64>,
        #[command(flatten)]
        on: On,
    },
}

#[derive(clap::Args)]
struct MessageFilterArgs {
    /// failed (waiting for their next attempt), dead, or all (the default).
    #[arg(long)]
    status: Option<String>,
    /// Captured at or after (RFC 3339 or Unix ms).
    #[arg(long)]
    since: Option<String>,
    /// Captured at or before.
    #[arg(long)]
    until: Option<String>,
    /// The event type: link.clicked, link.scanned, page.viewed, page.link_clicked.
    #[arg(long = "type")]
    event_type: Option<String>,
    #[arg(long)]
    message_id: Option<String>,
}

impl MessageFilterArgs {
    fn filter(self) -> clicktap::cli::MessageFilter {
        clicktap::cli::MessageFilter {
            status: self.status,
            since: self.since,
            until: self.until,
            event_type: self.event_type,
            message_id: self.message_id,
        }
    }
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

/// A configuration problem found after validation (the file is valid, but not for
/// this command).
fn wrong_role(config: &std::path::Path, message: &str) -> ExitCode {
    eprintln!("{}: {message}", config.display());
    eprintln!("1 problem found");
    ExitCode::from(CONFIG_PROBLEM)
}

fn run(config: &std::path::Path, mut opts: clicktap::run::Options) -> ExitCode {
    let cfg = match load(config) {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    if cfg.relay.is_some() {
        return wrong_role(
            config,
            "relay: is set: this file configures a relay; run it with `clicktap relay --config FILE`",
        );
    }
    opts.exe = std::env::current_exe().unwrap_or_else(|_| "clicktap".into());
    opts.args = std::env::args().skip(1).collect();
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
        Command::Relay {
            config,
            replay_dead,
            reactivate,
        } => relay(&config, replay_dead.as_deref(), reactivate.as_deref()),
        Command::Demo { config, receiver } => run(
            &config,
            clicktap::run::Options {
                demo: Some(clicktap::run::Demo { receiver }),
                ..Default::default()
            },
        ),
        Command::Status { config, json } => api(&config, |c| clicktap::cli::status(c, json)),
        Command::Reload { config, json } => api(&config, |c| clicktap::cli::reload(c, json)),
        Command::Webhooks { command } => webhooks(command),
        Command::Events {
            config,
            limit,
            since,
            until,
            link,
            event_type,
            kind,
            table,
            json: _,
        } => {
            let cfg = match load(&config) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            let ask = clicktap::events::Ask {
                limit,
                since,
                until,
                link,
                event_type,
                kind,
                table,
            };
            match clicktap::events::print(&cfg, &ask) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if clicktap::cli::reader_gone(&e) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("clicktap: {e:#}");
                    if e.is::<clicktap::cli::Refusal>() {
                        ExitCode::from(CONFIG_PROBLEM)
                    } else {
                        ExitCode::FAILURE
                    }
                }
            }
        }
    }
}

fn relay(
    config: &std::path::Path,
    replay_dead: Option<&str>,
    reactivate: Option<&str>,
) -> ExitCode {
    let cfg = match load(config) {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    if cfg.relay.is_none() {
        return wrong_role(
            config,
            "relay: is missing: `clicktap relay` needs [relay] with urls and stream",
        );
    }
    if let Some(id) = replay_dead {
        return replay_dead_letters(config, &cfg, id);
    }
    if let Some(id) = reactivate {
        if !cfg.webhooks.iter().any(|w| w.id == id) {
            return wrong_role(config, &format!("webhooks: has no webhook {id:?}"));
        }
        return match clicktap::relay::reactivate(&cfg, id) {
            Ok(true) => {
                println!("{id}: reactivated; relays take its messages again within 5s");
                ExitCode::SUCCESS
            }
            Ok(false) => {
                println!("{id}: was not disabled");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("clicktap: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let _logging = clicktap::logging::Logging::init(&cfg.log);
    match clicktap::relay::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("clicktap: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn replay_dead_letters(config: &std::path::Path, cfg: &Config, id: &str) -> ExitCode {
    let Some(webhook) = cfg.webhooks.iter().find(|w| w.id == id) else {
        return wrong_role(config, &format!("webhooks: has no webhook {id:?}"));
    };
    match clicktap::relay::replay::replay(cfg, webhook) {
        Ok(r) => {
            for (seq, why) in &r.failed {
                println!("dead letter {seq}: failed again: {why}");
            }
            println!(
                "{id}: {} delivered (removed from the dead letters), {} failed again (kept)",
                r.delivered,
                r.failed.len()
            );
            if r.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("clicktap: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command against the running clicktap named by `config`.
fn api(
    config: &std::path::Path,
    f: impl FnOnce(&clicktap::cli::Client) -> anyhow::Result<clicktap::cli::Done>,
) -> ExitCode {
    // Only the admin table: a file with problems elsewhere still reaches the running
    // clicktap, which reports them on a reload.
    let admin = match config::load_admin(config) {
        Ok(a) => a,
        Err(problems) => {
            eprintln!("{problems}");
            return ExitCode::from(CONFIG_PROBLEM);
        }
    };
    match clicktap::cli::Client::new(&admin).and_then(|c| f(&c)) {
        Ok(clicktap::cli::Done::Ok) => ExitCode::SUCCESS,
        Ok(clicktap::cli::Done::Refused) => ExitCode::from(CONFIG_PROBLEM),
        Err(e) if clicktap::cli::reader_gone(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clicktap: {e:#}");
            if e.is::<clicktap::cli::Refusal>() {
                ExitCode::from(CONFIG_PROBLEM)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn webhooks(command: Webhooks) -> ExitCode {
    use clicktap::cli::{self, DeadLetters};
    match command {
        Webhooks::List { on } => api(&on.config, |c| cli::webhooks(c, on.json)),
        Webhooks::Test { id, on } => api(&on.config, |c| cli::test(c, &id, on.json)),
        Webhooks::Replay {
            id,
            since,
            until,
            no_wait,
            on,
        } => api(&on.config, |c| {
            cli::replay(c, &id, &since, &until, !no_wait, on.json)
        }),
        Webhooks::Keygen => {
            let key = clicktap::config::SecretKey::generate();
            println!("secret_key = \"{}\"", key.expose());
            println!("# the receiver verifies with: {}", key.public_key());
            ExitCode::SUCCESS
        }
        Webhooks::Reactivate { id, on } => api(&on.config, |c| cli::reactivate(c, &id, on.json)),
        Webhooks::Deliveries {
            id,
            status,
            seq,
            message_id,
            test,
            replay,
            limit,
            on,
        } => {
            let seq = seq.map(|s| s.to_string());
            let mut filters = Vec::new();
            for (k, v) in [
                ("status", status.as_deref()),
                ("seq", seq.as_deref()),
                ("message_id", message_id.as_deref()),
                ("test", test.then_some("true")),
                ("replay", replay.then_some("true")),
            ] {
                if let Some(v) = v {
                    filters.push((k, v));
                }
            }
            api(&on.config, |c| {
                cli::deliveries(c, &id, &filters, limit, on.json)
            })
        }
        Webhooks::Messages {
            id,
            filter,
            limit,
            cursor,
            all,
            on,
        } => {
            let filter = filter.filter();
            api(&on.config, |c| {
                cli::messages(c, &id, &filter, limit, cursor.as_deref(), all, on.json)
            })
        }
        Webhooks::Resend {
            id,
            seq,
            filter,
            on,
        } => {
            let filter = filter.filter();
            api(&on.config, |c| cli::resend(c, &id, seq, &filter, on.json))
        }
        Webhooks::DeadLetters {
            id,
            replay,
            purge,
            seq,
            on,
        } => {
            let what = match (replay, purge) {
                (true, _) => DeadLetters::Replay(seq),
                (_, true) => DeadLetters::Purge(seq),
                _ => seq.map_or(DeadLetters::List, DeadLetters::Show),
            };
            api(&on.config, |c| cli::dead_letters(c, &id, what, on.json))
        }
    }
}
