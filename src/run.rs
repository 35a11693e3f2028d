//! `clicktap run`: wires the stages together, runs until a signal, then stops them in
//! flow order so that nothing captured is lost.
//!
//! Start: the proxy and capture never wait for the queue. Normally the queue opens
//! first, then enrichment, delivery and the proxy, so that a click is never captured
//! before something is there to take it. In a binary upgrade (`--upgrade`) the old
//! process holds the queue while it drains, so the new one takes the listening sockets,
//! serves and captures at once (its events wait in memory), and opens the queue,
//! starts delivery and the keeper as soon as the old one lets go ([`crate::upgrade`]).
//!
//! Stop follows the flow: the proxy stops taking requests and finishes those in
//! flight, enrichment drains the channel into the queue, delivery stops (bounded by
//! `delivery.stop_timeout`), the stats rollup counts what it has read and stops, the
//! queue is flushed.

use anyhow::Context;
use arc_swap::{ArcSwap, ArcSwapOption};
use parking_lot::Mutex;
use pingora::apps::ServerApp;
use pingora::proxy::http_proxy;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server};
use pingora::services::listening::Service;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::admin::{Admin, Ready};
use crate::config::Config;
use crate::deliver::Delivery;
use crate::enrich::{self, Enricher, EnricherHandle, GeoHandle, TypeRules, UniqueTable};
use crate::keeper::Keeper;
use crate::live::{GeoWatch, Live, Pages, Running, Trusted};
use crate::logging::Logging;
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::proxy::lean::Lean;
use crate::queue::{Queue, QueueCell};
use crate::rollup::Rollup;
use crate::shutdown::Signals;
use crate::upgrade;

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
        upgrade_sock: upgrade::socket(&cfg.queue).display().to_string(),
        ..ServerConf::default()
    }
}

/// The proxy's service, `app` on `listen`, whichever forwarding path it is.
fn add_proxy<A: ServerApp + Send + Sync + 'static>(server: &mut Server, app: A, listen: &str) {
    let mut service = Service::new("clicktap proxy".to_string(), app);
    service.add_tcp(listen);
    server.add_service(service);
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

/// After its stop began, how long an upgrade's new process still waits for the old one
/// to release the queue, so that the events it holds in memory can be stored.
const OPEN_AFTER_STOP: Duration = Duration::from_secs(30);

/// How `clicktap run` was asked to start.
#[derive(Default)]
pub struct Options {
    pub demo: Option<Demo>,
    /// Take the listening sockets from the running clicktap (`--upgrade`).
    pub upgrade: bool,
    /// The log, whose level a reload changes; `None` in tests that do not install one.
    pub logging: Option<Arc<Logging>>,
    /// The executable and the arguments this process was started with, for an upgrade
    /// on SIGUSR2 (taken at start: a new binary installed over the file later replaces
    /// what `/proc/self/exe` names).
    pub exe: std::path::PathBuf,
    pub args: Vec<String>,
}

/// What is shared between the start of the stages that need the queue and the stop.
struct Shared {
    cfg: Config,
    metrics: Arc<Metrics>,
    live: Arc<Live>,
    cell: QueueCell,
    geo: GeoHandle,
    enricher: Option<EnricherHandle>,
    trusted: Trusted,
    pages: Pages,
    logging: Option<Arc<Logging>>,
    ready: Arc<OnceLock<Ready>>,
    alerts: Arc<crate::alert::Alerts>,
}

/// The stages that need the queue.
struct Backend {
    queue: Queue,
    delivery: Arc<Delivery>,
    sinks: crate::sink::Sinks,
    /// `None` with `stats.enabled = false`.
    rollup: Option<Rollup>,
    keeper: Keeper,
    geo_watch: Option<GeoWatch>,
}

