//! From the file's shape to [`Config`], collecting every problem on the way.
//!
//! Unknown keys are found with `serde_ignored` rather than `deny_unknown_fields`, so
//! that all of them are reported in one run instead of the first one only.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::bounds::{self, MILLI};
use super::event_types;
use super::file::{
    AdminFile, ConfigFile, DeliveryFile, EnrichFile, GeoipFile, LogFile, ProxyFile, QueueFile,
    StatsFile,
};
use super::parse;
use super::problems::Problems;
use super::secret::Secret;
use super::webhook;
use super::{
    AdminConfig, Config, DeliveryConfig, EnrichConfig, Forwarding, GeoipConfig, LogConfig,
    ProxyConfig, QueueConfig, StatsConfig, WhenFull,
};

pub fn validate(text: &str, path: &Path) -> Result<Config, Problems> {
    let mut problems = Problems::new(path);
    let mut unknown = Vec::new();
    let parsed: Result<ConfigFile, _> = match toml::Deserializer::parse(text) {
        // serde_ignored writes an optional table's `Some` as a `?` segment
        // (`admin.?.listn`): the key as written has none.
        Ok(de) => {
            serde_ignored::deserialize(de, |p| unknown.push(p.to_string().replace(".?.", ".")))
        }
        Err(e) => Err(e),
    };
    for key in unknown {
        problems.push(key, "unknown key");
    }
    let file = match parsed {
        Ok(f) => f,
        Err(e) => {
            problems.push("", syntax_error(text, &e));
            return Err(problems);
        }
    };
    // Kept aside so that the admin listener is checked against it even when another
    // proxy key has a problem (that one is reported by proxy()).
    let proxy_listen = parse::listen_addr(&file.proxy.listen).ok();
    // Relative paths in the file are relative to the working directory, as for every
    // command-line tool; docs/configuration.md says so.
    let proxy = proxy(file.proxy, &mut problems);
    let unique_off = parse::duration(&file.enrich.unique_window).is_ok_and(|d| d.is_zero());
    let enrich = enrich(file.enrich, &mut problems);
    let geoip = geoip(file.geoip, &mut problems);
    // A relay's file has no [queue] (refused below): the defaults stand unused, and
    // where they would put a queue is none of the relay's business.
    let queue = if file.relay.is_some() {
        queue(file.queue, &mut Problems::new(path))
    } else {
        queue(file.queue, &mut problems)
    };
    let delivery = delivery(file.delivery, &mut problems);
    let log = log(file.log, &mut problems);
    let stats = stats(file.stats, &mut problems);
    let admin = file.admin.and_then(|a| admin(a, &mut problems));
    let is_relay = file.relay.is_some();
    if let (Some(listen), Some(admin), false) = (proxy_listen, &admin, is_relay) {
        admin_apart(admin.listen, listen, &mut problems);
    }
    if is_relay && let Ok(table) = toml::from_str::<toml::Table>(text) {
        super::relay::sidecar_only(&table, &mut problems);
    }
    let any_webhook = !file.webhooks.is_empty();
    for (i, w) in file.webhooks.iter().enumerate() {
        if w.filter.unique && unique_off {
            problems.push(
                format!("webhooks[{i}].filter.unique"),
                "is true, but enrich.unique_window is \"0s\": no event is marked, so the filter would pass every one",
            );
        }
    }
    let links = webhook::links(file.links, &mut problems);
    let qr = event_types::qr(file.qr, &mut problems);
    let pages = event_types::pages(file.pages, &mut problems);
    let webhook_ids: Vec<String> = file.webhooks.iter().map(|w| w.id.clone()).collect();
    let alerts = super::alerts::alerts(file.alerts, &delivery, &webhook_ids, &mut problems);
    let mut webhooks = webhook::webhooks(file.webhooks, &delivery, &mut problems);
    let sinks = super::sink::sinks(file.sinks, &mut problems);
    let relay = file
        .relay
        .and_then(|r| super::relay::relay(r, &mut problems));
    if let Some(r) = &relay {
        super::relay::with_webhooks(r, &webhooks, any_webhook, &mut problems);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    fingerprint(text, &mut webhooks);
    Ok(Config {
        source: path.to_path_buf(),
        hash: hash(text),
        proxy: proxy.expect("no problems means a proxy section"),
        enrich,
        geoip,
        queue: queue.expect("no problems means a queue section"),
        delivery,
        log,
        stats,
        admin,
        webhooks,
        sinks,
        relay,
        links,
        qr,
        pages,
        alerts,
    })
}

/// A TOML syntax error by line and column. toml's own message quotes the offending
/// line, which may hold a secret (`secret = "whsec_...` without its closing quote).
fn syntax_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// Each webhook's fingerprint: its table and the `[delivery]` table, re-serialised (so
/// that comments and spacing do not count), hashed.
fn fingerprint(text: &str, webhooks: &mut [super::WebhookConfig]) {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return;
    };
    let delivery = table
        .get("delivery")
        .map(|d| d.to_string())
        .unwrap_or_default();
    let tables = table.get("webhooks").and_then(|w| w.as_array());
    for (i, w) in webhooks.iter_mut().enumerate() {
        let own = tables
            .and_then(|t| t.get(i))
            .map(|t| t.to_string())
            .unwrap_or_default();
        w.fingerprint = hash(&format!("{own}\n{delivery}"));
    }
}

