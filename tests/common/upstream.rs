//! The shortener stand-in: redirects, pages, 404s, an echo, as a real HTTP server.

use super::server::{Handler, Seen, TestServer, handler, reply};

/// Routes:
/// - `/r/<slug>`: 302 to `https://example.com/<slug>`; `/p/<slug>` 301; `/t/<slug>` 307;
///   `/s/<slug>` 303; `/rel/<slug>` 302 to a relative `/landing/<slug>`; `/u8/<slug>` 302
///   to a `Location` that is not UTF-8 (`https://example.com/<slug>/` and the bytes FF FE)
/// - `/cookie`: 302 with two Set-Cookie headers
/// - `/ok`: 200 "hello"; `/echo`: 200 with the request body; anything else 404.
pub fn routes() -> Handler {
    handler(|s: Seen| async move {
        let path = s.uri.path().to_string();
        let slug = |prefix: &str| path.strip_prefix(prefix).map(str::to_string);
        if let Some(x) = slug("/r/") {
            return reply(
                302,
                &[
                    ("Location", &format!("https://example.com/{x}")),
                    ("X-Shortener", "test"),
                ],
                "",
            );
        }
        if let Some(x) = slug("/p/") {
            return reply(
                301,
                &[("Location", &format!("https://example.com/{x}"))],
                "",
            );
        }
        if let Some(x) = slug("/t/") {
            return reply(
                307,
                &[("Location", &format!("https://example.com/{x}"))],
                "",
            );
        }
        if let Some(x) = slug("/s/") {
            return reply(
                303,
                &[("Location", &format!("https://example.com/{x}"))],
                "",
            );
        }
        if let Some(x) = slug("/rel/") {
            return reply(302, &[("Location", &format!("/landing/{x}"))], "");
        }
        if let Some(x) = slug("/u8/") {
            let mut r = reply(302, &[], "");
            let location = [
                b"https://example.com/".as_slice(),
                x.as_bytes(),
                b"/\xff\xfe",
            ]
            .concat();
            r.headers_mut().insert(
                "location",
                http::HeaderValue::from_bytes(&location).unwrap(),
            );
            return r;
        }
        match path.as_str() {
            "/cookie" => reply(
                302,
                &[
                    ("Location", "https://example.com/c"),
                    ("Set-Cookie", "a=1; Path=/; HttpOnly"),
                    ("Set-Cookie", "b=2; Path=/"),
                ],
                "",
            ),
            "/ok" => reply(
                200,
                &[("Content-Type", "text/plain"), ("X-Big", &"v".repeat(6000))],
                "hello",
            ),
            "/echo" => {
                let len = s.body.len().to_string();
                reply(200, &[("X-Body-Len", &len)], s.body.clone())
            }
            _ => reply(404, &[("Content-Type", "text/plain")], "no such link"),
        }
    })
}

pub fn start() -> TestServer {
    TestServer::start("127.0.0.1:0", routes())
}

