//! The real `clicktap relay` binary, started on a generated config with an admin
//! listener on a free loopback port, waited on through `/readyz`, stopped with real
//! signals.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::clicktap::{TOKEN, bin, free_port, metric_in, signal_and_wait};

pub struct Relay {
    pub child: Child,
    pub admin: SocketAddr,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl Relay {
    /// Writes `body` (a `[relay]` table, `[[webhooks]]` and the like) with an `[admin]`
    /// table and test-friendly `[delivery]` into `dir/<name>.toml`, starts the relay
    /// and waits until every webhook consumes.
    pub fn start(dir: &Path, name: &str, body: &str) -> Relay {
        let mut r = Relay::spawn(dir, name, body);
        r.wait_ready();
        r
    }

    /// Starts it without waiting.
    pub fn spawn(dir: &Path, name: &str, body: &str) -> Relay {
        Relay::spawn_env(dir, name, body, &[])
    }

    /// [`Relay::spawn`] with variables added to the relay's environment (`RUST_LOG`).
    pub fn spawn_env(dir: &Path, name: &str, body: &str, env: &[(&str, &str)]) -> Relay {
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let text = format!(
            "{body}\n[admin]\nlisten = \"{admin}\"\ntoken = \"{TOKEN}\"\n\n[log]\nlevel = \"info,clicktap=debug\"\n"
        );
        let text = if text.contains("[delivery]") {
            text
        } else {
            format!("{text}\n[delivery]\nallow_private_targets = true\nallow_http = true\n")
        };
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, text).unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(bin())
            .args(["relay", "--config"])
            .arg(&config)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start clicktap relay");
        Relay {
            child,
            admin,
            config,
            log,
        }
    }

    /// The status of `/readyz` (0 when nothing answers).
    pub fn readyz(&self) -> u16 {
        std::net::TcpStream::connect(self.admin)
            .map(|_| super::http_get(self.admin, "/readyz", &[]).0)
            .unwrap_or(0)
    }

    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.readyz() != 200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("relay exited ({status}):\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "relay not consuming in 30s:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn metrics(&self) -> String {
        let (status, body) = super::http_get(self.admin, "/metrics", &[]);
        assert_eq!(status, 200, "{body}");
        body
    }

    /// One metric's value (the sum over label sets matching `labels`).
    pub fn metric(&self, name: &str, labels: &str) -> f64 {
        metric_in(&self.metrics(), name, labels)
    }

    /// Messages this relay settled with `outcome` (delivered, retried, dead, ...).
    pub fn settled(&self, outcome: &str) -> f64 {
        self.metric(
            "clicktap_relay_messages_total",
            &format!("outcome=\"{outcome}\""),
        )
    }

    /// `/api/v1/status` with the test token.
    pub fn status(&self) -> serde_json::Value {
        let (status, body) = super::http_get(
            self.admin,
            "/api/v1/status",
            &[("Authorization", &format!("Bearer {TOKEN}"))],
        );
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        signal_and_wait(&mut self.child, "-TERM", &self.log)
    }

    /// Sends `signal` (`-HUP`) and waits (bounded) until the log says `logged`.
    pub fn signal(&self, signal: &str, logged: &str) {
        let pid = self.child.id().to_string();
        Command::new("kill").args([signal, &pid]).status().unwrap();
        super::wait_until(logged, Duration::from_secs(10), || {
            self.log_text().contains(logged)
        });
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}