/// A path the configuration names must be a regular file: a FIFO or a device
/// (`/dev/zero`) would make `check` read forever.
pub(super) fn regular_file(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(format!("{} is not a regular file", path.display())),
        Err(e) => Err(format!("{} cannot be read: {e}", path.display())),
    }
}

/// The file's SHA-256, hex: what the status and a reload report, so that an operator
/// can tell which file a running clicktap has.
fn hash(text: &str) -> String {
    crate::hex::sha256(text.as_bytes())
}

fn proxy(f: ProxyFile, p: &mut Problems) -> Option<ProxyConfig> {
    let listen = p.check("proxy.listen", parse::listen_addr(&f.listen));
    let upstream = p.check("proxy.upstream", parse::upstream_addr(&f.upstream));
    if let (Some(listen), Some(upstream)) = (listen, upstream) {
        upstream_apart(upstream, &f.upstream, listen, p);
    }
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
    let forwarding = match f.forwarding.as_str() {
        "lean" => Some(Forwarding::Lean),
        "full" => Some(Forwarding::Full),
        other => {
            p.push(
                "proxy.forwarding",
                format!("{other:?} is not a forwarding path; allowed: \"lean\", \"full\""),
            );
            None
        }
    };
    bounds::count(p, "proxy.threads", f.threads, 1..=256);
    // More accept loops than threads to run them buys nothing.
    bounds::count(p, "proxy.listener_tasks", f.listener_tasks, 1..=64);
    // Zero would fail every connection and every answer; zero idle time is a choice
    // (no connection reused), and so are no grace period and no wind-down.
    let connect = bounds::duration(
        p,
        "proxy.upstream_connect_timeout",
        &f.upstream_connect_timeout,
        MILLI,
        None,
    );
    let read = bounds::duration(
        p,
        "proxy.upstream_read_timeout",
        &f.upstream_read_timeout,
        MILLI,
        None,
    );
    let idle = p.check(
        "proxy.upstream_idle_timeout",
        parse::duration(&f.upstream_idle_timeout),
    );
    // A visitor's head and body have a total deadline and a size bound (nginx's
    // defaults: client_header_timeout 60 s, large_client_header_buffers 4 x 8k).
    let request = bounds::duration(
        p,
        "proxy.request_timeout",
        &f.request_timeout,
        MILLI,
        Some(Duration::from_secs(3600)),
    );
    let head = bounds::size(p, "proxy.max_request_head", &f.max_request_head, 1024);
    if head.is_some_and(|n| n > MAX_REQUEST_HEAD) {
        p.push(
            "proxy.max_request_head",
            format!(
                "{:?} is over 1MiB, the most Pingora reads",
                f.max_request_head
            ),
        );
    }
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
        let read = regular_file(ca).and_then(|()| {
            std::fs::read_to_string(ca).map_err(|e| format!("{} cannot be read: {e}", ca.display()))
        });
        match read {
            Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => {}
            Ok(_) => p.push(
                "proxy.upstream_ca",
                format!("{} holds no PEM certificate", ca.display()),
            ),
            Err(e) => p.push("proxy.upstream_ca", e),
        }
    }
    Some(ProxyConfig {
        listen: listen?,
        upstream: upstream?,
        upstream_sni: f.upstream_sni.unwrap_or(host),
        upstream_name: f.upstream,
        upstream_tls: f.upstream_tls,
        forwarding: forwarding?,
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
        request_timeout: request?,
        max_request_head: usize::try_from(head.filter(|n| *n <= MAX_REQUEST_HEAD)?).ok()?,
        grace_period: grace?,
        shutdown_timeout: shutdown?,
    })
}

