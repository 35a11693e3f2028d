//! Both ends of an exchange in a form two proxies can be compared on: a visitor's raw
//! connection that sends bytes at any pace and reads answers (status line, fields but
//! the proxy's own `Date`, body as framed, how it was framed, whether the connection
//! ended), every read bounded by a deadline; and the requests an origin received, cut
//! out of the bytes of a connection.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What a visitor got when it waited for an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    Answer {
        /// The status lines of interim (1xx) answers before it.
        interim: Vec<String>,
        status: String,
        /// `name: value`, names in lower case, in order; the proxy's `Date` left out.
        fields: Vec<String>,
        framing: Framing,
        body: String,
        /// The body ended as its framing says (not cut off by a close or the deadline).
        whole: bool,
    },
    /// The connection ended before a whole answer head; what came before it.
    Closed { partial: String },
    /// Nothing more than this came before the deadline.
    Silent { partial: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body by definition (an answer to HEAD, 204, 304).
    None,
    Length,
    Chunked,
    /// Delimited by the end of the connection.
    Close,
}

pub struct Visitor {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Visitor {
    pub fn connect(addr: SocketAddr) -> Visitor {
        let s = TcpStream::connect(addr).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        Visitor { s, buf: Vec::new() }
    }

    /// Sends `bytes`; a connection the proxy closed shows in the next read, not here.
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.s.write_all(bytes);
    }

    /// Sends `bytes` one at a time, `pause` apart: a slow sender.
    pub fn trickle(&mut self, bytes: &[u8], pause: Duration) {
        for b in bytes {
            if self.s.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(pause);
        }
    }

    pub fn shut(&mut self) {
        let _ = self.s.shutdown(Shutdown::Write);
    }

    /// Reads until at least `n` bytes are buffered (or the end, or the deadline).
    pub fn read_some(&mut self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.buf.len() < n && self.fill(deadline, usize::MAX) == Fill::Data {}
    }

    /// Reads one interim answer's head (a `100 Continue` asked for); what came instead
    /// when it is not one.
    pub fn interim(&mut self, within: Duration) -> Got {
        match self.head(Instant::now() + within, &[]) {
            Ok(head) => Got::Answer {
                interim: Vec::new(),
                status: head.lines().next().unwrap_or_default().to_string(),
                fields: Vec::new(),
                framing: Framing::None,
                body: String::new(),
                whole: true,
            },
            Err(got) => got,
        }
    }

    /// The next answer head, or what came instead (after the `interim` ones) by `deadline`.
    fn head(&mut self, deadline: Instant, interim: &[String]) -> Result<String, Got> {
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..i + 4).collect();
                return Ok(String::from_utf8_lossy(&head).into_owned());
            }
            let partial = lossy(&[interim.join("\n").as_bytes(), &self.buf].concat());
            match self.fill(deadline, usize::MAX) {
                Fill::Data => {}
                Fill::End => return Err(Got::Closed { partial }),
                Fill::Deadline => return Err(Got::Silent { partial }),
            }
        }
    }

    /// Reads one final answer, with the interim ones before it; `to_head` when it
    /// answers a HEAD. `slowly`: reads at most 16 KiB at a time, 10 ms apart.
    pub fn answer(&mut self, to_head: bool, within: Duration, slowly: bool) -> Got {
        let deadline = Instant::now() + within;
        let mut interim = Vec::new();
        loop {
            let head = match self.head(deadline, &interim) {
                Ok(head) => head,
                Err(got) => return got,
            };
            let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
            let status = lines.next().unwrap_or_default().to_string();
            let code: u16 = status.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
            if (100..200).contains(&code) && code != 101 {
                interim.push(status);
                continue;
            }
            let fields: Vec<String> = lines
                .map(|l| match l.split_once(':') {
                    Some((k, v)) => format!("{}: {}", k.trim().to_ascii_lowercase(), v.trim()),
                    None => l.to_string(),
                })
                .filter(|l| !l.starts_with("date: "))
                .collect();
            let field = |name: &str| {
                fields
                    .iter()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .map(str::to_ascii_lowercase)
            };
            let pace = if slowly { 16 * 1024 } else { usize::MAX };
            let (framing, body, whole) = if to_head || code == 204 || code == 304 {
                (Framing::None, Vec::new(), true)
            } else if field("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
                let (body, whole) = self.chunked(deadline, pace);
                (Framing::Chunked, body, whole)
            } else if let Some(len) = field("content-length").and_then(|v| v.parse().ok()) {
                let whole = self.fill_to(len, deadline, pace);
                let n = len.min(self.buf.len());
                (Framing::Length, self.buf.drain(..n).collect(), whole)
            } else {
                let whole = loop {
                    match self.fill(deadline, pace) {
                        Fill::Data => {}
                        Fill::End => break true,
                        Fill::Deadline => break false,
                    }
                };
                (Framing::Close, std::mem::take(&mut self.buf), whole)
            };
            return Got::Answer {
                interim,
                status,
                fields,
                framing,
                body: summary(&body),
                whole,
            };
        }
    }

    fn chunked(&mut self, deadline: Instant, pace: usize) -> (Vec<u8>, bool) {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                if self.fill(deadline, pace) != Fill::Data {
                    return (body, false);
                }
            };
            let line = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
            let Ok(size) = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            else {
                return (body, false);
            };
            if size == 0 {
                // The last chunk, trailers, and the empty line.
                loop {
                    if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        self.buf.drain(..i + 4);
                        return (body, true);
                    }
                    if self.fill(deadline, pace) != Fill::Data {
                        return (body, false);
                    }
                }
            }
            let need = line_end + 2 + size + 2;
            if !self.fill_to(need, deadline, pace) {
                let from = (line_end + 2).min(self.buf.len());
                body.extend_from_slice(&self.buf[from..]);
                self.buf.clear();
                return (body, false);
            }
            body.extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
            self.buf.drain(..need);
        }
    }

    fn fill_to(&mut self, n: usize, deadline: Instant, pace: usize) -> bool {
        while self.buf.len() < n {
            if self.fill(deadline, pace) != Fill::Data {
                return false;
            }
        }
        true
    }

    /// Reads once (at most `pace` bytes; a paced read waits 10 ms first).
    fn fill(&mut self, deadline: Instant, pace: usize) -> Fill {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Fill::Deadline;
        }
        if pace != usize::MAX {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.s.set_read_timeout(Some(left)).unwrap();
        let mut chunk = vec![0u8; pace.min(64 * 1024)];
        match self.s.read(&mut chunk) {
            Ok(0) => Fill::End,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Fill::Data
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Fill::Deadline
            }
            Err(_) => Fill::End,
        }
    }
}

