//! The lean forwarding path: a Pingora `ServerApp` that owns each visitor connection.
//!
//! It reads a request head into its own buffer and decides its route on the bytes
//! ([`head::route`]). An ordinary request is parsed by pingora-core's HTTP/1 server
//! session from those bytes (Pingora's own parsing and framing checks) and forwarded over
//! an HTTP/1 client session; anything else goes to the full Pingora proxy
//! (pingora-proxy), which reads the same bytes as the start of the connection. HTTP/2
//! (by ALPN) goes there whole.
//!
//! What it leaves out compared with pingora-proxy, measured as the cost that mattered
//! (`benches/lean_pingora.rs`): two tokio channels and a `try_join!` per request, a
//! trip through the shared upstream pool per request (a lock, a spawned idle-watch task),
//! the phase callbacks and their context. The upstream connection stays with the
//! visitor's connection while the visitor keeps sending; it goes back to Pingora's pool
//! when the visitor is idle for [`HOLD`] or leaves.

use async_trait::async_trait;
use bytes::BytesMut;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::connectors::{ConnectorOptions, TransportConnector};
use pingora::protocols::ALPN;
use pingora::protocols::Stream;
use pingora::protocols::http::ServerSession;
use pingora::protocols::http::error_resp::gen_error_response;
use pingora::protocols::http::v1::client::HttpSession as Upstream;
use pingora::protocols::http::v1::server::HttpSession as Visitor;
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use pingora::server::configuration::ServerConf;
use pingora::upstreams::peer::Peer;
use pingora::{Error, ErrorSource, ErrorType};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

use super::capture::Exchange;
use super::head::{self, Route};
use super::{Proxy, forwarded, ip_of, is_tls};

/// How long a visitor connection may wait between requests, and a head may take to
/// arrive; Pingora's own keep-alive for HTTP/1 visitors.
const KEEPALIVE: Duration = Duration::from_secs(60);

/// How long an idle visitor connection keeps its upstream connection.
const HOLD: Duration = Duration::from_secs(2);

/// Attempts of one request when the upstream connection it was sent on was a reused one
/// that turned out closed (the shortener's keep-alive ended first).
const ATTEMPTS: usize = 3;

/// The first read of a head; a longer head grows the buffer.
const HEAD_BUF: usize = 4096;

pub struct Lean {
    proxy: Proxy,
    full: Arc<HttpProxy<Proxy>>,
    transport: TransportConnector,
}

/// What a request's forwarding needs to know of its visitor and head, read once.
#[derive(Clone, Copy)]
struct Visit {
    peer: Option<IpAddr>,
    tls: bool,
    /// The head has fields of [`head::HOP_BY_HOP`] to remove.
    hop_by_hop: bool,
}

/// A visitor connection between requests: the stream, bytes already read from it (a
/// pipelined request), and the upstream connection it holds.
struct Conn {
    down: Stream,
    buf: BytesMut,
    up: Option<Stream>,
}

impl Lean {
    pub fn new(proxy: Proxy, full: HttpProxy<Proxy>, conf: &ServerConf) -> Lean {
        Lean {
            proxy,
            full: Arc::new(full),
            transport: TransportConnector::new(Some(ConnectorOptions::from_server_conf(conf))),
        }
    }

    fn release(&self, up: Option<Stream>) {
        if let Some(up) = up {
            let peer = &self.proxy.peer;
            self.transport
                .release_stream(up, peer.reuse_hash(), peer.options.idle_timeout);
        }
    }

    /// Waits for the next request head in `c.buf`; `None` when the visitor left, went
    /// quiet for [`KEEPALIVE`], or the service is stopping while a kept-alive connection
    /// waits for its next request. The `first` request of a connection is always read:
    /// a visitor whose connection was accepted gets an answer, even during a stop.
    async fn next_head(
        &self,
        c: &mut Conn,
        shutdown: &mut ShutdownWatch,
        first: bool,
    ) -> Option<Route> {
        let mut wait = tokio::time::Instant::now();
        let sleep = tokio::time::sleep_until(wait + if c.up.is_some() { HOLD } else { KEEPALIVE });
        tokio::pin!(sleep);
        loop {
            if !c.buf.is_empty() {
                match head::route(&c.buf) {
                    // A head that comes in pieces holds no upstream connection while
                    // it trickles in.
                    Route::Partial => self.release(c.up.take()),
                    route => return Some(route),
                }
            } else if !first && *shutdown.borrow() {
                return None;
            }
            if c.buf.capacity() - c.buf.len() < 512 {
                c.buf.reserve(HEAD_BUF);
            }
            let was_empty = c.buf.is_empty();
            tokio::select! {
                biased;
                read = c.down.read_buf(&mut c.buf) => match read {
                    Ok(n) if n > 0 => {
                        if was_empty {
                            wait = tokio::time::Instant::now();
                            sleep.as_mut().reset(wait + KEEPALIVE);
                        }
                    }
                    _ => return None,
                },
                _ = shutdown.changed(), if was_empty && !first => return None,
                () = &mut sleep => match c.up.take() {
                    Some(up) => {
                        self.release(Some(up));
                        sleep.as_mut().reset(wait + KEEPALIVE);
                    }
                    None => return None,
                },
            }
        }
    }

