//! The real clicktap binary, started on free loopback ports with a generated config,
//! waited on through its admin listener, stopped with real signals.

use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-admin-token-0123456789";

/// A port nobody listens on right now, and that nothing else will be given while
/// clicktap starts on it: ports come from below the kernel's ephemeral range (which
/// `bind(:0)` and outgoing connections draw from), each handed out once per process.
/// A port released from `bind(:0)` could go to the next test server or connection
/// before clicktap binds it, and the harness would then talk to the wrong server.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (first, span) = (10_000, low.saturating_sub(10_000).max(1_000));
    // Each test binary starts at its own place, so two running at once rarely meet.
    let start = std::process::id() * 131 % span;
    for _ in 0..span {
        let port = (first + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span) as u16;
        // Taken on [::1] rules the port out; no IPv6 loopback at all does not.
        let v6_free = match std::net::TcpListener::bind(("::1", port)) {
            Ok(_) => true,
            Err(e) => e.kind() != std::io::ErrorKind::AddrInUse,
        };
        if v6_free && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port below {low}");
}

/// What goes into the config file besides the addresses the harness chooses.
#[derive(Clone, Default)]
pub struct Options {
    /// Lines under `[proxy]`.
    pub proxy: Vec<String>,
    pub enrich: Vec<String>,
    pub geoip: Vec<String>,
    pub queue: Vec<String>,
    pub delivery: Vec<String>,
    /// Whole sections after the rest (`[[webhooks]]`, `[[links]]`).
    pub tail: String,
    /// Listen on `[::1]` instead of `127.0.0.1`.
    pub ipv6: bool,
}

impl Options {
    /// `proxy.forwarding`: "lean" or "full".
    pub fn forwarding(self, path: &str) -> Self {
        self.proxy(&format!("forwarding = {path:?}"))
    }
    pub fn proxy(mut self, line: &str) -> Self {
        self.proxy.push(line.into());
        self
    }
    pub fn enrich(mut self, line: &str) -> Self {
        self.enrich.push(line.into());
        self
    }
    pub fn geoip(mut self, line: &str) -> Self {
        self.geoip.push(line.into());
        self
    }
    pub fn queue(mut self, line: &str) -> Self {
        self.queue.push(line.into());
        self
    }
    pub fn delivery(mut self, line: &str) -> Self {
        self.delivery.push(line.into());
        self
    }
    pub fn tail(mut self, text: &str) -> Self {
        self.tail.push_str(text);
        self.tail.push('\n');
        self
    }
}

pub struct Clicktap {
    pub child: Child,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub config: PathBuf,
    pub log: PathBuf,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_clicktap")
}

/// The project's own GeoIP test database.
pub fn test_city_db() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("geo/test/clicktap-test-city.mmdb")
}

