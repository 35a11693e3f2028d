//! Clicks sent at a fixed rate (open loop: a slow answer does not delay the next
//! click), timing two things: the visitor's latency, from sending a click to having
//! its whole redirect response, and, unless `--no-receiver`, click-to-webhook
//! latency through a receiver that notes when each webhook arrives.
//!
//! Each click carries `clk=<n>` in its query. When the webhook body names the link
//! (the native format does), arrivals are matched to clicks by that number; when it
//! does not (a format that leaves the query out), the k-th arrival is matched to the
//! k-th click, which holds for unbatched delivery up to the reordering of
//! `concurrency` requests in flight. Both clocks are this process's monotonic clock.
//!
//! Clicks go round-robin to `--connections` clients, each with its own keep-alive
//! pool: below saturation few requests overlap, so with one shared pool the number
//! of connections (and of proxy threads busy) would depend on chance overlaps; this
//! way the proxy always sees several connections, as from several visitors.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use parking_lot::Mutex;
use serde_json::json;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// The short link to click, through the proxy (`clk=<n>` is added to its query).
    #[arg(long)]
    url: String,
    /// Where the webhook receiver listens (the webhook's URL points here).
    #[arg(
        long,
        required_unless_present = "no_receiver",
        conflicts_with = "no_receiver"
    )]
    receiver: Option<SocketAddr>,
    /// No receiver and no waiting for webhooks: time the redirects only (for a proxy
    /// that sends no webhooks, or sends them elsewhere). The webhook fields are null.
    #[arg(long)]
    no_receiver: bool,
    /// HTTP clients the clicks are spread over, round-robin, each with its own
    /// keep-alive pool: at least this many connections reach the proxy.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// At most this many clicks in flight (0: no limit). Without a limit a stall opens a
    /// new connection for every click sent meanwhile, and the proxy's memory follows the
    /// connections: a soak caps them so that its memory says what the clicks cost. A
    /// click waiting for its turn still counts its latency from when it was due.
    #[arg(long, default_value_t = 0)]
    max_in_flight: usize,
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// After the last click, how long to wait for webhooks still to come.
    #[arg(long, default_value_t = 15.0)]
    wait: f64,
}

