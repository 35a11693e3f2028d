//! Webhook receivers: real HTTP servers on loopback whose answers a test scripts.

use super::server::{Handler, Reply, Seen, TestServer, handler, reply};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// A receiver answering request number `n` (from 0) with `script(n, request)`.
pub fn scripted<F, Fut>(script: F) -> TestServer
where
    F: Fn(usize, Seen) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    TestServer::start("127.0.0.1:0", numbered(script))
}

/// The handler of [`scripted`], to serve on an address of the test's choosing.
pub fn numbered<F, Fut>(script: F) -> Handler
where
    F: Fn(usize, Seen) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let n = Arc::new(AtomicUsize::new(0));
    let script = Arc::new(script);
    handler(move |s| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        let script = script.clone();
        async move { script(i, s).await }
    })
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

/// A receiver that answers `failing` until the test turns it to 200 with the flag it
/// hands back.
pub fn switchable(failing: u16) -> (TestServer, Arc<AtomicBool>) {
    let accept = Arc::new(AtomicBool::new(false));
    let a = accept.clone();
    let rx = scripted(move |_, _| {
        let ok = a.load(Ordering::SeqCst);
        async move {
            match ok {
                true => reply(200, &[], ""),
                false if (300..400).contains(&failing) => reply(failing, &[("Location", "/x")], ""),
                false => reply(failing, &[], "down"),
            }
        }
    });
    (rx, accept)
}

/// The path of the link a native-format request's event names.
pub fn link_path(s: &Seen) -> String {
    body_json(s)["link"]["path"]
        .as_str()
        .unwrap_or_else(|| panic!("no link path in {:?}", body_json(s)))
        .to_string()
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

/// Answers 200 with a body of `len` bytes (`x` repeated), made once and shared.
pub fn big(len: usize) -> TestServer {
    let body = bytes::Bytes::from(vec![b'x'; len]);
    scripted(move |_, _| {
        let body = body.clone();
        async move { reply(200, &[], body) }
    })
}

/// How many requests a receiver is answering at once, and the most it ever did.
#[derive(Default)]
pub struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl InFlight {
    pub fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
}

/// Like [`slow`], counting the requests it holds at once.
pub fn slow_counted(delay: Duration) -> (TestServer, Arc<InFlight>) {
    let gauge = Arc::new(InFlight::default());
    let g = gauge.clone();
    let rx = scripted(move |_, _| {
        let g = g.clone();
        async move {
            let now = g.now.fetch_add(1, Ordering::SeqCst) + 1;
            g.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            g.now.fetch_sub(1, Ordering::SeqCst);
            reply(200, &[], "ok")
        }
    });
    (rx, gauge)
}

/// A receiver that does not speak HTTP: a plain TCP listener that reads each request
/// and answers it with `answer`, raw, then closes the connection.
pub struct RawReceiver {
    pub addr: std::net::SocketAddr,
    connections: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RawReceiver {
    pub fn start(bind: &str, answer: &[u8]) -> RawReceiver {
        let listener = std::net::TcpListener::bind(bind).expect("bind raw receiver");
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (n, halt, answer) = (connections.clone(), stop.clone(), answer.to_vec());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let answer = answer.clone();
                let n = n.clone();
                std::thread::spawn(move || {
                    use std::io::Write;
                    // Read the request first: closing on unread bytes is a reset, which
                    // would test something else.
                    let _ = read_request(&mut conn);
                    let _ = conn.write_all(&answer);
                    n.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        RawReceiver {
            addr,
            connections,
            stop,
            thread: Some(thread),
        }
    }

    /// Connections answered so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for RawReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the stop and lets the port go.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one HTTP/1.1 request (head, then `Content-Length` bytes), bounded in time.
fn read_request(conn: &mut std::net::TcpStream) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return Ok(got);
            }
        }
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(got);
        }
        got.extend_from_slice(&buf[..n]);
    }
}
