//! A visitor over a raw socket: the connection, and answers read off it as a client
//! reads them, for the HTTP/1.1 tests.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A visitor's keep-alive connection.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// One answer read off a connection: its head (lower-cased names) and its body, framed
/// by `Content-Length` or chunked, or none for a HEAD. `None` when the connection
/// closed before a whole head.
pub fn answer(s: &mut TcpStream, to_head: bool) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let field = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
    };
    let status: u16 = head[9..12].parse().unwrap_or(0);
    if to_head || status == 204 || status == 304 || (100..200).contains(&status) {
        return Some((head, Vec::new()));
    }
    let mut body = Vec::new();
    if field("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                s.read_exact(&mut byte).ok()?;
                line.push(byte[0]);
            }
            let size = usize::from_str_radix(String::from_utf8_lossy(&line).trim(), 16).ok()?;
            let mut chunk = vec![0u8; size + 2];
            s.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = field("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        s.read_exact(&mut body).ok()?;
    } else {
        s.read_to_end(&mut body).ok()?;
    }
    Some((head, body))
}

pub fn status(head: &str) -> u16 {
    head[9..12].parse().unwrap()
}

/// Whether the visitor's connection was closed (read returns 0 or an error) within 10 s.
pub fn closed(s: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    match s.read_to_end(&mut rest) {
        Ok(_) => rest.is_empty(),
        // Closed with bytes of ours still unread on its side (a trickle racing the
        // close): the kernel ends the connection with a reset. Closed all the same.
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset && rest.is_empty(),
    }
}
