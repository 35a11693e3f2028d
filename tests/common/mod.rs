//! Real parts for the integration tests: an upstream, webhook receivers and the
//! clicktap binary itself, all on loopback.
#![allow(dead_code, unused_imports)]

pub mod clicktap;
pub mod exchange;
pub mod load;
pub mod origin;
pub mod receiver;
pub mod relay;
pub mod server;
pub mod upstream;
pub mod visitor;

pub use clicktap::{Clicktap, Options, events_cli, free_port, test_city_db};
pub use server::{TestServer, handler, reply};

/// A browser's `User-Agent` line, for clicks that must count as a person's.
pub const BROWSER: &str = "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n";

/// Runs each named test, a `fn(path: &str)`, once on each forwarding path
/// (`proxy.forwarding`): as `lean::name` and `full::name`.
#[macro_export]
macro_rules! on_both_paths {
    ($($name:ident),* $(,)?) => {
        mod lean {
            $( #[test] fn $name() { super::$name("lean") } )*
        }
        mod full {
            $( #[test] fn $name() { super::$name("full") } )*
        }
    };
}

/// A raw HTTP/1.1 exchange: the exact bytes of the response to `request`.
pub fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> Vec<u8> {
    exchange_on(std::net::TcpStream::connect(addr).unwrap(), request)
}

/// Writes `request` on `s` and reads until the peer closes (at most 10 s per read).
fn exchange_on(mut s: std::net::TcpStream, request: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// One request to the admin listener on a fresh connection: the status, the head in
/// lower case and the body.
pub fn admin_exchange(
    admin: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let text = String::from_utf8_lossy(&raw_exchange(admin, req.as_bytes())).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// A connection to `addr` (IPv4) from the loopback address `source` (any 127.x.y.z):
/// a client address of its own, for what clicktap keeps per client.
pub fn connect_from(source: [u8; 4], addr: std::net::SocketAddr) -> std::net::TcpStream {
    use std::os::fd::FromRawFd;
    let sockaddr = |a: [u8; 4], port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a),
        },
        sin_zero: [0; 8],
    };
    let std::net::SocketAddr::V4(to) = addr else {
        panic!("connect_from takes an IPv4 address")
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a socket made, bound and connected here, then owned by the TcpStream.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let from = sockaddr(source, 0);
        let rc = libc::bind(fd, (&from as *const libc::sockaddr_in).cast(), len);
        assert_eq!(
            rc,
            0,
            "bind {source:?}: {}",
            std::io::Error::last_os_error()
        );
        let to = sockaddr(to.ip().octets(), to.port());
        let rc = libc::connect(fd, (&to as *const libc::sockaddr_in).cast(), len);
        assert_eq!(rc, 0, "connect {addr}: {}", std::io::Error::last_os_error());
        std::net::TcpStream::from_raw_fd(fd)
    }
}

/// [`raw_exchange`] from the loopback address `source` ([`connect_from`]).
pub fn raw_exchange_from(source: [u8; 4], addr: std::net::SocketAddr, request: &[u8]) -> Vec<u8> {
    exchange_on(connect_from(source, addr), request)
}

/// A GET with `Connection: close`; returns the status and the body as text.
pub fn http_get(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let raw = raw_exchange(addr, req.as_bytes());
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A POST without a body to the admin listener, with the test token; returns the body.
pub fn http_post(addr: std::net::SocketAddr, path: &str) -> String {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        clicktap::TOKEN
    );
    let raw = raw_exchange(addr, req.as_bytes());
    let text = String::from_utf8_lossy(&raw).into_owned();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(text)
}

/// Polls `cond` until it holds; fails the test after `within`.
pub fn wait_until(what: &str, within: std::time::Duration, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Fails the test, saying what to install, unless Python can import `module`.
pub fn need_python(module: &str, why: &str) {
    let has = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output();
    assert!(
        has.is_ok_and(|o| o.status.success()),
        "{why}: python3 -m pip install {module}"
    );
}

/// Runs a Python `script` with `input` as JSON on its standard input.
pub fn python(script: &str, input: &serde_json::Value) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Verifies a request's Standard Webhooks signature with the reference library (PyPI
/// `standardwebhooks`, which .ci/run installs). Without it the test fails, saying what
/// to install: a check that cannot run does not pass.
pub fn verify_standard_webhooks(secret: &str, s: &server::Seen) {
    let script = r#"
import sys, json
from standardwebhooks.webhooks import Webhook
d = json.load(sys.stdin)
Webhook(d["secret"]).verify(d["body"].encode(), d["headers"])
print("verified")
"#;
    need_python(
        "standardwebhooks",
        "the Standard Webhooks reference library is needed",
    );
    let input = serde_json::json!({
        "secret": secret,
        "body": String::from_utf8(s.body.to_vec()).unwrap(),
        "headers": {
            "webhook-id": s.headers["webhook-id"].to_str().unwrap(),
            "webhook-timestamp": s.headers["webhook-timestamp"].to_str().unwrap(),
            "webhook-signature": s.headers["webhook-signature"].to_str().unwrap(),
        }
    });
    let out = python(script, &input);
    assert!(
        out.status.success(),
        "reference library refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
