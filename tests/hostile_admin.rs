//! Hostile input at the admin listener: wrong, missing and malformed tokens are refused,
//! bodies nobody asked for are never read into memory, a client that sends its head a
//! byte at a time holds up nobody else, and no answer ever carries a secret.

mod common;

use common::clicktap::TOKEN;
use common::{Clicktap, Options, receiver, upstream};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const URL_PASSWORD: &str = "url-password-9f8e7d";

/// clicktap with one webhook that has a signing secret and a password in its URL
/// (sent as HTTP Basic).
fn start(dir: &std::path::Path) -> (Clicktap, common::TestServer, common::TestServer) {
    let up = upstream::start();
    let rx = receiver::ok();
    let o = Options::default().tail(&format!(
        "[[webhooks]]\nid = \"w\"\nurl = \"http://user:{URL_PASSWORD}@{}/hook\"\nformat = \"native\"\nsecret = \"{SECRET}\"\n[webhooks.auth]\ntype = \"basic\"\n",
        rx.addr
    ));
    (Clicktap::start(dir, up.addr, &o), up, rx)
}

/// Every answer a test got, checked for secrets at its end.
#[derive(Default)]
struct Answers(Vec<Vec<u8>>);

impl Answers {
    /// Sends `request` to the admin listener, each from a loopback address of its own
    /// (wrong tokens are slowed per address); the answer must come within 5 s.
    fn send(&mut self, ct: &Clicktap, request: &[u8]) -> (u16, String) {
        let started = Instant::now();
        let n = self.0.len() as u16;
        let source = [127, 1, (n >> 8) as u8, (n & 0xff) as u8];
        let answer = common::raw_exchange_from(source, ct.admin, request);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "answered after {:?}",
            started.elapsed()
        );
        let text = String::from_utf8_lossy(&answer).into_owned();
        self.0.push(answer);
        let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
        (status, body.unwrap_or_default())
    }

    fn assert_no_secret(&self) {
        for answer in &self.0 {
            let text = String::from_utf8_lossy(answer);
            for secret in [TOKEN, SECRET, URL_PASSWORD, &SECRET[6..]] {
                assert!(!text.contains(secret), "a secret in an answer:\n{text}");
            }
        }
    }
}

fn request(method: &str, path: &str, authorization: Option<&[u8]>, body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: admin\r\n").into_bytes();
    if let Some(a) = authorization {
        r.extend_from_slice(b"Authorization: ");
        r.extend_from_slice(a);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    r.extend_from_slice(body);
    r
}

const ROUTES: [(&str, &str); 6] = [
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/webhooks"),
    ("GET", "/api/v1/webhooks/w/deliveries"),
    ("POST", "/api/v1/webhooks/w/reactivate"),
    ("POST", "/api/v1/webhooks/w/dead-letters/replay"),
    ("GET", "/api/v1/webhooks/no-such-webhook"),
];

#[test]
fn bad_and_missing_tokens_are_refused_and_no_answer_carries_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (ct, _up, _rx) = start(dir.path());
    let mut answers = Answers::default();
    let basic = format!("Basic {TOKEN}");
    let short = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    let long = format!("Bearer {TOKEN}x");
    let huge = format!("Bearer {}", "t".repeat(100_000));
    let two = format!("Bearer wrong\r\nAuthorization: Bearer {TOKEN}");
    let bad: [Option<&[u8]>; 10] = [
        None,
        Some(b"Bearer"),
        Some(b"Bearer "),
        Some(b"Bearer wrong"),
        Some(TOKEN.as_bytes()),
        Some(basic.as_bytes()),
        Some(short.as_bytes()),
        Some(long.as_bytes()),
        Some(huge.as_bytes()),
        Some(b"Bearer \xff\xfe"),
    ];
    for (method, path) in ROUTES {
        for auth in bad.iter().copied().chain([Some(two.as_bytes())]) {
            let (status, body) = answers.send(&ct, &request(method, path, auth, b""));
            let shown = auth.map(|a| String::from_utf8_lossy(&a[..a.len().min(40)]).into_owned());
            assert_eq!(status, 401, "{method} {path} with {shown:?}: {body}");
            let error: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(error["error"], "unauthorized");
        }
    }
    // With the token: answered, and still no secret in what comes back.
    let bearer = format!("Bearer {TOKEN}");
    for (method, path) in ROUTES {
        let (status, body) =
            answers.send(&ct, &request(method, path, Some(bearer.as_bytes()), b""));
        assert!(
            matches!(status, 200 | 404),
            "{method} {path}: {status} {body}"
        );
    }
    for path in ["/healthz", "/readyz", "/metrics", "/nothing-here"] {
        answers.send(&ct, &request("GET", path, None, b""));
    }
    // A head that cannot be parsed (a space in a header name), the token in it: refused,
    // and said in the log without the head's bytes, which Pingora's own loop would log.
    let garbled = format!(
        "GET /api/v1/status HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {TOKEN}\r\nBad Header: x\r\n\r\n"
    );
    let (status, _) = answers.send(&ct, garbled.as_bytes());
    assert_eq!(status, 400);
    common::wait_until(
        "the unreadable request logged",
        Duration::from_secs(5),
        || ct.log_text().contains("unreadable request"),
    );
    assert!(
        ct.log_text().lines().all(|l| !l.contains(TOKEN)),
        "the token in the log"
    );
    answers.assert_no_secret();
}

