//! `clicktap events`: the newest stored events as JSON lines, each with its `seq` and
//! the message ids it is sent with (`deliver/event_lines.rs`), filtered by capture
//! time, link, event type and kind; or, with `--table`, a line each for people.
//!
//! sled lets one process at a time open the queue. When `clicktap run` holds it, the
//! events are asked of the running process through its admin listener instead.
//! A queue path where nothing is (a relative path read from the wrong folder) is an
//! error that names the path, never an empty queue created there.

use std::io::Write;
use std::sync::Arc;

use crate::config::Config;
use crate::deliver::event_lines;
use crate::deliver::event_query::EventQuery;
use crate::metrics::Metrics;
use crate::queue::Queue;

/// What `clicktap events` was asked for.
#[derive(Default)]
pub struct Ask {
    pub limit: usize,
    pub since: Option<String>,
    pub until: Option<String>,
    pub link: Option<String>,
    pub event_type: Option<String>,
    pub kind: Option<String>,
    pub table: bool,
}

impl Ask {
    /// The filters as the API's query pairs.
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("since", &self.since),
            ("until", &self.until),
            ("link", &self.link),
            ("type", &self.event_type),
            ("kind", &self.kind),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.as_deref()?)))
        .collect()
    }

    /// The filters read here, for a queue opened here; a bad one is refused as the
    /// running clicktap would refuse it (exit 2).
    fn query(&self) -> anyhow::Result<EventQuery> {
        let refused =
            |what: String| -> anyhow::Error { crate::cli::Refusal { status: 400, what }.into() };
        let time = |name: &str, v: &Option<String>| -> anyhow::Result<Option<u64>> {
            v.as_deref()
                .map(|t| {
                    crate::admin::times::parse_text(t)
                        .map_err(|e| refused(format!("--{name}: {e}")))
                })
                .transpose()
        };
        Ok(EventQuery {
            since_ms: time("since", &self.since)?,
            until_ms: time("until", &self.until)?,
            link: self.link.clone(),
            event_type: self
                .event_type
                .as_deref()
                .map(EventQuery::event_type)
                .transpose()
                .map_err(|e| refused(format!("--{e}")))?,
            kind: self
                .kind
                .as_deref()
                .map(EventQuery::kind)
                .transpose()
                .map_err(|e| refused(format!("--{e}")))?,
        })
    }
}

pub fn print(cfg: &Config, ask: &Ask) -> anyhow::Result<()> {
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
            let query = ask.query()?;
            let mut out = Vec::new();
            for e in event_lines::select(&queue, &query, ask.limit)? {
                out.extend(event_lines::annotated(&e, &cfg.webhooks, &cfg.links));
                out.push(b'\n');
            }
            out
        }
        Err(open_err) => match crate::cli::client(cfg)
            .and_then(|c| crate::cli::events(&c, ask.limit, &ask.pairs()))
        {
            Ok(lines) => lines,
            Err(e) if e.is::<crate::cli::Refusal>() => return Err(e),
            Err(e) => {
                return Err(e.context(format!(
                    "the queue cannot be opened ({open_err}) and the running clicktap cannot be asked"
                )));
            }
        },
    };
    if ask.table {
        crate::cli::events_table(&lines)?;
    } else {
        std::io::stdout().write_all(&lines)?;
    }
    Ok(())
}
