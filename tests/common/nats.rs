//! A real `nats-server` (Debian's package, 2.9.10) for the sink tests: JetStream on, its
//! store in a directory of the test's, on a free loopback port; stopped and started
//! again on the same port and store, and read back through a JetStream consumer.

#![allow(dead_code)]

use async_nats::jetstream::{self, consumer::pull, stream};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    store: PathBuf,
    log: PathBuf,
    /// `--user` and `--pass` the server requires, if any.
    auth: Option<(String, String)>,
    /// TLS required, with the test certificate: the CA file clients check it against.
    tls_ca: Option<PathBuf>,
    /// Arguments of a cluster member (its name and routes).
    cluster: Vec<String>,
    rt: tokio::runtime::Runtime,
}

/// One message read back from the stream.
#[derive(Debug, Clone)]
pub struct Read {
    pub subject: String,
    pub msg_id: Option<String>,
    pub event: serde_json::Value,
}

impl Nats {
    /// Starts a server with its store under `dir`; fails saying what to install when
    /// `nats-server` is missing.
    pub fn start(dir: &Path) -> Nats {
        Nats::start_with_auth(dir, None)
    }

    /// A server that requires this user and password.
    pub fn start_with_auth(dir: &Path, auth: Option<(&str, &str)>) -> Nats {
        Nats::start_full(dir, auth, false)
    }

    /// A server that requires TLS, with tests/data's certificate for 127.0.0.1.
    pub fn start_tls(dir: &Path) -> Nats {
        Nats::start_full(dir, None, true)
    }