#[test]
fn garbage_bodies_to_post_routes_get_clean_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ct, _up, _rx) = start(dir.path());
    let mut answers = Answers::default();
    let bearer = format!("Bearer {TOKEN}");
    let deep = ["[".repeat(100_000), "]".repeat(100_000)].concat();
    let bodies: [&[u8]; 6] = [
        b"{not json",
        b"\xff\xfe\x00\x01",
        b"[]",
        b"null",
        b"{\"id\": 1e999999, \"url\": {\"$ref\": \"#\"}}",
        deep.as_bytes(),
    ];
    let posts = [
        "/api/v1/webhooks/w/reactivate",
        "/api/v1/webhooks/w/dead-letters/replay",
        "/api/v1/webhooks/w/test",
        "/api/v1/webhooks",
        "/api/v1/events",
        "/api/v1/webhooks/no-such-webhook/reactivate",
    ];
    for path in posts {
        for body in bodies {
            let (status, answer) =
                answers.send(&ct, &request("POST", path, Some(bearer.as_bytes()), body));
            assert!(
                (200..500).contains(&status),
                "POST {path}: {status} {answer}"
            );
            assert!(
                serde_json::from_str::<serde_json::Value>(&answer).is_ok(),
                "POST {path}: an answer that is not JSON: {answer}"
            );
        }
    }
    assert!(ct.child.try_wait().unwrap().is_none(), "{}", ct.log_text());
    assert_eq!(
        answers.send(&ct, &request("GET", "/healthz", None, b"")).0,
        200
    );
    answers.assert_no_secret();
}

/// The resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

#[test]
fn a_huge_body_is_answered_without_being_held() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ct, _up, _rx) = start(dir.path());
    let mut answers = Answers::default();
    let before = rss(ct.child.id());
    let head = format!(
        "POST /api/v1/webhooks/w/reactivate HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        1u64 << 30
    );
    let mut s = TcpStream::connect(ct.admin).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    // 64 MiB of the promised gigabyte, from another thread: the answer must not wait
    // for it, and the admin listener must not keep it (Pingora closes the connection
    // after answering, so the sender may stop early).
    let mut writer = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        let mut sent = 0usize;
        for _ in 0..64 {
            if writer.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    let started = Instant::now();
    let mut answer = vec![0u8; 4096];
    let n = s.read(&mut answer).unwrap();
    answer.truncate(n);
    assert!(started.elapsed() < Duration::from_secs(5));
    let text = String::from_utf8_lossy(&answer).into_owned();
    // Refused once the first 64 KiB are read, not after the gigabyte.
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("body_too_large"), "{text}");
    let sent = sender.join().unwrap();
    let grown = rss(ct.child.id()).saturating_sub(before);
    assert!(
        grown < 32 << 20,
        "{} MiB more resident after {} MiB of body",
        grown >> 20,
        sent >> 20
    );
    answers.0.push(answer);
    drop(s);
    assert!(ct.child.try_wait().unwrap().is_none(), "{}", ct.log_text());
    assert_eq!(
        answers.send(&ct, &request("GET", "/healthz", None, b"")).0,
        200
    );
    answers.assert_no_secret();
}

#[test]
fn a_client_sending_its_head_a_byte_at_a_time_holds_up_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let (ct, _up, _rx) = start(dir.path());
    let mut answers = Answers::default();
    let head = format!(
        "GET /api/v1/webhooks HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    );
    // More slow clients than the admin listener has threads.
    let slow: Vec<_> = (0..4)
        .map(|_| {
            let head = head.clone();
            let admin = ct.admin;
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(admin).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                for b in head.as_bytes() {
                    s.write_all(&[*b]).unwrap();
                    std::thread::sleep(Duration::from_millis(20));
                }
                let mut answer = Vec::new();
                let _ = s.read_to_end(&mut answer);
                answer
            })
        })
        .collect();
    // While they trickle in (about two seconds), everyone else is answered at once.
    let bearer = format!("Bearer {TOKEN}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut rounds = 0;
    while slow.iter().any(|t| !t.is_finished()) {
        assert!(Instant::now() < deadline, "the slow clients never finished");
        for (path, auth) in [
            ("/healthz", None),
            ("/api/v1/events", Some(bearer.as_bytes())),
        ] {
            let started = Instant::now();
            let (status, _) = answers.send(&ct, &request("GET", path, auth, b""));
            assert_eq!(status, 200, "{path}");
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{path} took {:?} while slow clients were sending",
                started.elapsed()
            );
        }
        rounds += 1;
    }
    assert!(
        rounds >= 5,
        "only {rounds} rounds while the slow clients sent"
    );
    for t in slow {
        let answer = t.join().unwrap();
        let text = String::from_utf8_lossy(&answer).into_owned();
        assert!(
            text.starts_with("HTTP/1.1 200"),
            "the slow client's answer: {text}"
        );
        answers.0.push(answer);
    }
    answers.assert_no_secret();
}