#[derive(PartialEq, Eq)]
enum Fill {
    Data,
    End,
    Deadline,
}

fn lossy(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// A body as text when short, as its length and a hash when long.
fn summary(body: &[u8]) -> String {
    if body.len() <= 256 {
        return lossy(body);
    }
    let fnv = body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{} bytes, FNV-1a {fnv:016x}", body.len())
}

/// The value of a head's field `name` (any case), trimmed and in lower case.
pub fn field(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_ascii_lowercase())
    })
}

/// Requests as an origin received them on one connection, one text per request (head
/// and body), and whatever followed the last whole one.
pub fn requests(bytes: &[u8]) -> (Vec<String>, String) {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(end) = rest
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
    {
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        let field = |name| field(&head, name);
        let body_len = if field("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            match chunked_len(&rest[end..]) {
                Some(n) => n,
                None => break,
            }
        } else {
            field("content-length")
                .and_then(|v| v.split(',').next()?.trim().parse::<usize>().ok())
                .unwrap_or(0)
        };
        if rest.len() < end + body_len {
            break;
        }
        out.push(format!(
            "{}{}",
            lossy(&in_name_order(&rest[..end])),
            summary(&rest[end..end + body_len])
        ));
        rest = &rest[end + body_len..];
    }
    (out, lossy(rest))
}

/// A head with its fields in the order of their names (case aside), fields of one name
/// in the order they came: the order of different fields means nothing (RFC 9110 §5.3),
/// and two proxies add theirs in different places.
fn in_name_order(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    if lines.len() > 1 {
        lines[1..].sort_by_key(|l| l.split(':').next().unwrap_or("").to_ascii_lowercase());
    }
    format!("{}\r\n\r\n", lines.join("\r\n")).into_bytes()
}

/// The length of a whole chunked body at the start of `b`, trailers included.
fn chunked_len(b: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let line = b[at..].windows(2).position(|w| w == b"\r\n")?;
        let text = String::from_utf8_lossy(&b[at..at + line]).into_owned();
        let size = usize::from_str_radix(text.split(';').next()?.trim(), 16).ok()?;
        at += line + 2;
        if size == 0 {
            let end = b[at..].windows(2).position(|w| w == b"\r\n")?;
            // Trailers end at an empty line.
            if end == 0 {
                return Some(at + 2);
            }
            let trailers = b[at..].windows(4).position(|w| w == b"\r\n\r\n")?;
            return Some(at + trailers + 4);
        }
        at += size + 2;
        if at > b.len() {
            return None;
        }
    }
}
