//! The lean forwarding path: a Pingora `ServerApp` that owns each visitor connection.
//!
//! It reads a request head into its own buffer and decides its route on the bytes
//! ([`head::route`]): the gate every HTTP/1 head passes, on either forwarding path
//! (`proxy.forwarding = "full"` keeps the gate and hands every head on). An ordinary
//! request is parsed by pingora-core's HTTP/1 server session from those bytes (Pingora's
//! own parsing and framing checks) and forwarded over an HTTP/1 client session; anything
//! else goes to the full Pingora proxy (pingora-proxy), which reads the same bytes as the
//! start of the connection. HTTP/2 (by ALPN) goes there whole.
//!
//! What it leaves out compared with pingora-proxy, measured as the cost that mattered
//! (`benches/lean_pingora.rs`): two tokio channels and a `try_join!` per request, a
//! trip through the shared upstream pool per request (a lock, a spawned idle-watch task),
//! the phase callbacks and their context. The upstream connection stays with the
//! visitor's connection while the visitor keeps sending; it goes back to Pingora's pool
//! when the visitor is idle for [`HOLD`] or leaves.
//!
//! The rules it keeps, as pingora-proxy and nginx keep them:
//! - an upstream connection is reused only when nothing unread is on it and its last
//!   answer was fully framed ([`clean`], `Upstream::reuse`);
//! - a request is sent again only when it is idempotent (or carries `Idempotency-Key`)
//!   and the reused connection it went on failed before any byte of an answer
//!   ([`super::resend`]);
//! - every wait on a visitor has a deadline a trickle cannot extend: a head and a body
//!   must be whole within `proxy.request_timeout` of their first byte, and a body is
//!   read whole before the shortener hears of the request, so a slow visitor holds no
//!   upstream connection; each read from and write to the shortener is bounded by
//!   `proxy.upstream_read_timeout`.

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::capture::Exchange;
use super::head::{self, Route};
use super::{Proxy, forwarded, framing, ip_of, is_tls, may_send_again};
use crate::config::{Forwarding, ProxyConfig};

/// How long a visitor connection may wait between requests; Pingora's own keep-alive
/// for HTTP/1 visitors.
const KEEPALIVE: Duration = Duration::from_secs(60);

/// How long an idle visitor connection keeps its upstream connection.
const HOLD: Duration = Duration::from_secs(2);

/// How long a refused visitor's further bytes are read and dropped before the close.
const LINGER: Duration = Duration::from_secs(2);

/// Attempts of one request when the upstream connection it was sent on was a reused one
/// that turned out closed (the shortener's keep-alive ended first).
const ATTEMPTS: usize = 3;

/// The first read of a head; a longer head grows the buffer.
const HEAD_BUF: usize = 4096;

pub struct Lean {
    proxy: Proxy,
    full: Arc<HttpProxy<Proxy>>,
    transport: TransportConnector,
    /// `proxy.forwarding = "full"`: the gate only; every head goes to the full proxy.
    gate_only: bool,
    /// `proxy.request_timeout`: a head, and a body, whole within this of its first byte.
    request_timeout: Duration,
    /// `proxy.max_request_head`.
    max_head: usize,
    /// `proxy.upstream_idle_timeout` is not zero: upstream connections are kept.
    keep_up: bool,
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

/// Whether nothing waits to be read on an upstream connection kept since its last
/// answer: a byte there (an unsolicited answer, a body after a HEAD, 204 or 304) would
/// be read as the next request's answer, and a close means it is gone. One
/// non-blocking read, as Pingora's pool tests a connection it hands out.
fn clean(mut up: Stream) -> Option<Stream> {
    use std::future::Future;
    let mut byte = [0u8; 1];
    let pending = {
        let read = tokio::task::unconstrained(up.read(&mut byte));
        let mut read = std::pin::pin!(read);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        read.as_mut().poll(&mut cx).is_pending()
    };
    if !pending {
        tracing::debug!("a kept upstream connection had unread bytes or was closed; dropped");
    }
    pending.then_some(up)
}

impl Lean {
    pub fn new(proxy: Proxy, full: HttpProxy<Proxy>, conf: &ServerConf, cfg: &ProxyConfig) -> Lean {
        let keep_up = !proxy.keeps_no_connection();
        Lean {
            proxy,
            full: Arc::new(full),
            transport: TransportConnector::new(Some(ConnectorOptions::from_server_conf(conf))),
            gate_only: cfg.forwarding == Forwarding::Full,
            request_timeout: cfg.request_timeout,
            max_head: cfg.max_request_head,
            keep_up,
        }
    }

