//! From the file's shape to [`Config`], collecting every problem on the way.
//!
//! Unknown keys are found with `serde_ignored` rather than `deny_unknown_fields`, so
//! that all of them are reported in one run instead of the first one only.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{
    AdminFile, ConfigFile, DeliveryFile, EnrichFile, GeoipFile, LogFile, ProxyFile, QueueFile,
};
use super::parse;
use super::problems::Problems;
use super::webhook::{self, Secret};
use super::{
    AdminConfig, Config, DeliveryConfig, EnrichConfig, GeoipConfig, LogConfig, ProxyConfig,
    QueueConfig, WhenFull,
};

pub fn validate(text: &str, path: &Path) -> Result<Config, Problems> {
    let mut problems = Problems::new(path);
    let mut unknown = Vec::new();
    let parsed: Result<ConfigFile, _> = match toml::Deserializer::parse(text) {
        Ok(de) => serde_ignored::deserialize(de, |p| unknown.push(p.to_string())),
        Err(e) => Err(e),
    };
    for key in unknown {
        problems.push(key, "unknown key");
    }
    let file = match parsed {
        Ok(f) => f,
        Err(e) => {
            problems.push("", e.to_string().trim_end().replace('\n', "\n    "));
            return Err(problems);
        }
    };
    // Relative paths in the file are relative to the working directory, as for every
    // command-line tool; the README says so.
    let proxy = proxy(file.proxy, &mut problems);
    let enrich = enrich(file.enrich, &mut problems);
    let geoip = geoip(file.geoip, &mut problems);
    let queue = queue(file.queue, &mut problems);
    let delivery = delivery(file.delivery, &mut problems);
    let log = log(file.log, &mut problems);
    let admin = file.admin.and_then(|a| admin(a, &mut problems));
    let links = webhook::links(file.links, &mut problems);
    let webhooks = webhook::webhooks(file.webhooks, &delivery, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Config {
        source: path.to_path_buf(),
        proxy: proxy.expect("no problems means a proxy section"),
        enrich,
        geoip,
        queue: queue.expect("no problems means a queue section"),
        delivery,
        log,
        admin,
        webhooks,
        links,
    })
}

fn proxy(f: ProxyFile, p: &mut Problems) -> Option<ProxyConfig> {
    let listen = p.check("proxy.listen", parse::listen_addr(&f.listen));
    let upstream = p.check("proxy.upstream", parse::upstream_addr(&f.upstream));
    let mut trusted = Vec::new();
    for (i, s) in f.trusted_proxies.iter().enumerate() {
        if let Some(net) = p.check(&format!("proxy.trusted_proxies[{i}]"), parse::cidr(s)) {
            trusted.push(net);
        }
    }
    for s in &f.capture_statuses {
        if ![301, 302, 303, 307, 308].contains(s) {
            p.push(
                "proxy.capture_statuses",
                format!("{s} is not a redirect status; allowed: 301, 302, 303, 307, 308"),
            );
        }
    }
    if f.capture && f.capture_statuses.is_empty() {
        p.push(
            "proxy.capture_statuses",
            "is empty: nothing would be captured (set proxy.capture = false for a plain proxy)",
        );
    }
    positive(p, "proxy.threads", f.threads);
    positive(p, "proxy.listener_tasks", f.listener_tasks);
    let connect = p.check(
        "proxy.upstream_connect_timeout",
        parse::duration(&f.upstream_connect_timeout),
    );
    let read = p.check(
        "proxy.upstream_read_timeout",
        parse::duration(&f.upstream_read_timeout),
    );
    let idle = p.check(
        "proxy.upstream_idle_timeout",
        parse::duration(&f.upstream_idle_timeout),
    );
    let grace = p.check("proxy.grace_period", parse::duration(&f.grace_period));
    let shutdown = p.check(
        "proxy.shutdown_timeout",
        parse::duration(&f.shutdown_timeout),
    );
    let host = f
        .upstream
        .rsplit_once(':')
        .map(|(h, _)| h.trim_matches(['[', ']']).to_string())
        .unwrap_or_default();
    let upstream_ca = f.upstream_ca.map(PathBuf::from);
    if let Some(ca) = &upstream_ca {
        match std::fs::read_to_string(ca) {
            Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => {}
            Ok(_) => p.push(
                "proxy.upstream_ca",
                format!("{} holds no PEM certificate", ca.display()),
            ),
            Err(e) => p.push(
                "proxy.upstream_ca",
                format!("{} cannot be read: {e}", ca.display()),
            ),
        }
    }
    Some(ProxyConfig {
        listen: listen?,
        upstream: upstream?,
        upstream_sni: f.upstream_sni.unwrap_or(host),
        upstream_name: f.upstream,
        upstream_tls: f.upstream_tls,
        upstream_verify: f.upstream_verify,
        upstream_ca,
        capture: f.capture,
        capture_statuses: f.capture_statuses,
        trusted_proxies: trusted,
        threads: f.threads,
        work_stealing: f.work_stealing,
        listener_tasks: f.listener_tasks,
        upstream_keepalive_pool: f.upstream_keepalive_pool,
        upstream_connect_timeout: connect?,
        upstream_read_timeout: read?,
        upstream_idle_timeout: idle?,
        grace_period: grace?,
        shutdown_timeout: shutdown?,
    })
}

