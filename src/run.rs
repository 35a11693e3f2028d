//! `clicktap run`: wires the stages together, runs until a signal, then stops them in
//! flow order so that nothing captured is lost.
//!
//! Start order is the reverse of the flow (queue, enrichment, delivery, then the
//! proxy), so that a click can never be captured before something is there to take
//! it. Stop order follows the flow: the proxy stops taking requests and finishes those
//! in flight, enrichment drains the channel into the queue, delivery stops, the queue
//! is flushed.

use anyhow::Context;
use arc_swap::ArcSwapOption;
use pingora::proxy::http_proxy_service_with_name;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};
use pingora::services::listening::Service;
use std::sync::Arc;
use std::time::Duration;

use crate::admin::Admin;
use crate::config::Config;
use crate::enrich::{self, Enricher, GeoDb, GeoHandle};
use crate::keeper::Keeper;
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::queue::Queue;
use crate::shutdown::Signals;

/// Pingora's own settings, filled from clicktap's file rather than a second YAML one.
fn server_conf(cfg: &Config) -> ServerConf {
    let p = &cfg.proxy;
    ServerConf {
        threads: p.threads,
        work_stealing: p.work_stealing,
        listener_tasks_per_fd: p.listener_tasks,
        upstream_keepalive_pool_size: p.upstream_keepalive_pool,
        ca_file: p.upstream_ca.as_ref().map(|c| c.display().to_string()),
        grace_period_seconds: Some(p.grace_period.as_secs_f64().ceil() as u64),
        graceful_shutdown_timeout_seconds: Some(p.shutdown_timeout.as_secs_f64().ceil() as u64),
        ..ServerConf::default()
    }
}

/// Opens the configured GeoIP databases; a failure is one warning and no geo.
pub fn open_geo(cfg: &Config) -> GeoHandle {
    let handle: GeoHandle = Arc::new(ArcSwapOption::empty());
    if cfg.geoip.databases.is_empty() {
        tracing::warn!("no geoip.database configured: events carry no geo fields");
        return handle;
    }
    match GeoDb::open(&cfg.geoip.databases) {
        Ok(db) => {
            tracing::info!(databases = ?cfg.geoip.databases, "GeoIP loaded");
            handle.store(Some(Arc::new(db)));
        }
        Err(e) => tracing::warn!(error = %e, "GeoIP unavailable: events carry no geo fields"),
    }
    handle
}

/// Binds and releases an address, so that a port in use is a clear error now rather
/// than a failure inside Pingora's startup.
fn probe_listen(addr: std::net::SocketAddr, key: &str, cfg: &Config) -> anyhow::Result<()> {
    std::net::TcpListener::bind(addr)
        .map(drop)
        .with_context(|| format!("{}: {key}: cannot listen on {addr}", cfg.source.display()))
}

/// Addresses of the demo's own services, for `clicktap demo`.
pub struct Demo {
    pub receiver: std::net::SocketAddr,
}

pub fn run(cfg: Config, demo: Option<Demo>) -> anyhow::Result<()> {
    let live = Arc::new(crate::live::Live::new(cfg.clone()));
    if let Some(d) = &demo {
        probe_listen(
            cfg.proxy.upstream,
            "proxy.upstream (the demo shortener)",
            &cfg,
        )?;
        probe_listen(d.receiver, "the demo receiver", &cfg)?;
    }
    probe_listen(cfg.proxy.listen, "proxy.listen", &cfg)?;
    if let Some(a) = &cfg.admin {
        probe_listen(a.listen, "admin.listen", &cfg)?;
    }
    let metrics = Arc::new(Metrics::new());
    let queue = Queue::open(&cfg.queue, metrics.clone())
        .with_context(|| format!("{}: queue.path", cfg.source.display()))?;
    tracing::info!(
        path = %cfg.queue.path.display(),
        depth = queue.depth(),
        next_seq = queue.head(),
        "queue open"
    );

    let (tx, workers) = if cfg.proxy.capture {
        let (tx, rx) = crossbeam_channel::bounded(cfg.enrich.channel_capacity);
        let enricher = Enricher::new(
            &cfg.enrich,
            cfg.proxy.trusted_proxies.clone(),
            open_geo(&cfg),
        );
        let workers = enrich::start(
            &cfg.enrich,
            cfg.queue.flush_interval,
            rx,
            queue.clone(),
            Arc::new(enricher),
            metrics.clone(),
        )
        .context("cannot start the enrichment threads")?;
        (Some(tx), Some(workers))
    } else {
        tracing::info!("proxy.capture = false: proxying only, nothing is captured");
        (None, None)
    };
    let delivery = crate::deliver::start(&cfg, queue.clone(), metrics.clone())
        .context("cannot start delivery")?;
    let keeper = Keeper::start(queue.clone(), metrics.clone(), Duration::from_secs(10))
        .context("cannot start the queue keeper")?;

    let mut server = Server::new_with_opt_and_conf(None, server_conf(&cfg));
    server.bootstrap();
    let mut proxy = http_proxy_service_with_name(
        &server.configuration,
        Proxy::new(&cfg.proxy, tx, metrics.clone()),
        "clicktap proxy",
    );
    proxy.add_tcp(&cfg.proxy.listen.to_string());
    server.add_service(proxy);
    if let Some(a) = &cfg.admin {
        let mut admin = Service::new(
            "clicktap admin".to_string(),
            Admin::new(
                live.clone(),
                metrics.clone(),
                queue.clone(),
                delivery.handle(),
            ),
        );
        admin.add_tcp(&a.listen.to_string());
        server.add_service(admin);
    }
    if let Some(d) = &demo {
        let mut shortener = Service::new("demo shortener".to_string(), crate::demo::Shortener);
        shortener.add_tcp(&cfg.proxy.upstream.to_string());
        server.add_service(shortener);
        let mut receiver = Service::new("demo receiver".to_string(), crate::demo::Receiver);
        receiver.add_tcp(&d.receiver.to_string());
        server.add_service(receiver);
        tracing::info!(shortener = %cfg.proxy.upstream, receiver = %d.receiver, "demo services up");
    }
    tracing::info!(
        listen = %cfg.proxy.listen,
        upstream = %cfg.proxy.upstream_name,
        admin = ?cfg.admin.as_ref().map(|a| a.listen),
        webhooks = cfg.webhooks.len(),
        "clicktap running"
    );
    server.run(RunArgs {
        shutdown_signal: Box::new(Signals),
    });

    tracing::info!("proxy stopped; draining captured clicks");
    if let Some(w) = workers {
        w.drain_and_stop();
    }
    delivery.stop();
    keeper.stop();
    queue.flush().context("final queue flush")?;
    tracing::info!(
        captured = metrics.capture_clicks.get(),
        dropped = metrics.capture_dropped_full.get() + metrics.capture_dropped_closed.get(),
        stored = metrics.queue_appended.get(),
        next_seq = queue.head(),
        "clicktap stopped"
    );
    Ok(())
}
