//! Webhook receivers: real HTTP servers on loopback whose answers a test scripts.

use super::server::{Reply, Seen, TestServer, handler, reply};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A receiver answering request number `n` (from 0) with `script(n, request)`.
pub fn scripted<F, Fut>(script: F) -> TestServer
where
    F: Fn(usize, Seen) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let n = Arc::new(AtomicUsize::new(0));
    let script = Arc::new(script);
    TestServer::start(
        "127.0.0.1:0",
        handler(move |s| {
            let i = n.fetch_add(1, Ordering::SeqCst);
            let script = script.clone();
            async move { script(i, s).await }
        }),
    )
}

/// Answers 200 to everything.
pub fn ok() -> TestServer {
    scripted(|_, _| async { reply(200, &[], "ok") })
}

/// Answers `status` to everything.
pub fn always(status: u16) -> TestServer {
    scripted(move |_, _| async move { reply(status, &[], "nope") })
}

/// Waits `delay` before answering 200.
pub fn slow(delay: Duration) -> TestServer {
    scripted(move |_, _| async move {
        tokio::time::sleep(delay).await;
        reply(200, &[], "ok")
    })
}

/// The JSON body of a request.
pub fn body_json(s: &Seen) -> serde_json::Value {
    serde_json::from_slice(&s.body)
        .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", s.body))
}

/// The event ids a native-format request carried.
pub fn native_ids(s: &Seen) -> Vec<String> {
    let v = body_json(s);
    match v.get("events") {
        Some(list) => list
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect(),
        None => vec![v["id"].as_str().unwrap().to_string()],
    }
}