/// Bounds of `enrich.poll_interval`: below a millisecond the threads would spin on an
/// empty channel; above a second clicks would wait in it longer than anyone expects
/// and a burst would fill it.
const POLL_MIN: Duration = Duration::from_millis(1);
const POLL_MAX: Duration = Duration::from_secs(1);

fn enrich(f: EnrichFile, p: &mut Problems) -> EnrichConfig {
    positive(p, "enrich.channel_capacity", f.channel_capacity);
    positive(p, "enrich.workers", f.workers);
    positive(p, "enrich.batch_size", f.batch_size);
    let poll = p.check("enrich.poll_interval", parse::duration(&f.poll_interval));
    if poll.is_some_and(|d| !(POLL_MIN..=POLL_MAX).contains(&d)) {
        p.push(
            "enrich.poll_interval",
            format!("{:?} is outside 1ms-1s", f.poll_interval),
        );
    }
    if f.ipv4_prefix > 32 {
        p.push(
            "enrich.ipv4_prefix",
            format!("{} is over 32", f.ipv4_prefix),
        );
    }
    if f.ipv6_prefix > 128 {
        p.push(
            "enrich.ipv6_prefix",
            format!("{} is over 128", f.ipv6_prefix),
        );
    }
    EnrichConfig {
        channel_capacity: f.channel_capacity,
        workers: f.workers,
        batch_size: f.batch_size,
        poll_interval: poll.unwrap_or(POLL_MIN),
        keep_raw_ip: f.keep_raw_ip,
        ipv4_prefix: f.ipv4_prefix,
        ipv6_prefix: f.ipv6_prefix,
    }
}

fn geoip(f: GeoipFile, p: &mut Problems) -> GeoipConfig {
    let databases: Vec<PathBuf> = f
        .database
        .map(|d| d.into_vec())
        .unwrap_or_default()
        .into_iter()
        .map(PathBuf::from)
        .collect();
    if !f.optional {
        for (i, path) in databases.iter().enumerate() {
            if let Err(e) = maxminddb::Reader::open_readfile(path) {
                let key = if databases.len() == 1 {
                    "geoip.database".to_string()
                } else {
                    format!("geoip.database[{i}]")
                };
                p.push(
                    key,
                    format!(
                        "{} cannot be opened as a MaxMind database: {e} \
                         (set geoip.optional = true to start without it)",
                        path.display()
                    ),
                );
            }
        }
    }
    GeoipConfig {
        databases,
        optional: f.optional,
    }
}