    /// The full Pingora proxy serves one request from the bytes read so far.
    async fn hand_over(self: &Arc<Self>, c: Conn, shutdown: &ShutdownWatch) -> Option<Conn> {
        self.proxy.metrics.proxy_full_path.inc();
        self.release(c.up);
        let mut session = ServerSession::new_http1(c.down);
        let keepalive = (!*shutdown.borrow()).then_some(KEEPALIVE.as_secs());
        session.set_keepalive(keepalive);
        session.set_pipelined_prefix(c.buf);
        let reused = self.full.process_new_http(session, shutdown).await?;
        let (down, _) = reused.consume();
        Some(Conn {
            down,
            buf: BytesMut::new(),
            up: None,
        })
    }

    /// Serves one ordinary request from the bytes read so far.
    async fn forward(&self, c: Conn, stopping: bool, hop_by_hop: bool) -> Option<Conn> {
        let mut ds = Visitor::new(c.down);
        ds.set_pipelining_enabled(true);
        ds.set_pipelined_prefix(c.buf);
        ds.set_read_timeout(Some(KEEPALIVE));
        ds.set_write_timeout(Some(KEEPALIVE));
        let mut up = c.up;
        match ds.read_request().await {
            Ok(Some(_)) => {}
            Ok(None) => {
                self.release(up);
                return None;
            }
            Err(e) => {
                // The head passed the lean check but not Pingora's: answered as the full
                // proxy answers it.
                tracing::debug!(error = %e, "unreadable request");
                if e.etype() == &ErrorType::InvalidHTTPHeader {
                    let _ = ds
                        .write_response_header(Box::new(gen_error_response(400)))
                        .await;
                }
                ds.shutdown().await;
                self.release(up);
                return None;
            }
        }
        if stopping {
            ds.set_server_keepalive(None);
        }
        let visit = Visit {
            peer: ip_of(ds.client_addr()),
            tls: is_tls(Some(ds.digest())),
            hop_by_hop,
        };
        if let Err(e) = self.exchange(&mut ds, &mut up, visit).await {
            self.failed(&mut ds, &e).await;
        }
        self.proxy.finished(&Exchange {
            req: ds.req_header(),
            resp: ds.response_written(),
            peer: visit.peer,
            tls: visit.tls,
        });
        match ds.reuse().await {
            Ok(Some(reusable)) => {
                let (down, prefix) = reusable.into_parts();
                Some(Conn {
                    down,
                    buf: prefix.unwrap_or_default(),
                    up,
                })
            }
            _ => {
                self.release(up);
                None
            }
        }
    }

    /// A request that could not be forwarded: answered as the full proxy answers it (502
    /// for the upstream's failures, nothing when the visitor is gone) and not kept alive.
    async fn failed(&self, ds: &mut Visitor, e: &Error) {
        use ErrorType::{ConnectionClosed, HTTPStatus, ReadError, WriteError};
        ds.set_server_keepalive(None);
        let code = match (e.etype(), e.esource()) {
            (HTTPStatus(code), _) => Some(*code),
            (ConnectionClosed | ReadError | WriteError, ErrorSource::Downstream) => None,
            (_, ErrorSource::Downstream) => Some(400),
            (_, ErrorSource::Upstream) => Some(502),
            _ => Some(500),
        };
        if *e.esource() == ErrorSource::Downstream {
            tracing::debug!(error = %e, "the visitor's side of the request failed");
        } else {
            tracing::warn!(error = %e, upstream = %self.proxy.peer, "request not forwarded");
        }
        if let Some(code) = code.filter(|_| ds.response_written().is_none()) {
            let resp = Box::new(gen_error_response(code));
            if ds.write_response_header(resp).await.is_ok() {
                let _ = ds.finish_body().await;
            }
        }
    }