impl Shared {
    /// Starts delivery, the keeper and the GeoIP watch on the open queue, and hands the
    /// queue to enrichment, the admin API and reloads.
    fn start_backend(&self, queue: Queue) -> anyhow::Result<Backend> {
        tracing::info!(
            path = %self.cfg.queue.path.display(),
            depth = queue.depth(),
            next_seq = queue.head(),
            "queue open"
        );
        self.cell.set(queue.clone());
        let delivery = Arc::new(
            crate::deliver::start(
                &self.cfg,
                queue.clone(),
                self.metrics.clone(),
                self.alerts.notices(),
            )
            .context("cannot start delivery")?,
        );
        let sinks = crate::sink::Sinks::start(&self.cfg.sinks, queue.clone(), self.metrics.clone())
            .context("cannot start the sinks")?;
        let rollup = if self.cfg.stats.enabled {
            Some(
                Rollup::start(&self.cfg.stats, queue.clone(), self.metrics.clone())
                    .context("cannot start the stats rollup")?,
            )
        } else {
            None
        };
        let keeper = Keeper::start(queue.clone(), self.metrics.clone(), Duration::from_secs(10))
            .context("cannot start the queue keeper")?;
        let geo_watch = GeoWatch::start(&self.cfg.geoip, self.geo.clone(), self.metrics.clone())
            .context("cannot start the GeoIP watch")?;
        self.live.started(Running {
            geo: self.geo.clone(),
            enricher: self.enricher.clone(),
            trusted: self.trusted.clone(),
            pages: self.pages.clone(),
            delivery: delivery.clone(),
            logging: self.logging.clone(),
            alerts: self.alerts.clone(),
        });
        let _ = self.ready.set(Ready {
            queue: queue.clone(),
            delivery: delivery.handle(),
            sinks: sinks.handle(),
        });
        upgrade::write_pid(&self.cfg.queue);
        Ok(Backend {
            queue,
            delivery,
            sinks,
            rollup,
            keeper,
            geo_watch,
        })
    }
}

