//! The built-in origin for machines without nginx: a shortener that answers every
//! path with a 302 and a webhook sink that answers `/hook*` with 204, over HTTP/1.1
//! keep-alive. Also the HTTP server under `pace`'s receiver.
//!
//! With `--hook-log`, every `/hook*` request appends a line to that file before it is
//! answered, as the nginx hook server's access log does: the bench counts the lines
//! to know how many webhooks arrived (a counter inside this process would need a
//! second way to read it, and nginx has none per location).

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub type Reply = Response<Full<Bytes>>;

/// Serves `answer` on `listener` until the runtime is dropped. The body is read
/// whole before `answer` sees it.
pub async fn serve<F>(listener: tokio::net::TcpListener, answer: F)
where
    F: Fn(&http::request::Parts, Bytes) -> Reply + Send + Sync + 'static,
{
    let answer = Arc::new(answer);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let answer = answer.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: http::Request<Incoming>| {
                let answer = answer.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    Ok::<_, std::convert::Infallible>(answer(&parts, body))
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn shortener(parts: &http::request::Parts, hook_log: Option<&Mutex<std::fs::File>>) -> Reply {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut b = Response::builder();
    if path.starts_with("/hook") {
        if let Some(log) = hook_log
            && let Ok(mut f) = log.lock()
        {
            let _ = f.write_all(b"1\n");
        }
        b = b.status(StatusCode::NO_CONTENT);
    } else {
        b = b
            .status(StatusCode::FOUND)
            .header("Location", format!("https://example.com/dest{path}"));
    }
    b.body(Full::new(Bytes::new()))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

pub fn run(listen: SocketAddr, threads: usize, hook_log: Option<&Path>) -> anyhow::Result<()> {
    let hook_log = match hook_log {
        Some(p) => Some(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        )),
        None => None,
    };
    let hook_log = Arc::new(hook_log);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        serve(listener, move |parts, _body| {
            shortener(parts, hook_log.as_ref().as_ref())
        })
        .await;
        Ok(())
    })
}