    fn release(&self, up: Option<Stream>) {
        if let Some(up) = up.filter(|_| self.keep_up) {
            let peer = &self.proxy.peer;
            self.transport
                .release_stream(up, peer.reuse_hash(), peer.options.idle_timeout);
        }
    }

    /// Waits for the next request head in `c.buf` and returns its route and when its
    /// first byte came; `None` when the visitor left, went quiet for [`KEEPALIVE`], did
    /// not finish a head within `request_timeout` of its first byte, or the service is
    /// stopping while a kept-alive connection waits for its next request. The `first`
    /// request of a connection is always read: a visitor whose connection was accepted
    /// gets an answer, even during a stop.
    async fn next_head(
        &self,
        c: &mut Conn,
        shutdown: &mut ShutdownWatch,
        first: bool,
    ) -> Option<(Route, Instant)> {
        let idle = Instant::now();
        // A pipelined head already begun counts from now.
        let mut began = (!c.buf.is_empty()).then_some(idle);
        // The head's deadline once it has begun (a trickle cannot move it), else the
        // hold of the upstream connection, else the keep-alive.
        let deadline = |up: bool, began: Option<Instant>| match began {
            Some(b) => b + self.request_timeout,
            None if up => idle + HOLD,
            None => idle + KEEPALIVE,
        };
        let mut at = deadline(c.up.is_some(), began);
        let sleep = tokio::time::sleep_until(at);
        tokio::pin!(sleep);
        loop {
            if !c.buf.is_empty() {
                match head::route(&c.buf, self.max_head) {
                    // A head that comes in pieces holds no upstream connection while
                    // it trickles in.
                    Route::Partial => self.release(c.up.take()),
                    route => return Some((route, began.unwrap_or(idle))),
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
                        began.get_or_insert_with(Instant::now);
                    }
                    _ => return None,
                },
                _ = shutdown.changed(), if was_empty && !first => return None,
                () = &mut sleep => {
                    if began.is_some() || c.up.is_none() {
                        return None;
                    }
                    self.release(c.up.take());
                }
            }
            let next = deadline(c.up.is_some(), began);
            if next != at {
                at = next;
                sleep.as_mut().reset(at);
            }
        }
    }

