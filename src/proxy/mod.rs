//! The proxy: forwards every request to the shortener unchanged and, once a redirect
//! has been written back to the visitor, hands a [`RawClick`](crate::click::RawClick) to
//! enrichment.
//!
//! Two forwarding paths share the upstream, the forwarding headers and capture:
//! - [`lean`]: owns each visitor connection and forwards the ordinary HTTP/1 request
//!   (a method, an origin-form target, one `Host`, a body framed by one
//!   `Content-Length` or none) with pingora-core's HTTP/1 sessions and connection pool,
//!   keeping the upstream connection for the life of the visitor's connection;
//! - the full Pingora proxy (pingora-proxy, [`Proxy`] below), which takes everything
//!   else: HTTP/2, Upgrade and WebSocket, CONNECT, chunked request bodies,
//!   `Expect: 100-continue`, heads the lean path does not read. `proxy.forwarding =
//!   "full"` sends every request this way, through the same gate
//!   ([`head::route`]: a head whole within its deadline and size limit, invalid
//!   requests refused) first.

mod capture;
mod forwarded;
mod framing;
mod head;
pub mod lean;
mod resend;

use async_trait::async_trait;
use crossbeam_channel::Sender;
use pingora::prelude::*;
use pingora::protocols::Digest;
use pingora::protocols::http::ServerSession;
use pingora::protocols::l4::socket::SocketAddr;
use pingora::upstreams::peer::HttpPeer;
use std::net::IpAddr;
use std::sync::Arc;

use crate::click::RawClick;
use crate::config::ProxyConfig;
use crate::metrics::Metrics;
use capture::{Capture, Exchange};
use resend::may_send_again;

/// What both paths share; cloned once per path at start.
#[derive(Clone)]
pub struct Proxy {
    peer: HttpPeer,
    capture: Option<Capture>,
    /// Swapped whole by a reload; read with one atomic load per request.
    trusted: crate::live::Trusted,
    metrics: Arc<Metrics>,
}

impl Proxy {
    /// `tx` is `None` when capture is off: a plain proxy.
    pub fn new(
        cfg: &ProxyConfig,
        tx: Option<Sender<RawClick>>,
        trusted: crate::live::Trusted,
        pages: crate::live::Pages,
        metrics: Arc<Metrics>,
    ) -> Proxy {
        let mut peer = HttpPeer::new(cfg.upstream, cfg.upstream_tls, cfg.upstream_sni.clone());
        let o = &mut peer.options;
        o.connection_timeout = Some(cfg.upstream_connect_timeout);
        o.read_timeout = Some(cfg.upstream_read_timeout);
        o.write_timeout = Some(cfg.upstream_read_timeout);
        o.idle_timeout = Some(cfg.upstream_idle_timeout);
        o.verify_cert = cfg.upstream_verify;
        o.verify_hostname = cfg.upstream_verify;
        Proxy {
            peer,
            capture: tx.map(|tx| Capture::new(tx, &cfg.capture_statuses, pages)),
            trusted,
            metrics,
        }
    }

    /// `upstream_idle_timeout = "0s"`: no upstream connection is reused. The request
    /// says `Connection: close`, which ends the connection after its answer on either
    /// path (Pingora's pool would otherwise lend one out before a zero timeout fires).
    fn keeps_no_connection(&self) -> bool {
        self.peer.options.idle_timeout == Some(std::time::Duration::ZERO)
    }

    /// Counts a finished request and captures it when it is a wanted redirect.
    fn finished(&self, x: &Exchange<'_>) {
        self.metrics.proxy_requests.inc();
        if let Some(capture) = &self.capture {
            capture.take(x, &self.metrics);
        }
    }
}

fn ip_of(addr: Option<&SocketAddr>) -> Option<IpAddr> {
    match addr? {
        SocketAddr::Inet(a) => Some(a.ip()),
        _ => None,
    }
}

