//! `clicktap events`: the newest stored events as JSON lines.
//!
//! sled lets one process at a time open the queue. When `clicktap run` holds it, the
//! events are asked of the running process through its admin listener instead.

use anyhow::{Context, bail};
use std::io::Write;
use std::sync::Arc;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::queue::Queue;

/// How long the running clicktap gets to answer, and how much of its answer is read
/// (10,000 events, the most the API lists, of up to 6 KiB each).
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const MAX_ANSWER: usize = 64 << 20;

pub fn print(cfg: &Config, limit: usize) -> anyhow::Result<()> {
    let lines = match Queue::open(&cfg.queue, Arc::new(Metrics::new())) {
        Ok(queue) => {
            let mut out = Vec::new();
            for e in queue.tail(limit)? {
                out.extend_from_slice(e.bytes());
                out.push(b'\n');
            }
            out
        }
        Err(open_err) => from_running(cfg, limit).with_context(|| {
            format!(
                "the queue cannot be opened ({open_err}) and the running clicktap cannot be asked"
            )
        })?,
    };
    std::io::stdout().write_all(&lines)?;
    Ok(())
}

fn from_running(cfg: &Config, limit: usize) -> anyhow::Result<Vec<u8>> {
    let Some(admin) = &cfg.admin else {
        bail!(
            "no [admin] section: add one so that `clicktap events` can read from a running clicktap"
        );
    };
    let url = format!("http://{}/api/v1/events?limit={limit}", admin.listen);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut req = crate::tls::client_builder()
            .build()?
            .get(&url)
            .timeout(ASK_TIMEOUT);
        if let Some(t) = &admin.token {
            req = req.bearer_auth(t.expose());
        }
        let mut resp = req.send().await.with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            if body.len() + chunk.len() > MAX_ANSWER {
                bail!("GET {url}: the answer is larger than {MAX_ANSWER} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            bail!("GET {url}: {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    })
}