/// An upstream that answers with exact bytes over plain TCP: for answers a real HTTP
/// server refuses to write (a bare CR in a header, a folded line). It reads each request
/// head (up to 4 MiB), answers `answer(head)`, keeps the heads it read, and closes the
/// connection after each answer.
pub struct RawUpstream {
    pub addr: std::net::SocketAddr,
    heads: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RawUpstream {
    pub fn start(answer: impl Fn(&[u8]) -> Vec<u8> + Send + 'static) -> RawUpstream {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen, stopped) = (heads.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let Ok((mut s, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                };
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    // Only the newest bytes can complete the head.
                    let from = head.len().saturating_sub(3);
                    head.extend_from_slice(&buf[..n]);
                    let done = head[from..].windows(4).any(|w| w == b"\r\n\r\n");
                    if done || head.len() >= 4 << 20 {
                        break;
                    }
                }
                let answer = answer(&head);
                seen.lock().unwrap().push(head);
                let _ = s.write_all(&answer);
            }
        });
        RawUpstream {
            addr,
            heads,
            stop,
            thread: Some(thread),
        }
    }

    /// The request heads read so far, as bytes.
    pub fn heads(&self) -> Vec<Vec<u8>> {
        self.heads.lock().unwrap().clone()
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One request as [`Conversation`] or [`Scripted`] read it: the connection it came on
/// (numbered from 0 in order of accept), its head and its body (`Content-Length`
/// framing only).
#[derive(Clone, Debug)]
pub struct Heard {
    pub conn: usize,
    pub head: String,
    pub body: Vec<u8>,
}

impl Heard {
    /// The request line's target.
    pub fn target(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or("")
    }
}

/// One upstream connection as a [`Scripted`] script sees it.
pub struct Peer {
    pub conn: usize,
    pub stream: std::net::TcpStream,
    buf: Vec<u8>,
    log: std::sync::Arc<std::sync::Mutex<Vec<Heard>>>,
}

impl Peer {
    /// Reads the next request (head, and a body framed by `Content-Length`) and logs
    /// it; `None` when the connection closed or stalled for 10 s first.
    pub fn request(&mut self) -> Option<Heard> {
        use std::io::Read;
        let mut chunk = vec![0u8; 64 * 1024];
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match self.stream.read(&mut chunk) {
                Ok(n @ 1..) => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        let len = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        while self.buf.len() < end + len {
            match self.stream.read(&mut chunk) {
                Ok(n @ 1..) => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
        let body = self.buf[end..end + len].to_vec();
        self.buf.drain(..end + len);
        let h = Heard {
            conn: self.conn,
            head,
            body,
        };
        self.log.lock().unwrap().push(h.clone());
        Some(h)
    }

    /// Writes `bytes`; false when the connection is gone.
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        use std::io::Write;
        self.stream.write_all(bytes).is_ok()
    }
}

/// An upstream whose every connection runs `script` on a thread of its own: for odd
/// upstreams (answers sent unasked, connections closed mid-answer, interim answers
/// followed by nothing). The connection closes when the script returns.
pub struct Scripted {
    pub addr: std::net::SocketAddr,
    heard: std::sync::Arc<std::sync::Mutex<Vec<Heard>>>,
    conns: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Scripted {
    pub fn start(script: impl Fn(&mut Peer) + Send + Sync + 'static) -> Scripted {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let conns = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(script);
        let (log, count) = (heard.clone(), conns.clone());
        // Detached: the listener lives as long as the test binary; loopback only.
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(stream) = s else { continue };
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let conn = count.fetch_add(1, Ordering::Relaxed);
                let (log, script) = (log.clone(), script.clone());
                std::thread::spawn(move || {
                    let mut peer = Peer {
                        conn,
                        stream,
                        buf: Vec::new(),
                        log,
                    };
                    script(&mut peer);
                });
            }
        });
        Scripted { addr, heard, conns }
    }

    pub fn heard(&self) -> Vec<Heard> {
        self.heard.lock().unwrap().clone()
    }

    /// Requests heard whose target is `target`.
    pub fn heard_for(&self, target: &str) -> usize {
        self.heard().iter().filter(|h| h.target() == target).count()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.conns.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// An upstream that keeps connections alive, answering each request on a connection
/// with `answer(heard)` (exact bytes), and closing a connection after `per_conn`
/// answers without saying so first, as a server whose keep-alive limit or idle timeout
/// ends a connection does. `answer` returning `None` stops answering on that connection
/// and closes it.
pub struct Conversation(Scripted);

impl std::ops::Deref for Conversation {
    type Target = Scripted;
    fn deref(&self) -> &Scripted {
        &self.0
    }
}

impl Conversation {
    pub fn start(
        per_conn: usize,
        answer: impl Fn(&Heard) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> Conversation {
        Conversation(Scripted::start(move |peer| {
            for _ in 0..per_conn {
                let Some(h) = peer.request() else { return };
                match answer(&h) {
                    Some(a) if peer.send(&a) => {}
                    _ => return,
                }
            }
        }))
    }
}