/// The most `proxy.max_request_head` may be: Pingora reads no longer head.
const MAX_REQUEST_HEAD: u64 = 1 << 20;

/// Bounds of `enrich.poll_interval`: below a millisecond the threads would spin on an
/// empty channel; above a second clicks would wait in it longer than anyone expects
/// and a burst would fill it.
const POLL_MIN: Duration = Duration::from_millis(1);
const POLL_MAX: Duration = Duration::from_secs(1);

fn enrich(f: EnrichFile, p: &mut Problems) -> EnrichConfig {
    // The channel's slots and a batch's clicks are allocated up front, 472 bytes a
    // click on x86-64: at these bounds, about 500 MiB and 30 MiB.
    bounds::count(
        p,
        "enrich.channel_capacity",
        f.channel_capacity,
        1..=1 << 20,
    );
    bounds::count(p, "enrich.workers", f.workers, 1..=64);
    bounds::count(p, "enrich.batch_size", f.batch_size, 1..=1 << 16);
    let poll = bounds::duration(
        p,
        "enrich.poll_interval",
        &f.poll_interval,
        POLL_MIN,
        Some(POLL_MAX),
    );
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
    let unique_window = bounds::duration(
        p,
        "enrich.unique_window",
        &f.unique_window,
        Duration::ZERO,
        Some(UNIQUE_WINDOW_MAX),
    );
    let unique_max_bytes = bounds::size(
        p,
        "enrich.unique_max_bytes",
        &f.unique_max_bytes,
        UNIQUE_BYTES_MIN,
    )
    .filter(|n| {
        let fits = *n <= UNIQUE_BYTES_MAX;
        if !fits {
            p.push(
                "enrich.unique_max_bytes",
                format!("{:?} is over 16GiB", f.unique_max_bytes),
            );
        }
        fits
    });
    EnrichConfig {
        channel_capacity: f.channel_capacity,
        workers: f.workers,
        batch_size: f.batch_size,
        poll_interval: poll.unwrap_or(POLL_MIN),
        keep_raw_ip: f.keep_raw_ip,
        ipv4_prefix: f.ipv4_prefix,
        ipv6_prefix: f.ipv6_prefix,
        unique_window: unique_window.unwrap_or_default(),
        unique_max_bytes: unique_max_bytes.unwrap_or(UNIQUE_BYTES_MIN),
    }
}

/// Bounds of `enrich.unique_window`: past a month a "unique" click says little.
const UNIQUE_WINDOW_MAX: Duration = Duration::from_secs(30 * 86_400);

/// Bounds of `enrich.unique_max_bytes`: below 64 KiB (4,096 visitors) the table forgets
/// visitors within minutes on any real traffic; 16 GiB is a billion.
const UNIQUE_BYTES_MIN: u64 = 64 << 10;
const UNIQUE_BYTES_MAX: u64 = 16 << 30;

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
            let opened = regular_file(path).and_then(|()| {
                maxminddb::Reader::open_readfile(path)
                    .map(drop)
                    .map_err(|e| {
                        format!(
                            "{} cannot be opened as a MaxMind database: {e}",
                            path.display()
                        )
                    })
            });
            if let Err(e) = opened {
                let key = if databases.len() == 1 {
                    "geoip.database".to_string()
                } else {
                    format!("geoip.database[{i}]")
                };
                p.push(
                    key,
                    format!("{e} (set geoip.optional = true to start without it)"),
                );
            }
        }
    }
    let watch_interval = bounds::duration(
        p,
        "geoip.watch_interval",
        &f.watch_interval,
        Duration::from_millis(100),
        Some(Duration::from_secs(86_400)),
    );
    GeoipConfig {
        databases,
        optional: f.optional,
        watch: f.watch,
        watch_interval: watch_interval.unwrap_or(Duration::from_secs(60)),
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
    if max_bytes == Some(0) {
        p.push(
            "queue.max_bytes",
            format!("{:?} would refuse every event", f.max_bytes),
        );
    }
    let cache = p.check("queue.cache_size", parse::size(&f.cache_size));
    // Zero would remove every event at once, delivered or not.
    let retention = bounds::duration(p, "queue.retention", &f.retention, MILLI, None);
    let min_free = p.check("queue.min_free_bytes", parse::size(&f.min_free_bytes));
    let spool = p.check("queue.spool_bytes", parse::size(&f.spool_bytes));
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
        p.push("queue.max_events", "0 would refuse every event");
    }
    Some(QueueConfig {
        path,
        flush_interval: flush?,
        max_events: f.max_events,
        max_bytes: max_bytes?,
        when_full: when_full?,
        retention: retention?,
        cache_size: cache?,
        min_free_bytes: min_free?,
        spool_bytes: spool?,
    })
}

