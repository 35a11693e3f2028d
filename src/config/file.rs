//! The TOML file as operators write it: every key, its default, nothing interpreted.
//!
//! Values that need parsing (addresses, durations, sizes, CIDRs) stay strings here so
//! that validation can report every bad one at once, naming its key; serde would stop
//! at the first. Defaults live in this file and nowhere else, and conf/clicktap.toml
//! shows each of them.

use serde::Deserialize;

use super::alerts::AlertFile;
use super::relay_file::RelayFile;
use super::sink_file::SinkFile;
use super::values::OneOrMany;
use super::webhook_file::{LinkFile, PageFile, QrFile, WebhookFile};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConfigFile {
    pub proxy: ProxyFile,
    pub enrich: EnrichFile,
    pub geoip: GeoipFile,
    pub queue: QueueFile,
    pub delivery: DeliveryFile,
    pub log: LogFile,
    pub stats: StatsFile,
    pub admin: Option<AdminFile>,
    pub webhooks: Vec<WebhookFile>,
    pub sinks: Vec<SinkFile>,
    /// `[relay]`: the file configures `clicktap relay`.
    pub relay: Option<RelayFile>,
    pub links: Vec<LinkFile>,
    pub qr: QrFile,
    pub pages: Vec<PageFile>,
    pub alerts: Vec<AlertFile>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct ProxyFile {
    pub listen: String,
    pub upstream: String,
    pub forwarding: String,
    pub upstream_tls: bool,
    pub upstream_sni: Option<String>,
    pub upstream_verify: bool,
    pub upstream_ca: Option<String>,
    pub capture: bool,
    pub capture_statuses: Vec<u16>,
    pub trusted_proxies: Vec<String>,
    pub threads: usize,
    pub work_stealing: bool,
    pub listener_tasks: usize,
    pub upstream_keepalive_pool: usize,
    pub upstream_connect_timeout: String,
    pub upstream_read_timeout: String,
    pub upstream_idle_timeout: String,
    pub request_timeout: String,
    pub max_request_head: String,
    pub grace_period: String,
    pub shutdown_timeout: String,
}

impl Default for ProxyFile {
    fn default() -> Self {
        ProxyFile {
            listen: "127.0.0.1:8080".into(),
            upstream: "127.0.0.1:8081".into(),
            forwarding: "lean".into(),
            upstream_tls: false,
            upstream_sni: None,
            upstream_verify: true,
            upstream_ca: None,
            capture: true,
            capture_statuses: vec![301, 302],
            trusted_proxies: Vec::new(),
            threads: 2,
            work_stealing: true,
            listener_tasks: 1,
            upstream_keepalive_pool: 1024,
            upstream_connect_timeout: "2s".into(),
            upstream_read_timeout: "30s".into(),
            upstream_idle_timeout: "60s".into(),
            request_timeout: "60s".into(),
            max_request_head: "32KiB".into(),
            grace_period: "5s".into(),
            shutdown_timeout: "5s".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct EnrichFile {
    pub channel_capacity: usize,
    pub workers: usize,
    pub batch_size: usize,
    pub poll_interval: String,
    pub keep_raw_ip: bool,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub unique_window: String,
    pub unique_max_bytes: String,
}

impl Default for EnrichFile {
    fn default() -> Self {
        EnrichFile {
            channel_capacity: 8192,
            workers: 1,
            batch_size: 512,
            // 10 ms rather than 2: at 10k clicks/s a batch of about 100 rather than 20
            // halves what the queue costs per event, and the thread wakes 100 times a
            // second rather than 500 on cores the proxy needs (enrichment thread 7.9-8.4
            // -> 6.4-6.9 µs of CPU per click at saturation, perf stat, three rounds each,
            // alternating). The default channel (8,192 clicks) holds 10 ms of clicks up
            // to 800k/s.
            poll_interval: "10ms".into(),
            keep_raw_ip: false,
            ipv4_prefix: 24,
            ipv6_prefix: 48,
            // Dub's rule: one click per visitor and link an hour.
            unique_window: "1h".into(),
            // Two million visitor-links (16 bytes each); up to about 1.4 million within
            // their windows the table forgets none early: 400 new visitor-links a second,
            // every second of an hour (src/enrich/unique.rs measures it).
            unique_max_bytes: "32MiB".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct GeoipFile {
    pub database: Option<OneOrMany>,
    pub optional: bool,
    pub watch: bool,
    pub watch_interval: String,
}

impl Default for GeoipFile {
    fn default() -> Self {
        GeoipFile {
            database: None,
            optional: false,
            // geoipupdate replaces the files twice a week: a look a minute costs
            // nothing and picks a new one up within a minute.
            watch: true,
            watch_interval: "60s".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct QueueFile {
    pub path: String,
    pub flush_interval: String,
    pub max_events: u64,
    pub max_bytes: String,
    pub when_full: String,
    pub retention: String,
    pub cache_size: String,
    pub min_free_bytes: String,
    pub spool_bytes: String,
}

impl Default for QueueFile {
    fn default() -> Self {
        QueueFile {
            path: "data/queue".into(),
            flush_interval: "50ms".into(),
            max_events: 10_000_000,
            max_bytes: "4GiB".into(),
            when_full: "drop_newest".into(),
            retention: "7d".into(),
            cache_size: "8MiB".into(),
            // sled keeps a write error until it is reopened (NOTES.md): the queue stops
            // appending well before the disk is full rather than at ENOSPC.
            min_free_bytes: "64MiB".into(),
            spool_bytes: "64MiB".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct DeliveryFile {
    pub allow_private_targets: bool,
    pub allow_http: bool,
    pub log_retention: String,
    pub log_body_bytes: usize,
    pub log_body_max_bytes: usize,
    pub threads: usize,
    pub nice: i64,
    pub poll_interval: String,
    pub stop_timeout: String,
    pub log_max_bytes: String,
    pub state_max_bytes: String,
}

impl Default for DeliveryFile {
    fn default() -> Self {
        DeliveryFile {
            allow_private_targets: false,
            allow_http: false,
            log_retention: "7d".into(),
            log_body_bytes: 1024,
            log_body_max_bytes: 4096,
            threads: 1,
            nice: 10,
            poll_interval: "50ms".into(),
            stop_timeout: "5s".into(),
            log_max_bytes: "256MiB".into(),
            state_max_bytes: "64MiB".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct LogFile {
    pub level: String,
    pub format: String,
}

impl Default for LogFile {
    fn default() -> Self {
        LogFile {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct StatsFile {
    pub enabled: bool,
    pub retention: String,
}

impl Default for StatsFile {
    fn default() -> Self {
        StatsFile {
            enabled: true,
            // A week of minutes: the dashboard's longest window, about 10,080 records.
            retention: "7d".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct AdminFile {
    pub listen: String,
    pub token: Option<String>,
    pub metrics_public: bool,
}

impl Default for AdminFile {
    fn default() -> Self {
        AdminFile {
            listen: "127.0.0.1:9090".into(),
            token: None,
            metrics_public: true,
        }
    }
}