const NOT_SENT: u64 = u64::MAX;
const UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
                  (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// The click numbers named in a webhook body (`clk=<n>`), each once.
fn clicks_named(body: &[u8]) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    let pat = b"clk=";
    let mut i = 0;
    while i + pat.len() <= body.len() {
        if &body[i..i + pat.len()] == pat {
            let digits: Vec<u8> = body[i + pat.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .copied()
                .collect();
            if let Ok(n) = std::str::from_utf8(&digits).unwrap_or("").parse() {
                out.insert(n);
            }
            i += pat.len() + digits.len();
        } else {
            i += 1;
        }
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn run(a: Args) -> anyhow::Result<String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(measure(a))
}

async fn measure(a: Args) -> anyhow::Result<String> {
    let t0 = Instant::now();
    let arrivals: Arc<Mutex<Vec<(Duration, Bytes)>>> = Arc::default();
    if let Some(addr) = a.receiver {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let seen = arrivals.clone();
        tokio::spawn(crate::origin::serve(listener, move |_parts, body| {
            seen.lock().push((t0.elapsed(), body));
            Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Full::new(Bytes::new()))
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
        }));
    }

    let clients = (0..a.connections.max(1))
        .map(|_| {
            clicktap::tls::client_builder()
                .pool_max_idle_per_host(256)
                .tcp_nodelay(true)
                .timeout(Duration::from_secs(10))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let n = (a.rate * a.seconds).round() as usize;
    let period = Duration::from_secs_f64(1.0 / a.rate);
    let sep = if a.url.contains('?') { '&' } else { '?' };
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(NOT_SENT)).collect());
    let in_flight =
        (a.max_in_flight > 0).then(|| Arc::new(tokio::sync::Semaphore::new(a.max_in_flight)));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        tokio::time::sleep_until((start + period * i as u32).into()).await;
        let (client, sent) = (clients[i % clients.len()].clone(), sent.clone());
        let in_flight = in_flight.clone();
        let url = format!("{}{sep}clk={i}", a.url);
        // The visitor's latency: from sending to the end of the redirect's body;
        // None for a failed request or an answer that is not a redirect.
        tasks.spawn(async move {
            let at = t0.elapsed();
            sent[i].store(at.as_nanos() as u64, Ordering::Relaxed);
            let _turn = match &in_flight {
                Some(s) => Some(s.clone().acquire_owned().await.ok()?),
                None => None,
            };
            let r = client
                .get(url)
                .header("user-agent", UA)
                .header("referer", "https://news.example.org/story")
                .send()
                .await
                .ok()?;
            let redirect = r.status().is_redirection();
            let complete = r.bytes().await.is_ok();
            (redirect && complete).then(|| t0.elapsed().saturating_sub(at))
        });
    }
    let mut visitor = Vec::with_capacity(n);
    while let Some(done) = tasks.join_next().await {
        if let Ok(Some(took)) = done {
            visitor.push(took.as_secs_f64() * 1e3);
        }
    }
    let send_secs = start.elapsed().as_secs_f64();
    let expected = visitor.len();
    visitor.sort_by(f64::total_cmp);
    let mut out = json!({
        "rate": a.rate,
        "clicks": n,
        "connections": clients.len(),
        "achieved_rate": n as f64 / send_secs,
        "redirects": expected,
        "errors": n - expected,
        "redirect_p50_ms": percentile(&visitor, 50.0),
        "redirect_p90_ms": percentile(&visitor, 90.0),
        "redirect_p99_ms": percentile(&visitor, 99.0),
        "redirect_p999_ms": percentile(&visitor, 99.9),
        "redirect_max_ms": visitor.last().copied().unwrap_or(0.0),
    });
    let webhook_fields = [
        "webhook_requests",
        "matched",
        "matched_by",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "max_ms",
    ];
    if a.receiver.is_none() {
        for k in webhook_fields {
            out[k] = serde_json::Value::Null;
        }
        return Ok(out.to_string());
    }

    // Wait for the webhooks: until one per redirect arrived, or none came for `wait`.
    let mut last_count = 0;
    let mut last_change = Instant::now();
    loop {
        let count = arrivals.lock().len();
        if count >= expected || last_change.elapsed().as_secs_f64() > a.wait {
            break;
        }
        if count != last_count {
            last_count = count;
            last_change = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let got = arrivals.lock().clone();
    let sent_at = |i: usize| {
        let v = sent[i].load(Ordering::Relaxed);
        (v != NOT_SENT).then(|| Duration::from_nanos(v))
    };
    let mut lat = Vec::new();
    let named: Vec<BTreeSet<usize>> = got.iter().map(|(_, b)| clicks_named(b)).collect();
    let by_name = named.iter().any(|s| !s.is_empty());
    if by_name {
        for ((at, _), ids) in got.iter().zip(&named) {
            for &i in ids {
                if let Some(s) = (i < n).then(|| sent_at(i)).flatten() {
                    lat.push(at.saturating_sub(s).as_secs_f64() * 1e3);
                }
            }
        }
    } else {
        let mut order: Vec<Duration> = (0..n).filter_map(sent_at).collect();
        order.sort_unstable();
        let mut arrived: Vec<Duration> = got.iter().map(|(at, _)| *at).collect();
        arrived.sort_unstable();
        for (s, at) in order.iter().zip(&arrived) {
            lat.push(at.saturating_sub(*s).as_secs_f64() * 1e3);
        }
    }
    lat.sort_by(f64::total_cmp);
    let webhook = [
        json!(got.len()),
        json!(lat.len()),
        json!(if by_name { "clk" } else { "arrival order" }),
        json!(percentile(&lat, 50.0)),
        json!(percentile(&lat, 90.0)),
        json!(percentile(&lat, 99.0)),
        json!(lat.last().copied().unwrap_or(0.0)),
    ];
    for (k, v) in webhook_fields.into_iter().zip(webhook) {
        out[k] = v;
    }
    Ok(out.to_string())
}
