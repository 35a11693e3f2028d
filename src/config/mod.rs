//! Configuration: one TOML file in, one validated, typed [`Config`] out.
//!
//! The file's shape ([`file`]) never leaks past this module: the rest of clicktap reads
//! [`Config`], whose values are already parsed (addresses, durations, CIDRs, globs,
//! secrets). [`load`] reports every problem at once, each naming the file and the key,
//! and `clicktap check` and `clicktap run` share it, so what `check` accepts `run`
//! starts with.

mod alerts;
mod auth;
mod bounds;
mod event_types;
mod file;
mod headers;
mod keys;
mod nats;
mod parse;
mod problems;
mod relay;
mod relay_file;
mod secret;
mod secret_key;
mod sink;
mod sink_file;
mod subject;
mod url;
mod validate;
mod values;
mod webhook;
mod webhook_file;

pub use alerts::{AlertConfig, AlertEvent, Channel, ChatUrl, Email, SmtpTls};
pub use auth::Auth;
pub use event_types::{Page, PagePath, QrConfig, bare_host};
pub use keys::keys;
pub use nats::{Credentials, NatsServers, SinkTls};
pub use problems::{Problem, Problems};
pub use relay::{DeliverFrom, RelayConfig};
pub use secret::{Secret, SigningKey};
pub use secret_key::SecretKey;
pub use sink::{Retention, SinkConfig, StreamConfig};
pub use subject::{SubjectTemplate, matches as subject_matches};
pub use webhook::{
    BatchPolicy, Filter, Format, LinkMeta, MIN_BACKOFF, RetryPolicy, WebhookConfig, default_guid,
};

use ipnet::IpNet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, for messages.
    pub source: PathBuf,
    /// SHA-256 of the file's text, hex.
    pub hash: String,
    pub proxy: ProxyConfig,
    pub enrich: EnrichConfig,
    pub geoip: GeoipConfig,
    pub queue: QueueConfig,
    pub delivery: DeliveryConfig,
    pub log: LogConfig,
    pub stats: StatsConfig,
    /// `None`: no admin listener.
    pub admin: Option<AdminConfig>,
    pub webhooks: Vec<WebhookConfig>,
    /// `[[sinks]]`: where every event is published besides the webhooks.
    pub sinks: Vec<SinkConfig>,
    /// `[relay]`: this file configures `clicktap relay`, which delivers the webhooks
    /// from a JetStream stream; the proxy, queue and enrichment settings are unused.
    pub relay: Option<RelayConfig>,
    pub links: Vec<LinkMeta>,
    /// `[qr]`: what marks a redirect as a QR scan.
    pub qr: QrConfig,
    /// `[[pages]]`: bio pages, whose 200 answers are page views.
    pub pages: Vec<Page>,
    pub alerts: Vec<AlertConfig>,
}

/// Which path requests take through the proxy (`proxy.forwarding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarding {
    /// The lean path for ordinary HTTP/1 requests, the full Pingora proxy for the rest.
    Lean,
    /// Every request through the full Pingora proxy (pingora-proxy).
    Full,
}

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    /// As written, for messages and the TLS server name.
    pub upstream_name: String,
    pub upstream: SocketAddr,
    pub upstream_tls: bool,
    pub forwarding: Forwarding,
    pub upstream_sni: String,
    pub upstream_verify: bool,
    /// PEM certificates trusted for the upstream instead of the system's.
    pub upstream_ca: Option<PathBuf>,
    /// Off: a plain proxy, nothing captured (a benchmark baseline).
    pub capture: bool,
    pub capture_statuses: Vec<u16>,
    pub trusted_proxies: Vec<IpNet>,
    pub threads: usize,
    pub work_stealing: bool,
    pub listener_tasks: usize,
    pub upstream_keepalive_pool: usize,
    pub upstream_connect_timeout: Duration,
    pub upstream_read_timeout: Duration,
    pub upstream_idle_timeout: Duration,
    /// How long a visitor may take to send a request head (and, on the lean path, its
    /// body), counted from its first byte.
    pub request_timeout: Duration,
    /// The largest request head read; a line may take a quarter of it.
    pub max_request_head: usize,
    pub grace_period: Duration,
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct EnrichConfig {
    pub channel_capacity: usize,
    pub workers: usize,
    pub batch_size: usize,
    /// How often a worker takes what waits in the channel while clicks arrive.
    pub poll_interval: Duration,
    pub keep_raw_ip: bool,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// A visitor's first event on a link within this is `unique`; zero: off.
    pub unique_window: Duration,
    /// The most bytes the table of visitors seen takes.
    pub unique_max_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct GeoipConfig {
    /// Looked up in order; empty: no GeoIP.
    pub databases: Vec<PathBuf>,
    /// A missing or unreadable database is a warning, not a refusal to start.
    pub optional: bool,
    /// Look at the files every `watch_interval` and load them again when they change.
    pub watch: bool,
    pub watch_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Refuse new events (counted) until delivery or retention makes room.
    DropNewest,
    /// Evict the oldest events (counted), delivered or not.
    DropOldest,
}

#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub path: PathBuf,
    /// Zero: every appended batch is flushed to disk before the next one.
    pub flush_interval: Duration,
    pub max_events: u64,
    pub max_bytes: u64,
    pub when_full: WhenFull,
    pub retention: Duration,
    pub cache_size: u64,
    /// Appends are refused while the queue's file system has less free space than
    /// this; zero: no floor.
    pub min_free_bytes: u64,
    /// Events captured before the queue opens (an upgrade) wait in memory up to this.
    pub spool_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub allow_private_targets: bool,
    pub allow_http: bool,
    pub log_retention: Duration,
    pub log_body_bytes: usize,
    /// Request bodies up to this many bytes are kept whole in the delivery log (0:
    /// none); every attempt keeps its body's size and SHA-256.
    pub log_body_max_bytes: usize,
    pub threads: usize,
    /// Linux nice value of the delivery threads (0-19).
    pub nice: i32,
    pub poll_interval: Duration,
    /// On stop, how long attempts in flight get before they are recorded as retries.
    pub stop_timeout: Duration,
    /// Bound on the delivery log's stored bytes; the oldest attempts go first.
    pub log_max_bytes: u64,
    /// Bound on each webhook's retries and dead letters, in bytes: at it, the webhook
    /// takes no new events until retries drain.
    pub state_max_bytes: u64,
}

/// The per-minute click rollups behind `GET /api/v1/stats` (`crate::rollup`).
#[derive(Debug, Clone)]
pub struct StatsConfig {
    pub enabled: bool,
    /// Minutes older than this are removed.
    pub retention: Duration,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: String,
    pub json: bool,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// Required as `Authorization: Bearer` on every route but /healthz, /readyz and,
    /// when `metrics_public`, /metrics. No token: the API routes are refused.
    pub token: Option<Secret>,
    pub metrics_public: bool,
}

/// Reads and validates `path`: every problem at once, or the typed configuration.
pub fn load(path: &Path) -> Result<Config, Problems> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Problems::one(path, Problem::new("", format!("cannot read the file: {e}"))))?;
    from_str(&text, path)
}

/// Only the `[admin]` table of `path`, for the command line ([`validate::admin_only`]).
pub fn load_admin(path: &Path) -> Result<AdminConfig, Problems> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Problems::one(path, Problem::new("", format!("cannot read the file: {e}"))))?;
    validate::admin_only(&text, path)
}

/// Validates TOML text as if it were read from `path`.
pub fn from_str(text: &str, path: &Path) -> Result<Config, Problems> {
    validate::validate(text, path)
}