pub fn write_config(
    dir: &Path,
    upstream: SocketAddr,
    o: &Options,
) -> (PathBuf, SocketAddr, SocketAddr) {
    let host = if o.ipv6 { "[::1]" } else { "127.0.0.1" };
    let proxy: SocketAddr = format!("{host}:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let lines = |v: &[String]| v.join("\n");
    // The harness's defaults, unless the test sets the same key.
    let with_defaults = |defaults: &[&str], own: &[String]| {
        let mut out: Vec<String> = defaults
            .iter()
            .filter(|d| {
                let key = d.split('=').next().unwrap().trim();
                !own.iter()
                    .any(|o| o.split('=').next().unwrap().trim() == key)
            })
            .map(|d| d.to_string())
            .collect();
        out.extend(own.iter().cloned());
        out.join("\n")
    };
    let text = format!(
        r#"[proxy]
listen = "{proxy}"
upstream = "{upstream}"
{}

[enrich]
{}

[geoip]
{}

[queue]
{}

[delivery]
{}

[admin]
listen = "{admin}"
token = "{TOKEN}"

[log]
level = "info,pingora_core=warn,pingora_proxy=warn"

{}
"#,
        with_defaults(
            &[r#"grace_period = "1s""#, r#"shutdown_timeout = "1s""#],
            &o.proxy
        ),
        lines(&o.enrich),
        lines(&o.geoip),
        with_defaults(
            &[&format!("path = \"{}\"", dir.join("queue").display())],
            &o.queue
        ),
        with_defaults(
            &[
                "allow_private_targets = true",
                "allow_http = true",
                r#"poll_interval = "10ms""#
            ],
            &o.delivery
        ),
        o.tail
    );
    let path = dir.join("clicktap.toml");
    std::fs::write(&path, text).unwrap();
    (path, proxy, admin)
}

impl Clicktap {
    /// Writes a config into `dir` and starts clicktap on it; returns once it is ready.
    pub fn start(dir: &Path, upstream: SocketAddr, o: &Options) -> Clicktap {
        let (config, proxy, admin) = write_config(dir, upstream, o);
        Clicktap::start_with(config, proxy, admin, dir)
    }

    pub fn start_with(
        config: PathBuf,
        proxy: SocketAddr,
        admin: SocketAddr,
        dir: &Path,
    ) -> Clicktap {
        let mut c = Clicktap::spawn(config, proxy, admin, dir, &[], &[]);
        c.wait_ready();
        c
    }

    /// [`Clicktap::start`] with variables added to clicktap's environment (an
    /// `LD_PRELOAD` shim, say).
    pub fn start_env(
        dir: &Path,
        upstream: SocketAddr,
        o: &Options,
        env: &[(&str, &str)],
    ) -> Clicktap {
        let (config, proxy, admin) = write_config(dir, upstream, o);
        let mut c = Clicktap::spawn(config, proxy, admin, dir, &[], env);
        c.wait_ready();
        c
    }

    fn spawn(
        config: PathBuf,
        proxy: SocketAddr,
        admin: SocketAddr,
        dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Clicktap {
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let log = dir.join(format!("clicktap-{n}.log"));
        let child = Command::new(bin())
            .args(["run", "--config"])
            .arg(&config)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start clicktap");
        Clicktap {
            child,
            proxy,
            admin,
            config,
            log,
        }
    }

    /// Starts a second clicktap on the same configuration with `--upgrade`; returns
    /// once it holds the queue (its admin API answers with its own pid and a queue).
    pub fn upgrade(&self, dir: &Path) -> Clicktap {
        let mut c = Clicktap::spawn(
            self.config.clone(),
            self.proxy,
            self.admin,
            dir,
            &["--upgrade"],
            &[],
        );
        let pid = c.child.id();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = c.child.try_wait() {
                panic!("the upgrade exited early with {status}:\n{}", c.log_text());
            }
            let (status, body) = super::http_get(
                self.admin,
                "/api/v1/status",
                &[("Authorization", &format!("Bearer {TOKEN}"))],
            );
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if status == 200 && v["pid"] == pid {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "the upgrade did not take over in 60s:\n{}",
                c.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs the command line against this clicktap: `clicktap ARGS --config FILE`;
    /// returns the exit code, stdout and stderr.
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("clicktap exited early with {status}:\n{}", self.log_text());
            }
            let proxy_up = std::net::TcpStream::connect(self.proxy).is_ok();
            let admin_up = std::net::TcpStream::connect(self.admin).is_ok();
            if proxy_up && admin_up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clicktap not ready in 30s:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One request through the proxy (`Host: sho.rt`, `Connection: close`, plus
    /// `headers`, each ending in CRLF); returns its status.
    pub fn click(&self, method_path: &str, headers: &str) -> u16 {
        let (method, path) = method_path.split_once(' ').unwrap_or(("GET", method_path));
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: sho.rt\r\n{headers}Connection: close\r\n\r\n"
        );
        let resp = super::raw_exchange(self.proxy, req.as_bytes());
        String::from_utf8_lossy(&resp)
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// A webhook's delivery log from the admin API.
    pub fn deliveries(&self, webhook: &str) -> Value {
        serde_json::from_str(&self.admin_get(&format!("/api/v1/webhooks/{webhook}/deliveries")))
            .unwrap()
    }

    /// A webhook's delivery log once it lists at least `n` attempts. The log is written
    /// behind the answers (within a second), so a test waits for it rather than racing it.
    pub fn wait_deliveries(&self, webhook: &str, n: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.deliveries(webhook);
            if log["deliveries"].as_array().is_some_and(|d| d.len() >= n) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "{webhook}: fewer than {n} entries in the delivery log: {log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.proxy, path)
    }

    /// Sends a signal and waits (bounded) for the exit.
    pub fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
        signal_and_wait(&mut self.child, signal, &self.log)
    }

    pub fn stop(&mut self) -> ExitStatus {
        self.signal_and_wait("-TERM")
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn admin_get(&self, path: &str) -> String {
        let (status, body) = super::http_get(
            self.admin,
            path,
            &[("Authorization", &format!("Bearer {TOKEN}"))],
        );
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// The newest `limit` stored events.
    pub fn events(&self, limit: usize) -> Vec<Value> {
        self.admin_get(&format!("/api/v1/events?limit={limit}"))
            .lines()
            .map(|l| serde_json::from_str(l).expect("event JSON"))
            .collect()
    }

    /// Waits (bounded) until at least `n` events are stored.
    pub fn wait_events(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.events(n.max(1) + 100);
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until `requests` requests were proxied and every captured click
    /// is accounted for (stored or dropped): the pipeline is idle.
    pub fn wait_settled(&self, requests: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = self.admin_get("/metrics");
            let proxied = metric_in(&m, "clicktap_proxy_requests_total", "");
            let captured = metric_in(&m, "clicktap_capture_clicks_total", "");
            let done = metric_in(&m, "clicktap_queue_appended_total", "")
                + metric_in(&m, "clicktap_queue_dropped_total", "");
            if proxied >= requests as f64 && done >= captured {
                return;
            }
            assert!(Instant::now() < deadline, "pipeline not settled:\n{m}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until every stored event is on disk, as a SIGKILL would find it.
    pub fn wait_durable(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = self.admin_get("/metrics");
            assert!(m.contains("clicktap_queue_unflushed_events "), "{m}");
            if metric_in(&m, "clicktap_queue_unflushed_events", "") == 0.0 {
                return;
            }
            assert!(Instant::now() < deadline, "queue not flushed in 20s:\n{m}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One metric's value (sum over label sets matching `labels`, e.g. `reason="full"`).
    pub fn metric(&self, name: &str, labels: &str) -> f64 {
        metric_in(&self.admin_get("/metrics"), name, labels)
    }
}

/// Sends `signal` to `child` and waits (bounded) for its exit; on a timeout the test
/// fails with the process's log.
pub fn signal_and_wait(child: &mut Child, signal: &str, log: &Path) -> ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill").args([signal, &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not exit after {signal}:\n{}",
            log.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn metric_in(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter(|l| labels.is_empty() || l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

impl Drop for Clicktap {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

/// Events printed by `clicktap events` for a stopped clicktap.
pub fn events_cli(config: &Path, limit: usize) -> Vec<Value> {
    try_events_cli(config, limit).unwrap_or_else(|e| panic!("clicktap events failed: {e}"))
}

/// `clicktap events`, or its standard error when it fails (the queue still held by a
/// process that is exiting, for one).
pub fn try_events_cli(config: &Path, limit: usize) -> Result<Vec<Value>, String> {
    let out = Command::new(bin())
        .args(["events", "--limit", &limit.to_string(), "--config"])
        .arg(config)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect())
}

/// `clicktap check` on `text`, written to a file in a fresh directory that is also the
/// working directory (where the default `queue.path` lands); returns the exit code and
/// standard error.
pub fn check_text(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clicktap.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(bin())
        .current_dir(dir.path())
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
