//! The request-to-event path: a `RawClick` built from arbitrary request parts (method,
//! Host, URI, user agent, referrer, Location, forwarding and purpose headers, peer,
//! trusted proxies, capture time) through `Enricher::write`, and the stored JSON read
//! back as delivery reads it.
//!
//! What must hold for every click: enrichment writes an event (never a panic, never an
//! error, which would be a lost event), the stored bytes read back as a `ClickEvent`
//! and are that type's own JSON byte for byte (delivery sends them as they are), and
//! the full address is stored only when `keep_raw_ip` says so.

#![no_main]

mod common;

use arbitrary::Arbitrary;
use clicktap::click::{ClickEvent, RawClick};
use clicktap::deliver::member::Member;
use clicktap::enrich::{Enricher, GeoDb, GeoHandle};
use http::{HeaderValue, Method, Uri};
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Arbitrary, Debug)]
struct Input {
    method: Vec<u8>,
    tls: bool,
    host: Option<Vec<u8>>,
    uri: Vec<u8>,
    status: u16,
    location: Option<Vec<u8>>,
    user_agent: Option<Vec<u8>>,
    referer: Option<Vec<u8>>,
    peer: Option<IpAddr>,
    forwarded_for: Option<Vec<u8>>,
    forwarded_proto: Option<Vec<u8>>,
    real_ip: Option<Vec<u8>>,
    purpose: Option<Vec<u8>>,
    /// Seconds and nanoseconds from the epoch, either way.
    at: (bool, u64, u32),
    trusted: Vec<(IpAddr, u8)>,
    keep_raw_ip: bool,
    v4_prefix: u8,
    v6_prefix: u8,
    with_geo: bool,
}

/// What an HTTP parser hands the proxy as a header value: any bytes but controls
/// (tab allowed). Others are dropped rather than the input, so that the fuzzer's
/// mutations keep counting.
fn header(bytes: Option<Vec<u8>>) -> Option<HeaderValue> {
    let clean: Vec<u8> = bytes?
        .into_iter()
        .filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
        .collect();
    HeaderValue::from_bytes(&clean).ok()
}

fn geo() -> &'static GeoDb {
    static GEO: OnceLock<GeoDb> = OnceLock::new();
    GEO.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../geo/test/clicktap-test-city.mmdb"
        );
        GeoDb::open(&[path.into()]).expect("the test GeoIP database opens")
    })
}

fuzz_target!(|input: Input| {
    let trusted = input
        .trusted
        .iter()
        .filter_map(|&(ip, len)| {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            IpNet::new(ip, len % (max + 1)).ok().map(|n| n.trunc())
        })
        .collect();
    // Configuration allows prefixes up to the address's length.
    let enricher = Enricher {
        trusted,
        geo: GeoHandle::default(),
        keep_raw_ip: input.keep_raw_ip,
        v4_prefix: input.v4_prefix % 33,
        v6_prefix: input.v6_prefix % 129,
        types: Default::default(),
        unique: None,
        unique_window: Duration::ZERO,
    };
    let raw = RawClick {
        at: common::time(
            input.at.0,
            Duration::new(input.at.1, input.at.2 % 1_000_000_000),
        ),
        method: Method::from_bytes(&input.method).unwrap_or(Method::GET),
        tls: input.tls,
        host: header(input.host),
        uri: Uri::try_from(input.uri).unwrap_or_else(|_| Uri::from_static("/")),
        status: input.status,
        location: header(input.location),
        user_agent: header(input.user_agent),
        referer: header(input.referer),
        peer: input.peer,
        forwarded_for: header(input.forwarded_for),
        forwarded_proto: header(input.forwarded_proto),
        real_ip: header(input.real_ip),
        purpose: header(input.purpose),
        cut: Default::default(),
    };
    let geo = input.with_geo.then(geo);

    let mut stored = Vec::new();
    enricher
        .write(&raw, geo, &mut stored)
        .expect("every click becomes an event");
    let event: ClickEvent =
        serde_json::from_slice(&stored).expect("the stored JSON reads back as a ClickEvent");
    let again = serde_json::to_vec(&event).expect("a ClickEvent serialises");
    assert_eq!(
        String::from_utf8_lossy(&again),
        String::from_utf8_lossy(&stored),
        "the stored JSON is ClickEvent's own"
    );
    if !input.keep_raw_ip {
        assert_eq!(event.client.raw_ip, None, "no raw address unless kept");
    }
    assert_eq!(event.status, raw.status);
    assert_eq!(event.method, raw.method.as_str());

    let member =
        Member::read(common::stored(0, &stored), true).expect("delivery reads every stored event");
    assert_eq!(member.event.as_ref(), Some(&event));
});
