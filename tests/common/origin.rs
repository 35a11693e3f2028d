//! A recording origin, for comparing what forwarding paths send upstream: a raw TCP
//! server that behaves request by request as the test scripts it (answers of any shape,
//! stray bytes, closes, stalls) and keeps the exact bytes it received on each
//! connection. A script is chosen by the request target's path, so every case of a
//! corpus registers its own paths once and one origin serves them all.
//!
//! Between cases the origin ends every connection from its side and waits until the
//! proxy has let go of each one (its end of the connection closes), so that no case
//! inherits another's upstream connections, poisoned or not.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The longest any read or write of the origin waits.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long nothing must arrive before a case counts as over: a request a proxy still
/// forwards after the visitor left belongs to the case that sent it, not the next.
const QUIET: Duration = Duration::from_millis(100);

/// One step of the origin's behaviour once it has read a request head.
#[derive(Clone, Debug)]
pub enum Act {
    /// Reads the request's body as its head frames it (`Content-Length` or chunked).
    Body,
    /// Writes these bytes.
    Write(Vec<u8>),
    Sleep(Duration),
    /// Closes the connection (a reset when unread bytes are waiting, as a real server's
    /// close is).
    Close,
    /// Reads no further request and answers nothing: keeps the connection, recording what
    /// arrives, until the peer closes it or the case ends.
    Hang,
}

/// The script of a path that has none: read the body, answer 200 with `ok`.
pub fn ok_script() -> Vec<Act> {
    vec![
        Act::Body,
        Act::Write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()),
    ]
}

/// What the origin received during one case.
#[derive(Debug, Default)]
pub struct Recorded {
    /// The bytes read on each connection, in the order the connections were accepted.
    pub conns: Vec<Vec<u8>>,
    /// Connections the proxy still held open when the origin gave up waiting for it to
    /// let go of them at the end of the case.
    pub lingering: usize,
}

#[derive(Default)]
struct Conn {
    /// The case it was accepted in.
    case: usize,
    bytes: Vec<u8>,
    heads: usize,
    open: bool,
    stream: Option<TcpStream>,
}

#[derive(Default)]
struct State {
    /// The case under way, counted from 0.
    case: usize,
    /// When a connection was last accepted or sent anything.
    active: Option<Instant>,
    /// Every connection accepted, by id.
    conns: Vec<Conn>,
}

impl State {
    fn current(&self) -> impl Iterator<Item = &Conn> {
        self.conns.iter().filter(move |c| c.case == self.case)
    }
}

struct Shared {
    routes: Vec<(String, Vec<Act>)>,
    state: Mutex<State>,
    changed: Condvar,
}

pub struct Origin {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Origin {
    /// Serves on a free loopback port; a request whose path starts with a route's prefix
    /// (the longest that matches) gets that route's script, any other [`ok_script`].
    pub fn start(routes: Vec<(String, Vec<Act>)>) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            routes,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let accepting = shared.clone();
        // Detached: the listener lives as long as the test binary; loopback only.
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(s) = s else { continue };
                let id = {
                    let mut st = accepting.state.lock().unwrap();
                    let case = st.case;
                    st.active = Some(Instant::now());
                    st.conns.push(Conn {
                        case,
                        open: true,
                        stream: s.try_clone().ok(),
                        ..Conn::default()
                    });
                    st.conns.len() - 1
                };
                let shared = accepting.clone();
                std::thread::spawn(move || {
                    serve(&shared, id, s);
                    let mut st = shared.state.lock().unwrap();
                    if let Some(c) = st.conns.get_mut(id) {
                        c.open = false;
                        c.stream = None;
                    }
                    shared.changed.notify_all();
                });
            }
        });
        Origin { addr, shared }
    }

    /// Waits (bounded) until the origin has read `n` request heads in this case; returns
    /// whether it has.
    pub fn wait_heads(&self, n: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut st = self.shared.state.lock().unwrap();
        loop {
            if st.current().map(|c| c.heads).sum::<usize>() >= n {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self.shared.changed.wait_timeout(st, left).unwrap().0;
        }
    }

    /// Ends the case: waits (bounded) until the proxy has sent nothing for [`QUIET`],
    /// closes the origin's side of every connection still open, waits (bounded) until
    /// the proxy has closed its side too, and hands over what was received. The next
    /// case starts with no connection at all.
    pub fn finish_case(&self) -> Recorded {
        let deadline = Instant::now() + OP_TIMEOUT;
        let mut st = self.shared.state.lock().unwrap();
        // First, until the proxy has sent nothing for a while.
        while let Some(at) = st.active {
            let quiet_at = at + QUIET;
            let now = Instant::now();
            if now >= quiet_at || now >= deadline {
                break;
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, quiet_at - now)
                .unwrap()
                .0;
        }
        for c in st.current().filter(|c| c.open) {
            if let Some(s) = &c.stream {
                let _ = s.shutdown(Shutdown::Write);
            }
        }
        let deadline = Instant::now() + OP_TIMEOUT;
        while st.current().any(|c| c.open) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = self.shared.changed.wait_timeout(st, left).unwrap().0;
        }
        let lingering = st.current().filter(|c| c.open).count();
        for c in st.current().filter(|c| c.open) {
            if let Some(s) = &c.stream {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        let conns = st.current().map(|c| c.bytes.clone()).collect();
        st.case += 1;
        Recorded { conns, lingering }
    }
}

fn script_for(routes: &[(String, Vec<Act>)], target: &str) -> Vec<Act> {
    let path = target.split('?').next().unwrap_or(target);
    routes
        .iter()
        .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, acts)| acts.clone())
        .unwrap_or_else(ok_script)
}