    /// Forwards the request in `ds` and streams the answer back. A request sent on a
    /// reused upstream connection that fails before any answer is sent again on another
    /// (with the body read so far, when it was all kept), as pingora-proxy does.
    async fn exchange(
        &self,
        ds: &mut Visitor,
        up: &mut Option<Stream>,
        visit: Visit,
    ) -> pingora::Result<()> {
        let peer = &self.proxy.peer;
        let has_body = !ds.is_body_empty();
        if has_body {
            ds.enable_retry_buffering();
        }
        let mut attempt = 0;
        let mut us = loop {
            attempt += 1;
            let (stream, reused) = match up.take() {
                Some(s) => (s, true),
                None => self
                    .transport
                    .get_stream(peer)
                    .await
                    .map_err(Error::into_up)?,
            };
            let mut us = Upstream::new_with_options(stream, peer);
            us.read_timeout = peer.options.read_timeout;
            us.write_timeout = peer.options.write_timeout;
            match self.send(ds, &mut us, attempt > 1, visit).await {
                Ok(()) => break us,
                Err(e)
                    if reused
                        && attempt < ATTEMPTS
                        && *e.esource() == ErrorSource::Upstream
                        && ds.response_written().is_none()
                        && !ds.retry_buffer_truncated() =>
                {
                    tracing::debug!(error = %e, "reused upstream connection failed; sending again");
                }
                Err(e) => return Err(e),
            }
        };
        let Some(resp) = us.resp_header() else {
            return Error::e_explain(ErrorType::InvalidHTTPHeader, "no answer head");
        };
        let resp = Box::new(resp.clone());
        us.respect_keepalive();
        ds.write_response_header(resp)
            .await
            .map_err(Error::into_down)?;
        while let Some(b) = us.read_body_bytes().await.map_err(Error::into_up)? {
            ds.write_body(&b).await.map_err(Error::into_down)?;
        }
        ds.finish_body().await.map_err(Error::into_down)?;
        *up = us.reuse().await;
        Ok(())
    }

    /// Writes the request (and its body, `again` with what was read before) and reads
    /// the answer's head, passing interim (1xx) answers on.
    async fn send(
        &self,
        ds: &mut Visitor,
        us: &mut Upstream,
        again: bool,
        visit: Visit,
    ) -> pingora::Result<()> {
        let mut req = Box::new(ds.req_header().clone());
        req.set_version(http::Version::HTTP_11);
        if visit.hop_by_hop {
            for field in head::HOP_BY_HOP {
                req.remove_header(field);
            }
        }
        if let Some(ip) = visit.peer {
            forwarded::add(&mut req, ip, visit.tls, &self.proxy.trusted)?;
        }
        us.write_request_header(req).await.map_err(Error::into_up)?;
        if !ds.is_body_empty() {
            if again && let Some(sent) = ds.get_retry_buffer() {
                us.write_body(&sent).await.map_err(Error::into_up)?;
            }
            while !ds.is_body_done() {
                match ds.read_body_bytes().await.map_err(Error::into_down)? {
                    Some(b) => {
                        us.write_body(&b).await.map_err(Error::into_up)?;
                    }
                    None => break,
                }
            }
        }
        us.finish_body().await.map_err(Error::into_up)?;
        loop {
            us.read_response().await.map_err(Error::into_up)?;
            let status = us.resp_header().map(|r| r.status);
            match status {
                Some(s) if s == http::StatusCode::SWITCHING_PROTOCOLS => {
                    return Error::e_explain(ErrorType::InvalidHTTPHeader, "101 without Upgrade")
                        .map_err(Error::into_up);
                }
                Some(s) if s.is_informational() => {
                    if let Some(interim) = us.resp_header().cloned() {
                        let interim = Box::new(interim);
                        ds.write_response_header(interim)
                            .await
                            .map_err(Error::into_down)?;
                    }
                }
                _ => return Ok(()),
            }
        }
    }
}

#[async_trait]
impl ServerApp for Lean {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return ServerApp::process_new(&self.full, stream, shutdown).await;
        }
        let mut c = Conn {
            down: stream,
            buf: BytesMut::with_capacity(HEAD_BUF),
            up: None,
        };
        let mut watch = shutdown.clone();
        let mut first = true;
        loop {
            let route = self.next_head(&mut c, &mut watch, first).await;
            first = false;
            let next = match route {
                Some(Route::Lean { hop_by_hop }) => {
                    let stopping = *watch.borrow();
                    self.forward(c, stopping, hop_by_hop).await
                }
                Some(route) => {
                    tracing::trace!(?route, "to the full proxy");
                    self.hand_over(c, shutdown).await
                }
                None => {
                    self.release(c.up);
                    return None;
                }
            };
            c = next?;
        }
    }

    async fn cleanup(&self) {
        self.full.http_cleanup().await;
    }
}
