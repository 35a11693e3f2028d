//! A full channel costs a click, counted, and never a visitor's time.

mod common;

use common::{Clicktap, Options, upstream};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// `n` redirects over `threads` keep-alive connections; returns how many got a 302.
fn burst(ct: &Clicktap, threads: usize, n: usize) -> usize {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let addr = ct.proxy;
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut ok = 0;
                let mut buf = vec![0u8; 4096];
                for i in 0..n / threads {
                    let req = format!("GET /r/{t}-{i} HTTP/1.1\r\nHost: sho.rt\r\n\r\n");
                    s.write_all(req.as_bytes()).unwrap();
                    let got = s.read(&mut buf).unwrap();
                    if buf[..got].starts_with(b"HTTP/1.1 302") {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).sum()
}

#[test]
fn a_full_channel_is_a_counted_drop_not_a_wait() {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    // One slot and a worker that syncs to disk after every single click: the proxy
    // outruns it at once.
    let o = Options::default()
        .enrich("channel_capacity = 1")
        .enrich("batch_size = 1")
        .queue(r#"flush_interval = "0s""#);
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let mut served = 0;
    let started = Instant::now();
    // Bounded: a few bursts until the channel has overflowed at least once.
    for _ in 0..10 {
        served += burst(&ct, 8, 400);
        if ct.metric("clicktap_capture_dropped_total", r#"reason="channel_full""#) > 0.0 {
            break;
        }
    }
    let elapsed = started.elapsed();
    ct.wait_settled(served);
    let captured = ct.metric("clicktap_capture_clicks_total", "");
    let dropped = ct.metric("clicktap_capture_dropped_total", r#"reason="channel_full""#);
    let stored = ct.metric("clicktap_queue_appended_total", "");
    assert!(
        dropped > 0.0,
        "the channel never filled ({served} served in {elapsed:?})"
    );
    // Every redirect served is either stored or a counted drop.
    assert_eq!(captured + dropped, served as f64);
    assert_eq!(stored, captured);
    assert_eq!(ct.events(100_000).len() as f64, stored);
}
