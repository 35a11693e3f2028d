//! clicktap's log: tracing events to standard error, as text or JSON, at the level
//! `log.level` says (or `RUST_LOG`, which wins). The level can be changed while running
//! ([`Logging::set_level`]): a reload applies a new `log.level` at once.
//!
//! Fields read as a person writes them, never as Rust's debug output: lists as
//! `a, b` ([`list`]), durations as `1s 500ms` ([`duration`]), nothing as `none`.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use crate::config::LogConfig;

/// The registry under its level filter, which the output layer writes from.
type Filtered = tracing_subscriber::layer::Layered<reload::Layer<EnvFilter, Registry>, Registry>;

/// The installed log, and the handle that changes its level.
pub struct Logging {
    filter: reload::Handle<EnvFilter, Registry>,
    /// `RUST_LOG` was set: it keeps deciding the level.
    from_env: bool,
}

impl Logging {
    /// Installs the process-wide log; call once, from the binary.
    pub fn init(cfg: &LogConfig) -> Logging {
        let env = EnvFilter::try_from_default_env().ok();
        let from_env = env.is_some();
        let filter = env
            .or_else(|| EnvFilter::try_new(&cfg.level).ok())
            .unwrap_or_else(|| EnvFilter::new("info"));
        let (filter, handle) = reload::Layer::new(filter);
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let output: Box<dyn Layer<Filtered> + Send + Sync> = if cfg.json {
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr)
                .boxed()
        } else {
            tracing_subscriber::fmt::layer()
                .with_ansi(ansi)
                .with_writer(std::io::stderr)
                .boxed()
        };
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(output)
            .try_init();
        Logging {
            filter: handle,
            from_env,
        }
    }

    /// Applies `level` (validated by the configuration); `RUST_LOG`, when set, wins.
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        if self.from_env {
            return Ok(());
        }
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        self.filter.reload(filter).map_err(|e| e.to_string())
    }
}

/// A list as a log field: `a, b`, or `none`.
pub fn list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let out: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    if out.is_empty() {
        "none".into()
    } else {
        out.join(", ")
    }
}

/// A duration as a log field: `1s 500ms`.
pub fn duration(d: std::time::Duration) -> String {
    let ms = std::time::Duration::from_millis(d.as_millis() as u64);
    if ms.is_zero() {
        "0s".into()
    } else {
        humantime::format_duration(ms).to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields_read_as_a_person_writes_them() {
        assert_eq!(super::list(["a", "b"]), "a, b");
        assert_eq!(super::list(Vec::<String>::new()), "none");
        assert_eq!(
            super::duration(std::time::Duration::from_micros(1_500_300)),
            "1s 500ms"
        );
        assert_eq!(super::duration(std::time::Duration::ZERO), "0s");
    }
}
