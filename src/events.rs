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
        let mut req = crate::tls::client_builder().build()?.get(&url);
        if let Some(t) = &admin.token {
            req = req.bearer_auth(t.expose());
        }
        let resp = req.send().await.with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let body = resp.bytes().await?;
        if !status.is_success() {
            bail!("GET {url}: {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body.to_vec())
    })
}