pub fn run(cfg: Config, opts: Options) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let live = Arc::new(Live::new(cfg.clone(), metrics.clone()));
    crate::live::watch_signals(live.clone(), opts.exe.clone(), opts.args.clone())
        .context("cannot watch for SIGHUP and SIGUSR2")?;
    if !opts.upgrade {
        if let Some(d) = &opts.demo {
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
    }
    let geo: GeoHandle = Arc::new(ArcSwapOption::from(
        enrich::geo::load(&cfg.geoip).map(Arc::new),
    ));
    let trusted: Trusted = Arc::new(ArcSwap::from_pointee(cfg.proxy.trusted_proxies.clone()));
    let pages: Pages = Arc::new(ArcSwap::from_pointee(cfg.pages.clone()));
    let enricher: Option<EnricherHandle> = cfg.proxy.capture.then(|| {
        Arc::new(ArcSwap::from_pointee(
            Enricher::new(
                &cfg.enrich,
                cfg.proxy.trusted_proxies.clone(),
                geo.clone(),
                Some(Arc::new(UniqueTable::new(
                    cfg.enrich.unique_max_bytes,
                    &metrics,
                ))),
            )
            .with_types(TypeRules::new(&cfg)),
        ))
    });
    let alerts = Arc::new(
        crate::alert::Alerts::start(&cfg, metrics.clone()).context("cannot start alerts")?,
    );
    let shared = Arc::new(Shared {
        alerts: alerts.clone(),
        cfg: cfg.clone(),
        metrics: metrics.clone(),
        live: live.clone(),
        cell: QueueCell::new(),
        geo,
        enricher: enricher.clone(),
        trusted: trusted.clone(),
        pages: pages.clone(),
        logging: opts.logging.clone(),
        ready: Arc::new(OnceLock::new()),
    });

    // The queue, now; or, in an upgrade, once the old process lets go of it.
    let backend: Arc<Mutex<Option<Backend>>> = Arc::new(Mutex::new(None));
    // When the stop began (unset while running): an upgrade's opener keeps waiting for
    // the old process a while after it, then gives up. A monotonic instant, so that a
    // step of the wall clock neither ends the wait at once nor stretches it by a day.
    let stopping: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let opener = if opts.upgrade {
        upgrade::quit_old(&cfg.queue)?;
        let (shared, backend, stopping) = (shared.clone(), backend.clone(), stopping.clone());
        Some(
            std::thread::Builder::new()
                .name("clicktap-queue-open".into())
                .spawn(move || {
                    let stop = || {
                        stopping
                            .get()
                            .is_some_and(|t| t.elapsed() > OPEN_AFTER_STOP)
                    };
                    let opened =
                        upgrade::open_when_free(&shared.cfg.queue, shared.metrics.clone(), &stop)
                            .with_context(|| format!("{}: queue.path", shared.cfg.source.display()))
                            .and_then(|q| shared.start_backend(q));
                    match opened {
                        Ok(b) => *backend.lock() = Some(b),
                        Err(e) => tracing::error!(
                            "{e:#}; events wait in memory until the stop, then are lost"
                        ),
                    }
                })?,
        )
    } else {
        let queue = Queue::open(&cfg.queue, metrics.clone())
            .with_context(|| format!("{}: queue.path", cfg.source.display()))?;
        *backend.lock() = Some(shared.start_backend(queue)?);
        None
    };

    let (tx, workers) = match &enricher {
        Some(enricher) => {
            let (tx, rx) = crossbeam_channel::bounded(cfg.enrich.channel_capacity);
            let workers = enrich::start(
                &cfg.enrich,
                cfg.queue.flush_interval,
                rx,
                shared.cell.clone(),
                cfg.queue.spool_bytes as usize,
                enricher.clone(),
                metrics.clone(),
            )
            .context("cannot start the enrichment threads")?;
            (Some(tx), Some(workers))
        }
        None => {
            tracing::info!("proxy.capture = false: proxying only, nothing is captured");
            (None, None)
        }
    };

    let opt = Opt {
        upgrade: opts.upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(Some(opt), server_conf(&cfg));
    server.bootstrap();
    let proxy = Proxy::new(&cfg.proxy, tx, trusted, pages, metrics.clone());
    let full = http_proxy(&server.configuration, proxy.clone());
    let listen = cfg.proxy.listen.to_string();
    // Both forwarding paths read every HTTP/1 head through the lean path's gate.
    let lean = Lean::new(proxy, full, &server.configuration, &cfg.proxy);
    add_proxy(&mut server, lean, &listen);
    if let Some(a) = &cfg.admin {
        let mut admin = Service::new(
            "clicktap admin".to_string(),
            Admin::new(live.clone(), metrics.clone(), shared.ready.clone()),
        );
        admin.add_tcp(&a.listen.to_string());
        server.add_service(admin);
    }
    if let Some(d) = &opts.demo {
        let mut shortener = Service::new("demo shortener".to_string(), crate::demo::Shortener);
        shortener.add_tcp(&cfg.proxy.upstream.to_string());
        server.add_service(shortener);
        let mut receiver = Service::new("demo receiver".to_string(), crate::demo::Receiver);
        receiver.add_tcp(&d.receiver.to_string());
        server.add_service(receiver);
        tracing::info!(shortener = %cfg.proxy.upstream, receiver = %d.receiver, "demo services up");
        crate::demo::announce(&cfg, d.receiver);
    }
    tracing::info!(
        listen = %cfg.proxy.listen,
        upstream = %cfg.proxy.upstream_name,
        admin = %cfg.admin.as_ref().map_or("none".into(), |a| a.listen.to_string()),
        webhooks = cfg.webhooks.len(),
        upgrade = opts.upgrade,
        "clicktap running"
    );
    if opts.upgrade {
        crate::systemd::notify(&format!("MAINPID={}\nREADY=1", std::process::id()));
    } else {
        crate::systemd::notify("READY=1");
    }
    server.run(RunArgs {
        shutdown_signal: Box::new(Signals),
    });

    tracing::info!("proxy stopped; draining captured clicks");
    let _ = stopping.set(Instant::now());
    if let Some(o) = opener {
        let _ = o.join();
    }
    if let Some(w) = workers {
        w.drain_and_stop();
    }
    let Some(b) = backend.lock().take() else {
        anyhow::bail!("stopped before the queue opened");
    };
    b.delivery.stop();
    alerts.stop();
    b.sinks.stop();
    if let Some(r) = b.rollup {
        r.stop();
    }
    b.keeper.stop();
    if let Some(g) = b.geo_watch {
        g.stop();
    }
    b.queue.flush().context("final queue flush")?;
    upgrade::remove_pid(&cfg.queue);
    tracing::info!(
        captured = metrics.capture_clicks.get(),
        dropped = metrics.capture_dropped_full.get() + metrics.capture_dropped_closed.get(),
        stored = metrics.queue_appended.get(),
        next_seq = b.queue.head(),
        "clicktap stopped"
    );
    Ok(())
}
