//! `clicktap demo`: clicktap with a toy shortener and a webhook receiver beside it, in
//! one process, so that the whole flow can be seen with curl and nothing else.
//!
//! The shortener answers `/gh`, `/rust` and `/docs` with redirects, `/` with a page
//! and anything else with 404, like a tiny YOURLS. The receiver prints every webhook
//! it gets to standard output. Both are Pingora services in clicktap's own server.

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

/// The toy shortener's links.
pub const LINKS: &[(&str, &str)] = &[
    ("/gh", "https://github.com/"),
    ("/rust", "https://www.rust-lang.org/"),
    ("/docs", "https://docs.rs/"),
];

pub struct Shortener;

#[async_trait]
impl ServeHttp for Shortener {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path();
        let builder = Response::builder().header("server", "demo-shortener");
        let (builder, body) = match LINKS.iter().find(|(slug, _)| *slug == path) {
            Some((_, to)) => (
                builder.status(StatusCode::FOUND).header("location", *to),
                Vec::new(),
            ),
            None if path == "/" => {
                let list: String = LINKS
                    .iter()
                    .map(|(s, to)| format!("{s} -> {to}\n"))
                    .collect();
                (builder.status(StatusCode::OK), list.into_bytes())
            }
            None => (
                builder.status(StatusCode::NOT_FOUND),
                b"no such link\n".to_vec(),
            ),
        };
        builder
            .header("content-length", body.len())
            .body(body)
            .unwrap_or_default()
    }
}

pub struct Receiver;

#[async_trait]
impl ServeHttp for Receiver {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = session.read_request_body().await {
            body.extend_from_slice(&chunk);
            if body.len() > 1 << 20 {
                break;
            }
        }
        println!(
            "demo receiver: {} {}\n{}",
            session.req_header().method,
            session.req_header().uri,
            String::from_utf8_lossy(&body)
        );
        Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Vec::new())
            .unwrap_or_default()
    }
}

/// What the demo prints at start: where to click and where to watch. The token is not
/// printed (it is a secret like any other); the file it is in is named.
pub fn announce(cfg: &crate::config::Config, receiver: std::net::SocketAddr) {
    println!(
        "clicktap demo: clicks through http://{}/gh",
        cfg.proxy.listen
    );
    println!("  webhooks arrive at the receiver on {receiver} (printed below)");
    if let Some(admin) = &cfg.admin {
        println!(
            "  dashboard: http://{}/ (sign in with admin.token from {})",
            admin.listen,
            cfg.source.display()
        );
    }
}