fn queue(f: QueueFile, p: &mut Problems) -> Option<QueueConfig> {
    let path = PathBuf::from(&f.path);
    if f.path.is_empty() {
        p.push("queue.path", "is empty");
    } else if let Err(e) = writable_dir(&path) {
        p.push("queue.path", e);
    }
    let flush = p.check("queue.flush_interval", parse::duration(&f.flush_interval));
    let max_bytes = p.check("queue.max_bytes", parse::size(&f.max_bytes));
    let cache = p.check("queue.cache_size", parse::size(&f.cache_size));
    let retention = p.check("queue.retention", parse::duration(&f.retention));
    let when_full = match f.when_full.as_str() {
        "drop_newest" => Some(WhenFull::DropNewest),
        "drop_oldest" => Some(WhenFull::DropOldest),
        other => {
            p.push(
                "queue.when_full",
                format!("{other:?} is not a policy; use \"drop_newest\" or \"drop_oldest\""),
            );
            None
        }
    };
    if f.max_events == 0 {
        p.push("queue.max_events", "must be at least 1");
    }
    Some(QueueConfig {
        path,
        flush_interval: flush?,
        max_events: f.max_events,
        max_bytes: max_bytes?,
        when_full: when_full?,
        retention: retention?,
        cache_size: cache?,
        min_free_bytes: p.check("queue.min_free_bytes", parse::size(&f.min_free_bytes))?,
    })
}

fn delivery(f: DeliveryFile, p: &mut Problems) -> DeliveryConfig {
    positive(p, "delivery.threads", f.threads);
    if !(0..=19).contains(&f.nice) {
        p.push(
            "delivery.nice",
            format!("{} is not a nice value from 0 to 19", f.nice),
        );
    }
    let log_retention = p
        .check("delivery.log_retention", parse::duration(&f.log_retention))
        .unwrap_or_default();
    let poll = p
        .check("delivery.poll_interval", parse::duration(&f.poll_interval))
        .unwrap_or_default();
    DeliveryConfig {
        allow_private_targets: f.allow_private_targets,
        allow_http: f.allow_http,
        log_retention,
        log_body_bytes: f.log_body_bytes,
        threads: f.threads,
        nice: f.nice.clamp(0, 19) as i32,
        poll_interval: poll,
        stop_timeout: p
            .check("delivery.stop_timeout", parse::duration(&f.stop_timeout))
            .unwrap_or_default(),
        log_max_bytes: p
            .check("delivery.log_max_bytes", parse::size(&f.log_max_bytes))
            .unwrap_or_default(),
    }
}

fn log(f: LogFile, p: &mut Problems) -> LogConfig {
    if tracing_subscriber::EnvFilter::try_new(&f.level).is_err() {
        p.push(
            "log.level",
            format!(
                "{:?} is not a level or filter (e.g. \"info\", \"clicktap=debug\")",
                f.level
            ),
        );
    }
    let json = match f.format.as_str() {
        "text" => false,
        "json" => true,
        other => {
            p.push(
                "log.format",
                format!("{other:?} is not \"text\" or \"json\""),
            );
            false
        }
    };
    LogConfig {
        level: f.level,
        json,
    }
}

fn admin(f: AdminFile, p: &mut Problems) -> Option<AdminConfig> {
    let listen = p.check("admin.listen", parse::listen_addr(&f.listen));
    if f.token.as_deref().is_some_and(|t| t.len() < 16) {
        p.push("admin.token", "is shorter than 16 characters");
    }
    Some(AdminConfig {
        listen: listen?,
        token: f.token.map(Secret::new),
        metrics_public: f.metrics_public,
    })
}

fn positive(p: &mut Problems, key: &str, n: usize) {
    if n == 0 {
        p.push(key, "must be at least 1");
    }
}

/// The queue directory, or the nearest existing parent it would be made in, must
/// accept a new file. Checked with a probe file, which `check` removes again.
fn writable_dir(path: &Path) -> Result<(), String> {
    let mut dir = path;
    while !dir.exists() {
        match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => dir = parent,
            _ => {
                dir = Path::new(".");
                break;
            }
        }
    }
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let probe = dir.join(format!(".clicktap-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!(
            "{} is not writable ({e}); the queue is stored under {}",
            dir.display(),
            path.display()
        )),
    }
}
