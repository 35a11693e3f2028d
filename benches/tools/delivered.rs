//! Waits until a contender that delivers clicks as webhooks has delivered every click
//! it served, and says how long that took: clicktap (d) by its own counters, nginx +
//! syslog-ng (h) by the lines of nginx's access log of redirects against the lines of
//! the hook server's log of `/hook` requests.
//!
//! nginx writes that access log through a buffer (`buffer=64k flush=1s`), so its line
//! count is final only once it has not grown for longer than the flush interval: the
//! wait ends when that holds and the hook server has received as many webhooks. The
//! time reported is when the webhooks first matched the final count, not when the
//! quiet interval confirmed it.
//!
//! clicktap's counters cost clicktap a `/metrics` answer each, which counts as its
//! CPU, where h's logs cost h nothing to read: so d's are read at most every
//! [`METRICS_EVERY`], and at once when the hook server has received as many webhooks
//! as clicktap had served at the last reading (the hook server's log is read every
//! 20 ms for both).

use serde_json::json;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// The hook server's log of `/hook` requests, one line each.
    #[arg(long)]
    hook_log: PathBuf,
    /// Its line count when the contender started: the lines before are another's.
    #[arg(long, default_value_t = 0)]
    hook_base: u64,
    /// clicktap's `/metrics` (d): served = clicks captured, delivered =
    /// `clicktap_delivery_delivered_total`.
    #[arg(
        long,
        required_unless_present = "clicks_log",
        conflicts_with = "clicks_log"
    )]
    metrics: Option<String>,
    /// nginx's access log of redirects (h): served = its lines, delivered = the
    /// webhooks the hook server received.
    #[arg(long)]
    clicks_log: Option<PathBuf>,
    /// The access log's flush interval in seconds (nginx's `flush=`).
    #[arg(long, default_value_t = 1.0)]
    flush: f64,
    #[arg(long, default_value_t = 300.0)]
    timeout: f64,
}

/// Counts the lines of a file that only grows, reading each byte once.
struct Lines {
    path: PathBuf,
    file: Option<std::fs::File>,
    offset: u64,
    lines: u64,
}

impl Lines {
    fn new(path: PathBuf) -> Self {
        Lines {
            path,
            file: None,
            offset: 0,
            lines: 0,
        }
    }

    fn count(&mut self) -> anyhow::Result<u64> {
        if self.file.is_none() {
            match std::fs::File::open(&self.path) {
                Ok(f) => self.file = Some(f),
                // Not written yet: nginx creates it when it starts, the hook server's
                // on its first request.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(e) => anyhow::bail!("{}: {e}", self.path.display()),
            }
        }
        let f = self.file.as_mut().expect("opened above");
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = [0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            self.offset += n as u64;
            self.lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        }
        Ok(self.lines)
    }
}

/// How often clicktap's `/metrics` is read while the webhooks have not caught up.
const METRICS_EVERY: Duration = Duration::from_millis(250);

pub fn run(args: Args) -> anyhow::Result<String> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.timeout);
    let quiet = Duration::from_secs_f64(args.flush + 0.25);
    let mut hooks = Lines::new(args.hook_log.clone());
    let mut clicks = args.clicks_log.clone().map(Lines::new);
    let mut last_served: Option<(u64, Instant)> = None;
    let mut prev_served = None;
    let mut reached: Option<Instant> = None;
    // d: the last reading of clicktap's counters (served, delivered) and when it was.
    let mut counters: Option<((u64, u64), Instant)> = None;
    loop {
        let now = Instant::now();
        let received = hooks.count()?.saturating_sub(args.hook_base);
        let (served, delivered, stable) = match (&args.metrics, clicks.as_mut()) {
            (Some(url), _) => {
                let due = match counters {
                    None => true,
                    Some(((served, _), at)) => {
                        received >= served || now.duration_since(at) >= METRICS_EVERY
                    }
                };
                if due {
                    let m = crate::metrics::sums(url)?;
                    let get = |k: &str| m.get(k).copied().unwrap_or(0.0) as u64;
                    counters = Some((
                        (
                            get("clicktap_capture_clicks_total"),
                            get("clicktap_delivery_delivered_total"),
                        ),
                        now,
                    ));
                }
                let ((served, delivered), _) = counters.expect("read above when missing");
                (served, delivered, true)
            }
            (None, Some(c)) => {
                let served = c.count()?;
                let since = match last_served {
                    Some((n, t)) if n == served => t,
                    _ => now,
                };
                last_served = Some((served, since));
                (served, received, now.duration_since(since) >= quiet)
            }
            (None, None) => unreachable!("clap requires one of them"),
        };
        // A count that grew since the last poll was not matched before this one, even
        // if the webhooks caught up in between.
        if delivered < served || prev_served != Some(served) {
            reached = None;
        }
        if delivered >= served {
            reached.get_or_insert(now);
        }
        prev_served = Some(served);
        let complete = stable && delivered >= served;
        if complete || now > deadline {
            let at = reached.filter(|_| complete).unwrap_or(now);
            return Ok(json!({
                "complete": complete,
                "served": served,
                "delivered": delivered,
                "received": received,
                "seconds": at.duration_since(start).as_secs_f64(),
                "waited_s": now.duration_since(start).as_secs_f64(),
            })
            .to_string());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
