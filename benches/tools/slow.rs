//! Slow visitors, as an attacker or a bad mobile network sends them: `count`
//! connections that each hold the proxy as long as it lets them, for `seconds`.
//!
//! - `head`: a request line and then one more byte of a never-ending head every `gap`;
//! - `body`: a whole head announcing a 60,000-byte body, then one byte of it every `gap`;
//! - `read`: a whole request for a large answer, read 1 KiB every `gap` through a 4 KiB
//!   receive buffer (a new request when it is all read).
//!
//! A connection the proxy ends (closed, or answered: a 400 or 408 to a head, an answer
//! to a body never finished) is opened again after `gap`, as an attacker keeps up the
//! pressure. Prints, as JSON, how many were opened, how many the proxy ended and how
//! long they had lived, and how many were still held when the time was up: what the
//! proxy's limits did to them.

use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(clap::Args)]
pub struct Args {
    /// The proxy.
    #[arg(long)]
    addr: SocketAddr,
    /// head | body | read
    #[arg(long)]
    kind: Kind,
    #[arg(long, default_value_t = 200)]
    count: usize,
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// Between two bytes sent (head, body) or two 1 KiB reads (read).
    #[arg(long, default_value_t = 2000)]
    gap_ms: u64,
    /// The path of the large answer (`read`).
    #[arg(long, default_value = "/large")]
    large: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Kind {
    Head,
    Body,
    Read,
}

#[derive(Default)]
struct Counts {
    opened: AtomicU64,
    /// Connections the proxy ended (closed or answered) before the time was up.
    ended: AtomicU64,
    /// Their lifetimes, summed, in milliseconds.
    ended_ms: AtomicU64,
    refused: AtomicU64,
    /// Whole answers read by `read` visitors, and those of them that were not a 200 (the
    /// large answer not served: a bench that measures nothing).
    answers: AtomicU64,
    answers_not_200: AtomicU64,
}

pub fn run(a: Args) -> anyhow::Result<String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(hold(a))
}

async fn hold(a: Args) -> anyhow::Result<String> {
    let counts = Arc::new(Counts::default());
    let end = Instant::now() + Duration::from_secs_f64(a.seconds);
    let gap = Duration::from_millis(a.gap_ms);
    let held = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..a.count {
        let (counts, held, large) = (counts.clone(), held.clone(), a.large.clone());
        let (addr, kind) = (a.addr, a.kind);
        tasks.spawn(async move {
            // Spread the first connections over one gap, as visitors do not arrive at once.
            tokio::time::sleep(gap * i as u32 / a.count.max(1) as u32).await;
            while Instant::now() < end {
                let Ok(s) = connect(addr, kind).await else {
                    counts.refused.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(gap).await;
                    continue;
                };
                counts.opened.fetch_add(1, Ordering::Relaxed);
                held.fetch_add(1, Ordering::Relaxed);
                let born = Instant::now();
                let deadline = tokio::time::Instant::from_std(end);
                let ended = tokio::time::timeout_at(deadline, visit(s, kind, gap, &large, &counts))
                    .await
                    .is_ok();
                held.fetch_sub(1, Ordering::Relaxed);
                if ended {
                    counts.ended.fetch_add(1, Ordering::Relaxed);
                    let ms = born.elapsed().as_millis() as u64;
                    counts.ended_ms.fetch_add(ms, Ordering::Relaxed);
                    tokio::time::sleep(gap).await;
                }
            }
        });
    }
    // Held at the end: sampled just before the time is up, when every task still runs.
    tokio::time::sleep_until(tokio::time::Instant::from_std(end) - Duration::from_millis(100))
        .await;
    let held_at_end = held.load(Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}
    let ended = counts.ended.load(Ordering::Relaxed);
    Ok(json!({
        "kind": match a.kind { Kind::Head => "head", Kind::Body => "body", Kind::Read => "read" },
        "count": a.count,
        "seconds": a.seconds,
        "gap_ms": a.gap_ms,
        "opened": counts.opened.load(Ordering::Relaxed),
        "refused": counts.refused.load(Ordering::Relaxed),
        "ended_by_proxy": ended,
        "ended_mean_life_s": if ended == 0 { 0.0 } else {
            counts.ended_ms.load(Ordering::Relaxed) as f64 / ended as f64 / 1e3
        },
        "held_at_end": held_at_end,
        "answers_read": counts.answers.load(Ordering::Relaxed),
        "answers_not_200": counts.answers_not_200.load(Ordering::Relaxed),
    })
    .to_string())
}

async fn connect(addr: SocketAddr, kind: Kind) -> std::io::Result<TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    if matches!(kind, Kind::Read) {
        // A small window, so that the proxy, not this machine's kernel, holds the answer.
        socket.set_recv_buffer_size(4096)?;
    }
    socket.connect(addr).await
}

/// One slow visitor on `s`, until the proxy ends the connection.
async fn visit(mut s: TcpStream, kind: Kind, gap: Duration, large: &str, counts: &Counts) {
    let mut buf = vec![0u8; 1024];
    match kind {
        Kind::Head | Kind::Body => {
            let first = match kind {
                Kind::Head => "GET /r/slow-head HTTP/1.1\r\nHost: sho.rt\r\n".to_string(),
                _ => "POST /r/slow-body HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 60000\r\n\r\n"
                    .to_string(),
            };
            if s.write_all(first.as_bytes()).await.is_err() {
                return;
            }
            let trickle: &[u8] = if matches!(kind, Kind::Head) {
                b"X-Slow: aaaaaaaa\r\n"
            } else {
                b"a"
            };
            for b in trickle.iter().cycle() {
                // Anything from the proxy (an answer, the end) ends this visitor.
                tokio::select! {
                    r = s.read(&mut buf) => { let _ = r; return; }
                    () = tokio::time::sleep(gap) => {}
                }
                if s.write_all(&[*b]).await.is_err() {
                    return;
                }
            }
        }
        Kind::Read => loop {
            let req = format!("GET {large} HTTP/1.1\r\nHost: sho.rt\r\n\r\n");
            if s.write_all(req.as_bytes()).await.is_err() {
                return;
            }
            let mut head = Vec::new();
            let mut left: Option<usize> = None;
            loop {
                tokio::time::sleep(gap).await;
                let n = match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                match left.as_mut() {
                    Some(l) => *l = l.saturating_sub(n),
                    None => {
                        head.extend_from_slice(&buf[..n]);
                        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                            let text = String::from_utf8_lossy(&head[..i]).to_ascii_lowercase();
                            if text.get(9..12) != Some("200") {
                                counts.answers_not_200.fetch_add(1, Ordering::Relaxed);
                            }
                            let len = text
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            left = Some(len.saturating_sub(head.len() - i - 4));
                        }
                    }
                }
                if left == Some(0) {
                    counts.answers.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        },
    }
}
