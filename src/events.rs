//! `clicktap events`: the newest stored events as JSON lines.
//!
//! sled lets one process at a time open the queue. When `clicktap run` holds it, the
//! events are asked of the running process through its admin listener instead.
//! A queue path where nothing is (a relative path read from the wrong folder) is an
//! error that names the path, never an empty queue created there.

use anyhow::Context;
use std::io::Write;
use std::sync::Arc;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::queue::Queue;

pub fn print(cfg: &Config, limit: usize) -> anyhow::Result<()> {
    let path = &cfg.queue.path;
    if !path.exists() {
        let folder = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        anyhow::bail!(
            "no queue at {} (queue.path of {}; a relative path is read from the folder clicktap is started in, here {folder})",
            path.display(),
            cfg.source.display()
        );
    }
    let lines = match Queue::open(&cfg.queue, Arc::new(Metrics::new())) {
        Ok(queue) => {
            let mut out = Vec::new();
            for e in queue.tail(limit)? {
                out.extend_from_slice(e.bytes());
                out.push(b'\n');
            }
            out
        }
        Err(open_err) => crate::cli::client(cfg)
            .and_then(|c| crate::cli::events(&c, limit))
            .with_context(|| {
                format!(
                    "the queue cannot be opened ({open_err}) and the running clicktap cannot be asked"
                )
            })?,
    };
    std::io::stdout().write_all(&lines)?;
    Ok(())
}
