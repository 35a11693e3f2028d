//! A real HTTP/1.1 server on loopback for tests: hyper on its own runtime thread,
//! answering with a handler and recording every request it gets.

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: SocketAddr,
}

pub type Reply = Response<Full<Bytes>>;
pub type Handler = Arc<dyn Fn(Seen) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Serves `handler` on `bind` (`127.0.0.1:0` for any free port).
    pub fn start(bind: &str, handler: Handler) -> TestServer {
        TestServer::start_with(bind, handler, None)
    }

    /// The same over TLS, with the test certificate in tests/data (CN shortener.test).
    pub fn start_tls(bind: &str, handler: Handler) -> TestServer {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        clicktap::tls::install_provider();
        let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(data.join("upstream-cert.pem"))
                .unwrap()
                .map(|c| c.unwrap())
                .collect();
        let key = PrivateKeyDer::from_pem_file(data.join("upstream-key.pem")).unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        TestServer::start_with(
            bind,
            handler,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
    }

    fn start_with(
        bind: &str,
        handler: Handler,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> TestServer {
        let std_listener = std::net::TcpListener::bind(bind).expect("bind test server");
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let seen2 = seen.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, peer)) = accepted else { continue };
                            let handler = handler.clone();
                            let seen = seen2.clone();
                            let tls = tls.clone();
                            tokio::spawn(async move {
                                let svc = service_fn(move |req: http::Request<Incoming>| {
                                    let handler = handler.clone();
                                    let seen = seen.clone();
                                    async move {
                                        let (parts, body) = req.into_parts();
                                        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                                        let s = Seen { method: parts.method, uri: parts.uri, headers: parts.headers, body, peer };
                                        seen.lock().unwrap().push(s.clone());
                                        Ok::<_, std::convert::Infallible>(handler(s).await)
                                    }
                                });
                                let mut http = http1::Builder::new();
                                http.auto_date_header(false);
                                match tls {
                                    Some(acceptor) => {
                                        if let Ok(stream) = acceptor.accept(stream).await {
                                            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                                        }
                                    }
                                    None => {
                                        let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                                    }
                                }
                            });
                        }
                    }
                }
            });
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        TestServer {
            addr,
            seen,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (bounded) until at least `n` requests arrived; returns them.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<Seen> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let got = self.requests();
            if got.len() >= n || std::time::Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn reply(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
    // A fixed Date, as real shorteners send one, so that answers compare byte for byte.
    let mut b = Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("Date", "Tue, 01 Jan 2030 00:00:00 GMT");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(body.into())).unwrap()
}

pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Seen) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    Arc::new(move |s| Box::pin(f(s)))
}

/// A server on a fixed address that a test takes down and brings up again, as a
/// restarted shortener or receiver is: connections refused while it is down.
pub struct Switch {
    pub addr: SocketAddr,
    handler: Handler,
    server: Option<TestServer>,
    /// What it saw while up before.
    past: Vec<Seen>,
}

impl Switch {
    /// Down at first, on a port nobody listens on.
    pub fn down(port: u16, handler: Handler) -> Switch {
        Switch {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            handler,
            server: None,
            past: Vec::new(),
        }
    }

    /// Serving once this returns (the port is bound before).
    pub fn up(&mut self) {
        if self.server.is_none() {
            let bind = self.addr.to_string();
            self.server = Some(TestServer::start(&bind, self.handler.clone()));
        }
    }

    /// Refusing connections once this returns; what was open is closed.
    pub fn take_down(&mut self) {
        if let Some(s) = self.server.take() {
            self.past.extend(s.requests());
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Every request it saw, up after up.
    pub fn requests(&self) -> Vec<Seen> {
        let mut all = self.past.clone();
        all.extend(self.server.iter().flat_map(TestServer::requests));
        all
    }
}
