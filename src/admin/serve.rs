//! How the admin listener takes a connection: Pingora's `ServeHttp` loop, less what it
//! would log of the request. When a head cannot be parsed, Pingora's error carries the
//! first 2 KiB of it, `Authorization: Bearer <admin.token>` and the session cookie
//! included, and its own loop logs that error as it is; this one logs what went wrong and
//! from where, answers 400, and never the bytes. HEAD is answered as GET without the
//! body.

use async_trait::async_trait;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use std::sync::Arc;

use super::Admin;

/// How long an idle connection is kept for its next request, in seconds.
const KEEPALIVE_SECS: u64 = 60;

#[async_trait]
impl HttpServerApp for Admin {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        match session.read_request().await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                let peer = session
                    .client_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                // `e` itself is not logged: its context is the raw head.
                let cause = e.cause.as_ref().map(|c| c.to_string()).unwrap_or_default();
                tracing::warn!(%peer, kind = e.etype.as_str(), %cause, "admin: unreadable request refused");
                let _ = session.respond_error(400).await;
                return None;
            }
        }
        session.set_keepalive((!*shutdown.borrow()).then_some(KEEPALIVE_SECS));
        // HEAD is answered as GET, with the same head and no body (RFC 9110, 9.3.2):
        // load balancers check health with it. The routes see a GET; the method is put
        // back before the answer is written, so that Pingora frames it as HEAD's.
        let head = session.req_header().method == http::Method::HEAD;
        if head {
            session.req_header_mut().set_method(http::Method::GET);
        }
        let (parts, body) = self.response(&mut session).await.into_parts();
        if head {
            session.req_header_mut().set_method(http::Method::HEAD);
        }
        let body = if head { Vec::new() } else { body };
        let head: ResponseHeader = parts.into();
        let written = match session.write_response_header(Box::new(head)).await {
            Ok(()) if body.is_empty() => Ok(()),
            Ok(()) => session.write_response_body(body.into(), true).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::debug!(
                kind = e.etype.as_str(),
                "admin: the answer could not be written"
            );
            return None;
        }
        let settings = HttpPersistentSettings::for_session(&session);
        match session.finish().await {
            Ok(reusable) => reusable.map(|s| ReusedHttpStream::from_reusable_stream(s, settings)),
            Err(e) => {
                tracing::debug!(
                    kind = e.etype.as_str(),
                    "admin: the request could not be finished"
                );
                None
            }
        }
    }
}