/// The longest stats retention: the rollups serve a dashboard, not an archive (the
/// events themselves go to webhooks), and a window over all of them reads every minute
/// record kept: 43,200 for 30 days.
const STATS_RETENTION_MAX: Duration = Duration::from_secs(30 * 24 * 3600);

fn stats(f: StatsFile, p: &mut Problems) -> StatsConfig {
    // Below a minute no minute would ever be kept whole.
    let retention = bounds::duration(
        p,
        "stats.retention",
        &f.retention,
        Duration::from_secs(60),
        Some(STATS_RETENTION_MAX),
    );
    StatsConfig {
        enabled: f.enabled,
        retention: retention.unwrap_or(Duration::from_secs(60)),
    }
}

/// How long attempts in flight may hold a stop: long enough for a slow receiver, short
/// enough for a service manager's stop timeout.
const STOP_TIMEOUT_MAX: Duration = Duration::from_secs(600);

/// clicktap reads at most this much of an answer (deliver/attempt.rs), so no more can
/// be kept of it.
const LOG_BODY_MAX: usize = 1 << 20;

/// The largest request body the delivery log keeps whole: larger ones keep their size
/// and hash only, so that one attempt's entry stays a small share of the log.
const LOG_SENT_BODY_MAX: usize = 64 << 10;

/// The smallest delivery log worth bounding: a few thousand attempts.
const LOG_MAX_BYTES_MIN: u64 = 1 << 20;
/// Room for a few hundred retries.
const STATE_MAX_BYTES_MIN: u64 = 64 << 10;