    /// The full Pingora proxy serves one request from the bytes read so far.
    async fn hand_over(self: &Arc<Self>, c: Conn, shutdown: &ShutdownWatch) -> Option<Conn> {
        if !self.gate_only {
            self.proxy.metrics.proxy_full_path.inc();
        }
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

    /// Answers a head the gate refused, and closes the connection: nothing of it
    /// reaches the shortener.
    async fn refuse(&self, c: Conn, code: u16, why: &'static str) {
        tracing::debug!(code, why, "request refused");
        self.release(c.up);
        let mut down = c.down;
        let reason = http::StatusCode::from_u16(code)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let answer =
            format!("HTTP/1.1 {code} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let write = async {
            down.write_all(answer.as_bytes()).await?;
            down.flush().await
        };
        if let Ok(Ok(())) = tokio::time::timeout(KEEPALIVE, write).await {
            linger(down).await;
        }
    }

    /// Serves one ordinary request from the bytes read so far; its head and body are
    /// due by `deadline`.
    async fn forward(
        &self,
        c: Conn,
        stopping: bool,
        hop_by_hop: bool,
        deadline: Instant,
    ) -> Option<Conn> {
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
        // RFC 9110 section 15.2: no interim answer to an HTTP/1.0 visitor.
        if ds.req_header().version == http::Version::HTTP_10 {
            ds.set_ignore_info_resp(true);
        }
        let visit = Visit {
            peer: ip_of(ds.client_addr()),
            tls: is_tls(Some(ds.digest())),
            hop_by_hop,
        };
        let result = match read_body(&mut ds, deadline).await {
            Ok(body) => self.exchange(&mut ds, &mut up, visit, body).await,
            Err(e) => Err(e),
        };
        let late_body = matches!(&result, Err(e) if e.etype() == &ErrorType::HTTPStatus(408));
        if let Err(e) = result {
            self.failed(&mut ds, &e).await;
        }
        self.proxy.finished(&Exchange {
            req: ds.req_header(),
            resp: ds.response_written(),
            peer: visit.peer,
            tls: visit.tls,
        });
        if late_body {
            self.release(up);
            linger(ds.into_inner()).await;
            return None;
        }
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
    /// for the upstream's failures, also after an interim answer; nothing when the
    /// visitor is gone) and not kept alive.
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
        let final_written = ds
            .response_written()
            .is_some_and(|r| !r.status.is_informational());
        if let Some(code) = code.filter(|_| !final_written) {
            let resp = Box::new(gen_error_response(code));
            if ds.write_response_header(resp).await.is_ok() {
                let _ = ds.finish_body().await;
            }
        }
    }

    /// Forwards the request in `ds` with its `body` and streams the answer back. A
    /// request sent on a reused upstream connection that failed before any byte of an
    /// answer is sent again on another when [`may_send_again`] allows it.
    async fn exchange(
        &self,
        ds: &mut Visitor,
        up: &mut Option<Stream>,
        visit: Visit,
        body: Option<Bytes>,
    ) -> pingora::Result<()> {
        let peer = &self.proxy.peer;
        let mut attempt = 0;
        let mut interim = false;
        let mut us = loop {
            attempt += 1;
            let (stream, reused) = match up.take().and_then(clean) {
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
            match self
                .send(ds, &mut us, body.as_deref(), visit, &mut interim)
                .await
            {
                Ok(()) => break us,
                Err(e)
                    if reused
                        && attempt < ATTEMPTS
                        && !interim
                        && ds.response_written().is_none()
                        && may_send_again(ds.req_header(), &e) =>
                {
                    tracing::debug!(error = %e, "reused upstream connection closed; sending again");
                }
                Err(e) => return Err(e),
            }
        };
        let Some(resp) = us.resp_header() else {
            return Error::e_explain(ErrorType::InvalidHTTPHeader, "no answer head");
        };
        let mut resp = Box::new(resp.clone());
        us.respect_keepalive();
        if framing::frame(ds.req_header(), &mut resp)? {
            ds.set_server_keepalive(None);
        }
        ds.write_response_header(resp)
            .await
            .map_err(Error::into_down)?;
        while let Some(b) = us.read_body_bytes().await.map_err(Error::into_up)? {
            // An empty read (a chunked answer's trailers) is no chunk: written, it would
            // be a second last-chunk, read as the start of the next answer.
            if !b.is_empty() {
                ds.write_body(&b).await.map_err(Error::into_down)?;
            }
        }
        ds.finish_body().await.map_err(Error::into_down)?;
        // Kept only when the answer was framed and read to its end with nothing after
        // it (`reuse` checks both); dropped, and so closed, otherwise.
        *up = if self.keep_up { us.reuse().await } else { None };
        Ok(())
    }

    /// Writes the request and its body and reads the answer's head, passing interim
    /// (1xx) answers on (`interim` says one came).
    async fn send(
        &self,
        ds: &mut Visitor,
        us: &mut Upstream,
        body: Option<&[u8]>,
        visit: Visit,
        interim: &mut bool,
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
        if !self.keep_up {
            req.insert_header(http::header::CONNECTION, "close")?;
        }
        us.write_request_header(req).await.map_err(Error::into_up)?;
        if let Some(body) = body {
            us.write_body(body).await.map_err(Error::into_up)?;
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
                    *interim = true;
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

/// Reads a request's body whole (at most [`head::MAX_BODY`], as the gate let through)
/// before the shortener hears of the request, so that a slow visitor holds no upstream
/// connection, by `deadline` whatever the pace of its bytes: nginx buffers a body the
/// same way. A body not whole in time is a 408.
async fn read_body(ds: &mut Visitor, deadline: Instant) -> pingora::Result<Option<Bytes>> {
    if ds.is_body_empty() {
        return Ok(None);
    }
    let read = async {
        let mut body = BytesMut::new();
        while let Some(b) = ds.read_body_bytes().await? {
            body.extend_from_slice(&b);
        }
        Ok::<_, Box<Error>>(body.freeze())
    };
    match tokio::time::timeout_at(deadline, read).await {
        Ok(body) => body.map(Some).map_err(Error::into_down),
        Err(_) => Error::e_explain(
            ErrorType::HTTPStatus(408),
            "request body not whole within proxy.request_timeout",
        )
        .map_err(Error::into_down),
    }
}

/// Closes a visitor's connection after a refusal, lingering as nginx does: what the
/// visitor still sends (the rest of an oversized head, a late body) is read and dropped
/// for up to [`LINGER`], for a close with unread bytes is a reset, which can destroy the
/// answer before the visitor reads it.
async fn linger(mut down: Stream) {
    if !matches!(
        tokio::time::timeout(KEEPALIVE, down.shutdown()).await,
        Ok(Ok(()))
    ) {
        return;
    }
    let drain = async {
        let mut scrap = [0u8; 4096];
        while matches!(down.read(&mut scrap).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Reads until `c.buf` holds `len` bytes, by `deadline`; `Err(true)` when the deadline
/// came first, `Err(false)` when the visitor left.
async fn read_to(c: &mut Conn, len: usize, deadline: Instant) -> Result<(), bool> {
    if c.buf.len() < len {
        c.buf.reserve(len - c.buf.len());
    }
    while c.buf.len() < len {
        match tokio::time::timeout_at(deadline, c.down.read_buf(&mut c.buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            Ok(_) => return Err(false),
            Err(_) => return Err(true),
        }
    }
    Ok(())
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
                Some((Route::Lean { hop_by_hop, .. }, began)) if !self.gate_only => {
                    let stopping = *watch.borrow();
                    let deadline = began + self.request_timeout;
                    self.forward(c, stopping, hop_by_hop, deadline).await
                }
                Some((Route::Lean { head, body, .. }, began)) => {
                    // The full proxy sends a head on before its body: an ordinary body
                    // is read whole first, by the same deadline as on the lean path.
                    let whole = head + body as usize;
                    let deadline = began + self.request_timeout;
                    match read_to(&mut c, whole, deadline).await {
                        Ok(()) => self.hand_over(c, shutdown).await,
                        Err(true) => {
                            self.refuse(c, 408, "request body not whole in time").await;
                            return None;
                        }
                        Err(false) => return None,
                    }
                }
                Some((Route::Refuse(code, why), _)) => {
                    self.refuse(c, code, why).await;
                    return None;
                }
                Some((Route::Partial, _)) | None => {
                    self.release(c.up);
                    return None;
                }
                Some((route, _)) => {
                    tracing::trace!(?route, "to the full proxy");
                    self.hand_over(c, shutdown).await
                }
            };
            c = next?;
        }
    }

    async fn cleanup(&self) {
        self.full.http_cleanup().await;
    }
}