    fn start_full(dir: &Path, auth: Option<(&str, &str)>, tls: bool) -> Nats {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let mut n = Nats {
            tls_ca: tls.then(|| data.join("upstream-ca.pem")),
            auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
            child: None,
            port: crate::common::free_port(),
            store: dir.join("nats-store"),
            log: dir.join("nats.log"),
            cluster: Vec::new(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        };
        n.restart();
        n
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls_ca.is_some() { "tls" } else { "nats" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The CA file of a TLS server.
    pub fn tls_ca(&self) -> Option<&Path> {
        self.tls_ca.as_deref()
    }

    /// `n` servers routed to each other in one cluster on loopback, JetStream on each,
    /// each with its store under `dir`; returns once each one's JetStream answers.
    pub fn start_cluster(dir: &Path, n: usize) -> Vec<Nats> {
        let routes: Vec<u16> = (0..n).map(|_| crate::common::free_port()).collect();
        let list = routes
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut servers: Vec<Nats> = (0..n)
            .map(|i| Nats {
                tls_ca: None,
                auth: None,
                child: None,
                port: crate::common::free_port(),
                store: dir.join(format!("nats-store-{i}")),
                log: dir.join(format!("nats-{i}.log")),
                cluster: vec![
                    "-n".into(),
                    format!("n{i}"),
                    "--cluster_name".into(),
                    "clicktap-test".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{}", routes[i]),
                    "--routes".into(),
                    list.clone(),
                ],
                rt: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap(),
            })
            .collect();
        // All first: a member alone has no JetStream quorum to answer with.
        for s in &mut servers {
            s.spawn();
        }
        for s in &servers {
            s.wait_ready();
        }
        servers
    }

    /// SIGKILL: the server ends at once, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Removes a consumer, as an operator (or a lost server) would.
    pub fn delete_consumer(&self, stream: &str, consumer: &str) {
        let js = self.context();
        self.rt
            .block_on(async {
                js.get_stream(stream)
                    .await?
                    .delete_consumer(consumer)
                    .await
                    .map(|_| ())
                    .map_err(async_nats::Error::from)
            })
            .expect("delete the consumer");
    }

    /// Starts the server again (same port, same store) and waits until JetStream
    /// answers.
    pub fn restart(&mut self) {
        self.spawn();
        self.wait_ready();
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "nats-server is running");
        // Debian installs it in /usr/sbin, which a user's PATH may lack.
        let bin = if Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        };
        let child = Command::new(bin)
            .args(["-js", "-sd"])
            .arg(&self.store)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-l"])
            .arg(&self.log)
            .args(self.tls_ca.iter().flat_map(|ca| {
                let data = ca.parent().unwrap();
                [
                    "--tls".to_string(),
                    "--tlscert".to_string(),
                    data.join("upstream-cert.pem").display().to_string(),
                    "--tlskey".to_string(),
                    data.join("upstream-key.pem").display().to_string(),
                ]
            }))
            .args(self.auth.iter().flat_map(|(u, p)| {
                [
                    "--user".to_string(),
                    u.clone(),
                    "--pass".to_string(),
                    p.clone(),
                ]
            }))
            .args(&self.cluster)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start nats-server ({e}): install Debian's package nats-server \
                     (apt-get install nats-server; bash .ci/setup does)"
                )
            });
        self.child = Some(child);
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let up: Result<(), String> = self.rt.block_on(async {
                let c = self.client().await.map_err(|e| e.to_string())?;
                // JetStream answers: a stream that is not there is a JetStream error,
                // not a failed request (and, in a cluster, not "temporarily unavailable"
                // while no meta leader is elected).
                match jetstream::new(c).get_stream("READINESS").await {
                    Ok(_) => Ok(()),
                    Err(e) => match e.kind() {
                        jetstream::context::GetStreamErrorKind::JetStream(j)
                            if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                        {
                            Ok(())
                        }
                        _ => Err(e.to_string()),
                    },
                }
            });
            let Err(e) = up else { return };
            assert!(
                Instant::now() < deadline,
                "nats-server not ready in 20s ({e}): {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGTERM, then waits for it).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    async fn client(&self) -> Result<async_nats::Client, async_nats::ConnectError> {
        let mut o = async_nats::ConnectOptions::new();
        if let Some((u, p)) = &self.auth {
            o = o.user_and_password(u.clone(), p.clone());
        }
        if let Some(ca) = &self.tls_ca {
            o = o.require_tls(true).add_root_certificates(ca.clone());
        }
        o.connect(self.url()).await
    }

    /// SIGSTOP: the server keeps its connections open and answers nothing.
    pub fn pause(&self) {
        let c = self.child.as_ref().expect("nats-server is running");
        unsafe { libc::kill(c.id() as i32, libc::SIGSTOP) };
    }

    /// SIGCONT after [`Nats::pause`].
    pub fn resume(&self) {
        let c = self.child.as_ref().expect("nats-server is running");
        unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
    }

    fn context(&self) -> jetstream::Context {
        self.rt
            .block_on(async { jetstream::new(self.client().await.expect("connect to nats")) })
    }

    /// Creates a stream as an operator would, before clicktap.
    pub fn create_stream(&self, config: stream::Config) {
        let js = self.context();
        self.rt
            .block_on(js.create_stream(config))
            .expect("create the stream");
    }

    /// Messages in the stream, 0 when it does not exist.
    pub fn count(&self, name: &str) -> u64 {
        let js = self.context();
        self.rt.block_on(async {
            match js.get_stream(name).await {
                Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
                Err(_) => 0,
            }
        })
    }

    /// The server name (`n0`, `n1`, ...) of the stream's leader in a cluster.
    pub fn stream_leader(&self, name: &str) -> Option<String> {
        let js = self.context();
        self.rt.block_on(async {
            let mut s = js.get_stream(name).await.ok()?;
            s.info().await.ok()?.cluster.clone()?.leader
        })
    }

    /// A consumer's settings as the server holds them.
    pub fn consumer_config(&self, stream: &str, consumer: &str) -> jetstream::consumer::Config {
        let js = self.context();
        self.rt.block_on(async {
            js.get_stream(stream)
                .await
                .expect("the stream exists")
                .consumer_info(consumer)
                .await
                .expect("the consumer exists")
                .config
        })
    }

    /// Publishes `payload` on `subject` (core NATS) and flushes.
    pub fn publish(&self, subject: &str, payload: &str) {
        self.rt.block_on(async {
            let c = self.client().await.expect("connect to nats");
            c.publish(subject.to_string(), payload.to_string().into())
                .await
                .expect("publish");
            c.flush().await.expect("flush");
        })
    }

    /// Bytes the stream stores.
    pub fn bytes(&self, name: &str) -> u64 {
        let js = self.context();
        self.rt.block_on(async {
            match js.get_stream(name).await {
                Ok(mut s) => s.info().await.map(|i| i.state.bytes).unwrap_or(0),
                Err(_) => 0,
            }
        })
    }

    /// The stream's settings.
    pub fn stream_config(&self, name: &str) -> stream::Config {
        let js = self.context();
        self.rt.block_on(async {
            js.get_stream(name)
                .await
                .expect("the stream exists")
                .info()
                .await
                .unwrap()
                .config
                .clone()
        })
    }

    /// Every message of the stream, read by an ephemeral pull consumer from the first.
    pub fn read_all(&self, name: &str) -> Vec<Read> {
        let js = self.context();
        self.rt.block_on(async {
            let stream = js.get_stream(name).await.expect("the stream exists");
            let total = stream.cached_info().state.messages as usize;
            let consumer = stream
                .create_consumer(pull::Config {
                    ack_policy: jetstream::consumer::AckPolicy::None,
                    ..Default::default()
                })
                .await
                .unwrap();
            let mut out = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while out.len() < total {
                assert!(
                    Instant::now() < deadline,
                    "read {} of {total} messages in 30s",
                    out.len()
                );
                let mut batch = consumer
                    .fetch()
                    .max_messages(1000)
                    .expires(Duration::from_millis(500))
                    .messages()
                    .await
                    .unwrap();
                while let Some(m) = batch.next().await {
                    let m = m.unwrap();
                    let msg_id = m
                        .headers
                        .as_ref()
                        .and_then(|h| h.get("Nats-Msg-Id"))
                        .map(|v| v.to_string());
                    out.push(Read {
                        subject: m.subject.to_string(),
                        msg_id,
                        event: serde_json::from_slice(&m.payload).expect("an event's JSON"),
                    });
                }
            }
            out
        })
    }
}

/// How many times each event id occurs in `read`.
pub fn id_counts(read: &[Read]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for r in read {
        *out.entry(r.event["id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    out
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