fn delivery(f: DeliveryFile, p: &mut Problems) -> DeliveryConfig {
    bounds::count(p, "delivery.threads", f.threads, 1..=64);
    if !(0..=19).contains(&f.nice) {
        p.push(
            "delivery.nice",
            format!("{} is not a nice value from 0 to 19", f.nice),
        );
    }
    bounds::count(
        p,
        "delivery.log_body_bytes",
        f.log_body_bytes,
        0..=LOG_BODY_MAX,
    );
    bounds::count(
        p,
        "delivery.log_body_max_bytes",
        f.log_body_max_bytes,
        0..=LOG_SENT_BODY_MAX,
    );
    // Zero would prune every attempt as soon as it is written.
    let log_retention =
        bounds::duration(p, "delivery.log_retention", &f.log_retention, MILLI, None);
    // Zero would make every idle webhook spin.
    let poll = bounds::duration(p, "delivery.poll_interval", &f.poll_interval, MILLI, None);
    let stop_timeout = bounds::duration(
        p,
        "delivery.stop_timeout",
        &f.stop_timeout,
        MILLI,
        Some(STOP_TIMEOUT_MAX),
    );
    let log_max_bytes = bounds::size(
        p,
        "delivery.log_max_bytes",
        &f.log_max_bytes,
        LOG_MAX_BYTES_MIN,
    );
    let state_max_bytes = bounds::size(
        p,
        "delivery.state_max_bytes",
        &f.state_max_bytes,
        STATE_MAX_BYTES_MIN,
    );
    // Webhooks are validated against this even when it has problems, so every value
    // has a stand-in; with problems, no Config is built from it.
    DeliveryConfig {
        allow_private_targets: f.allow_private_targets,
        allow_http: f.allow_http,
        log_retention: log_retention.unwrap_or(MILLI),
        log_body_bytes: f.log_body_bytes,
        log_body_max_bytes: f.log_body_max_bytes,
        threads: f.threads,
        nice: f.nice.clamp(0, 19) as i32,
        poll_interval: poll.unwrap_or(MILLI),
        stop_timeout: stop_timeout.unwrap_or(MILLI),
        log_max_bytes: log_max_bytes.unwrap_or(LOG_MAX_BYTES_MIN),
        state_max_bytes: state_max_bytes.unwrap_or(STATE_MAX_BYTES_MIN),
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

/// Only the `[admin]` table of a file, read leniently: the command line needs the
/// admin listener's address and token to reach the running clicktap, also (above all)
/// when the rest of the file has problems that a reload should report.
pub fn admin_only(text: &str, path: &Path) -> Result<AdminConfig, Problems> {
    let mut problems = Problems::new(path);
    let table = match toml::from_str::<toml::Table>(text) {
        Ok(t) => t,
        Err(e) => {
            problems.push("", syntax_error(text, &e));
            return Err(problems);
        }
    };
    let Some(section) = table.get("admin") else {
        problems.push(
            "admin",
            "no [admin] section: the command line talks to the running clicktap through its admin listener",
        );
        return Err(problems);
    };
    let file: AdminFile = match section.clone().try_into() {
        Ok(f) => f,
        Err(e) => {
            problems.push("admin", e.to_string());
            return Err(problems);
        }
    };
    match admin(file, &mut problems) {
        Some(a) if problems.is_empty() => Ok(a),
        _ => Err(problems),
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

/// An admin listener on the proxy's socket: clicktap would start with one of the two
/// missing.
fn admin_apart(admin: SocketAddr, listen: SocketAddr, p: &mut Problems) {
    if binds_overlap(admin, listen) {
        p.push(
            "admin.listen",
            format!(
                "\"{admin}\" is proxy.listen's address too (\"{listen}\"): one of the two \
                 listeners could not be opened"
            ),
        );
    }
}

/// An upstream that is the proxy itself: every request would loop until the upstream
/// timeouts end it. Connecting to a loopback or unspecified address reaches this
/// machine; any other address behind an unspecified listener is taken to be another
/// machine's.
fn upstream_apart(upstream: SocketAddr, written: &str, listen: SocketAddr, p: &mut Problems) {
    let up = upstream.ip().to_canonical();
    if binds_overlap(upstream, listen)
        && (up == listen.ip().to_canonical() || up.is_loopback() || up.is_unspecified())
    {
        p.push(
            "proxy.upstream",
            format!("{written:?} is proxy.listen (\"{listen}\"): clicktap would proxy to itself"),
        );
    }
}

/// Whether two listening addresses need the same socket: the same port on the same
/// address, or on an unspecified address covering the other. `0.0.0.0` covers every
/// IPv4 address; `[::]` covers every address, IPv4 included, since Linux binds it
/// dual-stack unless told otherwise. Port 0 asks for a free port and never collides.
fn binds_overlap(a: SocketAddr, b: SocketAddr) -> bool {
    let covers = |any: IpAddr, other: IpAddr| match any {
        IpAddr::V6(v6) => v6.is_unspecified(),
        IpAddr::V4(v4) => v4.is_unspecified() && other.is_ipv4(),
    };
    let (x, y) = (a.ip().to_canonical(), b.ip().to_canonical());
    a.port() == b.port() && a.port() != 0 && (x == y || covers(x, y) || covers(y, x))
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

#[cfg(test)]
mod tests {
    use super::binds_overlap;

    #[test]
    fn listeners_overlap_on_one_port_when_an_address_covers_the_other() {
        let o = |a: &str, b: &str| binds_overlap(a.parse().unwrap(), b.parse().unwrap());
        assert!(o("127.0.0.1:80", "127.0.0.1:80"));
        assert!(o("0.0.0.0:80", "127.0.0.1:80"));
        assert!(o("[::]:80", "127.0.0.1:80"));
        assert!(o("[::]:80", "[::1]:80"));
        assert!(o("[::ffff:127.0.0.1]:80", "127.0.0.1:80"));
        assert!(!o("0.0.0.0:80", "[::1]:80"), "0.0.0.0 is IPv4 only");
        assert!(!o("127.0.0.1:80", "[::1]:80"));
        assert!(!o("127.0.0.1:80", "127.0.0.2:80"));
        assert!(!o("0.0.0.0:80", "0.0.0.0:81"));
        assert!(
            !o("127.0.0.1:0", "127.0.0.1:0"),
            "port 0 is a fresh port each time"
        );
    }
}