/// A connection's reader: every byte read is recorded before it is looked at.
struct Reader<'a> {
    shared: &'a Shared,
    id: usize,
    s: TcpStream,
    buf: Vec<u8>,
}

impl Reader<'_> {
    /// Reads once more; false at the end of the stream, an error or the timeout.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.s.read(&mut chunk) {
            Ok(n @ 1..) => {
                self.buf.extend_from_slice(&chunk[..n]);
                let mut st = self.shared.state.lock().unwrap();
                st.active = Some(Instant::now());
                if let Some(c) = st.conns.get_mut(self.id) {
                    c.bytes.extend_from_slice(&chunk[..n]);
                }
                true
            }
            _ => false,
        }
    }

    /// The next request head, taken off the buffer.
    fn head(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..i + 4).collect();
                let mut st = self.shared.state.lock().unwrap();
                if let Some(c) = st.conns.get_mut(self.id) {
                    c.heads += 1;
                }
                self.shared.changed.notify_all();
                return Some(head);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    fn take(&mut self, n: usize) -> bool {
        while self.buf.len() < n {
            if !self.fill() {
                return false;
            }
        }
        self.buf.drain(..n);
        true
    }

    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).collect();
                return Some(String::from_utf8_lossy(&line[..i]).into_owned());
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// The body the head frames, read and dropped (the record keeps it).
    fn body(&mut self, head: &str) -> bool {
        let field = |name| super::exchange::field(head, name);
        if field("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let Some(line) = self.line() else {
                    return false;
                };
                let size = line.split(';').next().unwrap_or("").trim();
                let Ok(size) = usize::from_str_radix(size, 16) else {
                    return false;
                };
                if size == 0 {
                    // Trailers, up to the empty line.
                    loop {
                        match self.line() {
                            Some(l) if l.is_empty() => return true,
                            Some(_) => {}
                            None => return false,
                        }
                    }
                }
                if !self.take(size + 2) {
                    return false;
                }
            }
        }
        let len = field("content-length")
            .and_then(|v| v.split(',').next()?.trim().parse::<usize>().ok())
            .unwrap_or(0);
        self.take(len)
    }
}

fn serve(shared: &Shared, id: usize, s: TcpStream) {
    let _ = s.set_read_timeout(Some(OP_TIMEOUT));
    let _ = s.set_write_timeout(Some(OP_TIMEOUT));
    let mut r = Reader {
        shared,
        id,
        s,
        buf: Vec::new(),
    };
    while let Some(head) = r.head() {
        let head = String::from_utf8_lossy(&head).into_owned();
        let target = head.split(' ').nth(1).unwrap_or("").to_string();
        for act in script_for(&shared.routes, &target) {
            match act {
                Act::Body => {
                    if !r.body(&head) {
                        return;
                    }
                }
                Act::Write(bytes) => {
                    if r.s.write_all(&bytes).is_err() {
                        return;
                    }
                }
                Act::Sleep(d) => std::thread::sleep(d),
                Act::Close => return,
                Act::Hang => {
                    while r.fill() {}
                    return;
                }
            }
        }
    }
}
