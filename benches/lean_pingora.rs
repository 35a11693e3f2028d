//! An experiment, not a product: how much of a Pingora proxy's cost per request is
//! pingora-proxy's machinery, and how much is Pingora's HTTP/1 layer and tokio?
//! (What it found became clicktap's lean forwarding path, `src/proxy/lean.rs`, which
//! adds what this leaves out below.)
//!
//! This proxy uses pingora-core only: a `ServerApp` that owns each visitor connection,
//! parses requests with Pingora's HTTP/1 server session and forwards them over one
//! upstream connection of its own, kept for the life of the visitor connection. What it
//! leaves out, compared with `bare_pingora.rs` (pingora-proxy): the two tokio channels
//! and the `try_join!` of a downstream and an upstream half per request, the shared
//! upstream connection pool (a lock, an `Arc<Mutex<Stream>>` and a spawned idle-watch
//! task each time a connection is put back), the retry buffer, the phase callbacks and
//! their per-request context. It keeps header parsing and serialising, the case-
//! preserving header maps and the request header clone.
//!
//! Limits that make it unfit to ship as is: no pool (one upstream connection per
//! visitor connection), no timeouts, no retries, no Upgrade/CONNECT, no error pages.
//!
//! `lean-pingora --listen ADDR --upstream ADDR [--threads N] [--work-stealing B]`

use async_trait::async_trait;
use clap::Parser;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::protocols::http::v1::client::HttpSession as Upstream;
use pingora::protocols::http::v1::server::HttpSession as Downstream;
use pingora::server::configuration::ServerConf;
use pingora::server::{Server, ShutdownWatch};
use pingora::services::listening::Service;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    listen: SocketAddr,
    #[arg(long)]
    upstream: SocketAddr,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    work_stealing: bool,
}

struct Lean {
    upstream: SocketAddr,
}

impl Lean {
    async fn connect(&self) -> Option<Stream> {
        let tcp = tokio::net::TcpStream::connect(self.upstream).await.ok()?;
        tcp.set_nodelay(true).ok()?;
        Some(Box::new(pingora::protocols::l4::stream::Stream::from(tcp)))
    }

    /// One request: forward it, stream the answer back. Returns both connections
    /// when both can be reused.
    async fn exchange(&self, down: Stream, up: Option<Stream>) -> Option<(Stream, Option<Stream>)> {
        let mut ds = Downstream::new(down);
        ds.read_request().await.ok()??;
        ds.respect_keepalive();
        let up = match up {
            Some(s) => s,
            None => self.connect().await?,
        };
        let mut us = Upstream::new(up);
        us.write_request_header(Box::new(ds.req_header().clone()))
            .await
            .ok()?;
        while !ds.is_body_done() {
            match ds.read_body_bytes().await.ok()? {
                Some(b) => {
                    us.write_body(&b).await.ok()?;
                }
                None => break,
            }
        }
        us.finish_body().await.ok()?;
        us.read_response().await.ok()?;
        // Keep the upstream connection unless the origin said otherwise (the client
        // session starts with keep-alive off; pingora-proxy switches it on the same way).
        us.respect_keepalive();
        let resp = us.resp_header()?.clone();
        ds.write_response_header(Box::new(resp)).await.ok()?;
        while let Some(b) = us.read_body_bytes().await.ok()? {
            ds.write_body(&b).await.ok()?;
        }
        ds.finish_body().await.ok()?;
        let up = us.reuse().await;
        let (down, _) = ds.reuse().await.ok()??.into_parts();
        Some((down, up))
    }
}

#[async_trait]
impl ServerApp for Lean {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        _shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let (mut down, mut up) = (stream, None);
        loop {
            (down, up) = self.exchange(down, up.take()).await?;
        }
    }
}

fn main() {
    let args = Args::parse();
    let conf = ServerConf {
        threads: args.threads,
        work_stealing: args.work_stealing,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = Service::new(
        "lean pingora".to_string(),
        Lean {
            upstream: args.upstream,
        },
    );
    service.add_tcp(&args.listen.to_string());
    server.add_service(service);
    server.run_forever();
}
