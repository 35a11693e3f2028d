//! The baseline clicktap is measured against: a Pingora 0.9 proxy that forwards every
//! request to one upstream and does nothing else (no forwarding headers, no capture,
//! no metrics).
//!
//! It takes the same Pingora settings clicktap takes from its `[proxy]` section, with
//! clicktap's defaults, so that "clicktap / bare Pingora" measures clicktap's own cost
//! and nothing else. Built as an example so that it is never shipped:
//! `cargo build --release --example bare-pingora`.
//!
//! ```text
//! bare-pingora --listen 127.0.0.1:8090 --upstream 127.0.0.1:8081 [--threads 2]
//!              [--work-stealing true] [--listener-tasks 1] [--keepalive-pool 1024]
//! ```
//! SIGTERM or SIGINT stops it at once (no grace period: nothing to drain).

use async_trait::async_trait;
use clap::Parser;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;
use std::net::SocketAddr;
use std::time::Duration;

/// clicktap's allocator and its options (src/alloc.rs; this baseline does not link
/// clicktap's library), so that the comparison measures clicktap's work, not malloc's.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 10] = b"narenas:2\0";

#[derive(Parser)]
struct Args {
    #[arg(long)]
    listen: SocketAddr,
    #[arg(long)]
    upstream: SocketAddr,
    /// clicktap's `proxy.threads`.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// clicktap's `proxy.work_stealing`.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    work_stealing: bool,
    /// clicktap's `proxy.listener_tasks`.
    #[arg(long, default_value_t = 1)]
    listener_tasks: usize,
    /// clicktap's `proxy.upstream_keepalive_pool`.
    #[arg(long, default_value_t = 1024)]
    keepalive_pool: usize,
}

struct Bare {
    peer: HttpPeer,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(self.peer.clone()))
    }
}

fn main() {
    let args = Args::parse();
    let conf = ServerConf {
        threads: args.threads,
        work_stealing: args.work_stealing,
        listener_tasks_per_fd: args.listener_tasks,
        upstream_keepalive_pool_size: args.keepalive_pool,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    // clicktap's peer options at their defaults (proxy.upstream_*_timeout).
    let mut peer = HttpPeer::new(args.upstream, false, String::new());
    peer.options.connection_timeout = Some(Duration::from_secs(2));
    peer.options.read_timeout = Some(Duration::from_secs(30));
    peer.options.idle_timeout = Some(Duration::from_secs(60));

    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        Bare { peer },
        "bare pingora",
    );
    proxy.add_tcp(&args.listen.to_string());
    server.add_service(proxy);
    server.run_forever();
}