/// Whether the visitor's connection is TLS.
fn is_tls(digest: Option<&Digest>) -> bool {
    digest.is_some_and(|d| d.ssl_digest.is_some())
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(self.peer.clone()))
    }

    /// RFC 9110 section 15.2: no interim answer to an HTTP/1.0 visitor.
    async fn early_request_filter(&self, session: &mut Session, _ctx: &mut ()) -> Result<()> {
        if session.req_header().version == http::Version::HTTP_10
            && let ServerSession::H1(h1) = session.as_mut()
        {
            h1.set_ignore_info_resp(true);
        }
        Ok(())
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        _ctx: &mut (),
    ) -> Result<()> {
        // An absolute-form target (RFC 9112 section 3.2.2), whose authority Pingora has
        // checked against Host: the shortener gets the origin form and the authority as
        // Host, as nginx sends them. (Pingora keeps the target's bytes to send as they
        // came, and only its path in the URI.)
        if let Some(authority) = head::absolute_authority(upstream_request.raw_path()) {
            let authority = authority.to_string();
            let target = upstream_request
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str());
            let target = http::Uri::try_from(target).or_err(InvalidHTTPHeader, "target")?;
            upstream_request.set_uri(target);
            upstream_request.insert_header(http::header::HOST, authority)?;
        }
        if self.keeps_no_connection() {
            upstream_request.insert_header(http::header::CONNECTION, "close")?;
        }
        match ip_of(session.client_addr()) {
            Some(ip) => forwarded::add(
                upstream_request,
                ip,
                is_tls(session.digest()),
                &self.trusted,
            ),
            None => Ok(()),
        }
    }

    /// Answers framed for their visitor as on the lean path ([`framing`]); pingora-proxy
    /// has chunked an answer with no length already, and would send it so to an
    /// HTTP/1.0 visitor.
    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        _ctx: &mut (),
    ) -> Result<()> {
        // RFC 9110 section 15.2.2: a 101 only answers a request that asked to upgrade;
        // pingora-proxy would pass one on, and the connection with it.
        if upstream_response.status == http::StatusCode::SWITCHING_PROTOCOLS
            && !session.is_upgrade_req()
        {
            return Error::e_explain(InvalidHTTPHeader, "101 without Upgrade")
                .map_err(|e| e.into_up());
        }
        if framing::frame(session.req_header(), upstream_response)? {
            session.set_keepalive(None);
        }
        Ok(())
    }

    /// The same rule as the lean path's for sending a request again
    /// ([`may_send_again`]); pingora-proxy's own would also repeat a request whose
    /// answer head was cut short.
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<pingora::Error>,
        _ctx: &mut (),
        client_reused: bool,
    ) -> Box<pingora::Error> {
        let again = client_reused
            && session.response_written().is_none()
            && !session.as_ref().retry_buffer_truncated()
            && may_send_again(session.req_header(), &e);
        let mut e = e.more_context(format!("Peer: {peer}"));
        e.set_retry(again);
        e
    }

    /// A visitor closing the connection early (a browser tab closed, a load generator
    /// stopping) is not an error of the proxy's: logged at debug, not error.
    fn suppress_error_log(&self, _session: &Session, _ctx: &(), error: &pingora::Error) -> bool {
        use pingora::ErrorType::{ConnectionClosed, ReadError, WriteError};
        let downstream_gone = error.esource() == &pingora::ErrorSource::Downstream
            && matches!(error.etype(), ConnectionClosed | ReadError | WriteError);
        if downstream_gone {
            tracing::debug!(%error, "visitor closed the connection");
        }
        downstream_gone
    }

    /// Hot path: runs after the response is written.
    async fn logging(&self, session: &mut Session, _e: Option<&pingora::Error>, _ctx: &mut ()) {
        self.finished(&Exchange {
            req: session.req_header(),
            resp: session.response_written(),
            peer: ip_of(session.client_addr()),
            tls: is_tls(session.digest()),
        });
    }
}
