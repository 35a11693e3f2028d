//! Micro-benchmarks of the capture pipeline's stages, in events per second
//! (`cargo bench --bench pipeline`):
//! - `enrich`: one `RawClick` to the JSON the worker stores (client IP, GeoIP when
//!   geo/test/clicktap-test-city.mmdb is present, user agent, link and referrer), with
//!   the link and user agent in the thread's memos as in steady traffic, and with a
//!   link the memo does not hold on every click;
//! - `queue_append`: `Queue::append` by batch size, without and with a flush (fsync)
//!   after each batch, as `queue.flush_interval = "0s"` does;
//! - `worker`: what one enrichment thread does per batch (its own `Batcher`): enrich,
//!   serialise, append, and a flush. The figure to compare with the 100k events/s per
//!   worker target;
//! - `render` and `sign`: each webhook format's body, one event and a batch of 100
//!   for the formats that batch, and the Standard Webhooks signature over it.
//!
//! The configuration comes from TOML through `clicktap::config::from_str`, so that
//! the benches see the same defaults as `clicktap run`.

// The allocator clicktap's binary runs on (src/main.rs), so that the figures are its.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use clicktap::click::{ClickEvent, RawClick};
use clicktap::config::{self, Config, Format};
use clicktap::deliver::formats::{self, Envelope, Item};
use clicktap::deliver::sign;
use clicktap::enrich::{Batcher, Enricher, GeoDb, GeoHandle, UniqueTable};
use clicktap::metrics::Metrics;
use clicktap::queue::{Queue, Record};

const GEO_DB: &str = "geo/test/clicktap-test-city.mmdb";
const FORMATS: [(&str, Format); 5] = [
    ("native", Format::Native),
    ("bitly", Format::Bitly),
    ("linkly", Format::Linkly),
    ("tly", Format::Tly),
    ("rebrandly", Format::Rebrandly),
];

/// User agents as they arrive: a desktop browser, a phone, a link-preview bot.
const AGENTS: [(&str, &str); 3] = [
    (
        "chrome_desktop",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/126.0.0.0 Safari/537.36",
    ),
    (
        "safari_iphone",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
         (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    ),
    (
        "slackbot",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    ),
];

fn config(queue_dir: &Path) -> Config {
    let mut text = format!(
        "[queue]\npath = {:?}\nmax_events = 1000000000\nmax_bytes = \"1000GiB\"\n\
         [delivery]\nallow_private_targets = true\nallow_http = true\n",
        queue_dir.display().to_string()
    );
    for (name, _) in FORMATS {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        text.push_str(&format!(
            "[[webhooks]]\nid = \"{name}\"\nurl = \"http://127.0.0.1:9/hook\"\n\
             format = \"{name}\"\nsecret = \"{secret}\"\n"
        ));
    }
    config::from_str(&text, Path::new("bench.toml")).expect("the bench configuration is valid")
}

fn geo() -> (GeoHandle, bool) {
    let handle: GeoHandle = Arc::new(ArcSwapOption::empty());
    let present = Path::new(GEO_DB).exists();
    if present && let Ok(db) = GeoDb::open(&[GEO_DB.into()]) {
        handle.store(Some(Arc::new(db)));
    }
    (handle, present)
}

fn raw_click(agent: &str, n: u64) -> RawClick {
    RawClick {
        at: SystemTime::now(),
        method: http::Method::GET,
        tls: true,
        host: Some(http::HeaderValue::from_static("go.example.com")),
        uri: format!("/spring-sale?utm_source=newsletter&utm_medium=email&utm_campaign=s{n}")
            .parse()
            .expect("a valid URI"),
        status: 302,
        location: Some(http::HeaderValue::from_static(
            "https://shop.example.com/collections/spring?ref=newsletter",
        )),
        user_agent: Some(http::HeaderValue::from_str(agent).expect("a valid header")),
        referer: Some(http::HeaderValue::from_static(
            "https://mail.example.org/inbox/message/123",
        )),
        // A public address (one the MaxMind test databases know).
        peer: Some(IpAddr::from([81, 2, 69, 142])),
        forwarded_for: None,
        forwarded_proto: None,
        real_ip: None,
        purpose: None,
        cut: Default::default(),
    }
}

/// An event serialised as the enrichment threads do: capture time and JSON.
fn record(event: &ClickEvent) -> (u64, Vec<u8>) {
    let at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    (at_ms, serde_json::to_vec(event).expect("events serialise"))
}

fn borrowed(owned: &[(u64, Vec<u8>)]) -> Vec<Record<'_>> {
    owned
        .iter()
        .map(|(at_ms, bytes)| Record {
            at_ms: *at_ms,
            bytes,
        })
        .collect()
}

fn enricher(cfg: &Config) -> Enricher {
    let unique = UniqueTable::new(cfg.enrich.unique_max_bytes, &Metrics::new());
    Enricher::new(&cfg.enrich, Vec::new(), geo().0, Some(Arc::new(unique)))
}

fn bench_enrich(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let cfg = config(dir.path());
    let enricher = enricher(&cfg);
    let geo_db = enricher.geo.load_full();
    let mut g = c.benchmark_group(if geo().1 {
        "enrich (geo: test city db)"
    } else {
        "enrich (geo: none, test db absent)"
    });
    g.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(4096);
    for (name, agent) in AGENTS {
        // Steady traffic: the link and the user agent are in the thread's memos.
        let raw = raw_click(agent, 7);
        g.bench_function(BenchmarkId::new("enrich+json", name), |b| {
            b.iter(|| {
                out.clear();
                enricher
                    .write(black_box(&raw), geo_db.as_deref(), &mut out)
                    .expect("events serialise");
                black_box(out.len())
            })
        });
    }
    // Every click on a link the memo does not hold (more distinct links than it keeps).
    let fresh: Vec<RawClick> = (0..10_000).map(|n| raw_click(AGENTS[0].1, n)).collect();
    let mut next = fresh.iter().cycle();
    g.bench_function(
        BenchmarkId::new("enrich+json", "new_link_each_click"),
        |b| {
            b.iter(|| {
                out.clear();
                let raw = next.next().expect("a cycle never ends");
                enricher
                    .write(black_box(raw), geo_db.as_deref(), &mut out)
                    .expect("events serialise");
                black_box(out.len())
            })
        },
    );
    g.finish();
}

/// Appends to a queue that is emptied (outside the timed part) whenever it grows
/// past a bound, so that a long bench neither fills the disk nor measures a
/// ten-million-event tree.
struct Bounded {
    queue: Queue,
    _dir: tempfile::TempDir,
}

impl Bounded {
    fn new() -> Bounded {
        let dir = tempfile::tempdir().expect("a temp dir");
        let cfg = config(&dir.path().join("queue"));
        let queue = Queue::open(&cfg.queue, Arc::new(Metrics::new())).expect("queue opens");
        Bounded { queue, _dir: dir }
    }

    fn trim(&self) {
        if self.queue.depth() > 200_000 || self.queue.bytes() > 256 << 20 {
            // Far in the future: every event is past retention.
            self.queue.retain(u64::MAX / 2).expect("trim");
        }
    }
}

fn bench_queue(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let cfg = config(dir.path());
    let enricher = enricher(&cfg);
    let event = enricher
        .enrich(&raw_click(AGENTS[0].1, 1), None)
        .expect("events serialise");
    let mut g = c.benchmark_group("queue_append");
    g.measurement_time(Duration::from_secs(4));
    for flush in [false, true] {
        for batch in [1usize, 16, 128, 512, 2048] {
            let owned: Vec<_> = (0..batch).map(|_| record(&event)).collect();
            let records = borrowed(&owned);
            let q = Bounded::new();
            g.throughput(Throughput::Elements(batch as u64));
            let id = if flush { "append+flush" } else { "append" };
            g.bench_with_input(BenchmarkId::new(id, batch), &records, |b, records| {
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        let t = Instant::now();
                        q.queue.append(records).expect("append");
                        if flush {
                            q.queue.flush().expect("flush");
                        }
                        spent += t.elapsed();
                        q.trim();
                    }
                    spent
                })
            });
        }
    }
    g.finish();
}

fn bench_worker(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let cfg = config(dir.path());
    let enricher = Arc::new(arc_swap::ArcSwap::from_pointee(enricher(&cfg)));
    let mut g = c.benchmark_group("worker (enrich + json + append per batch)");
    g.measurement_time(Duration::from_secs(4));
    for flush in [false, true] {
        for batch in [64usize, 512, 2048] {
            let q = Bounded::new();
            // The enrichment thread's own per-batch step.
            let mut batcher = Batcher::new(
                enricher.clone(),
                clicktap::queue::QueueCell::ready(q.queue.clone()),
                0,
                Arc::new(Metrics::new()),
            );
            g.throughput(Throughput::Elements(batch as u64));
            let id = if flush {
                "flush each batch"
            } else {
                "no flush"
            };
            g.bench_function(BenchmarkId::new(id, batch), |b| {
                b.iter_batched(
                    || {
                        q.trim();
                        (0..batch)
                            .map(|i| raw_click(AGENTS[i % AGENTS.len()].1, i as u64))
                            .collect::<Vec<_>>()
                    },
                    |mut clicks| {
                        batcher.write(&mut clicks);
                        if flush {
                            q.queue.flush().expect("flush");
                        }
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
}

fn bench_render_sign(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let cfg = config(dir.path());
    let enricher = enricher(&cfg);
    let events: Vec<ClickEvent> = (0..100)
        .map(|i| {
            enricher
                .enrich(&raw_click(AGENTS[i % AGENTS.len()].1, i as u64), None)
                .expect("events serialise")
        })
        .collect();
    let mut g = c.benchmark_group("render");
    for (name, format) in FORMATS {
        let webhook = cfg
            .webhooks
            .iter()
            .find(|w| w.id == name)
            .expect("one webhook per format");
        let sizes: &[usize] = if format.batches() { &[1, 100] } else { &[1] };
        for &n in sizes {
            let items: Vec<Item<'_>> = events[..n]
                .iter()
                .map(|e| Item {
                    event: e,
                    link: None,
                })
                .collect();
            let env = Envelope {
                webhook,
                message_id: "msg_2Qn9DkqfFFRzCqGh3VTTqgd4ZsC",
                sent_at: SystemTime::now(),
            };
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| black_box(formats::render(format, black_box(&items), &env)))
            });
            let body = formats::render(format, &items, &env).body;
            g.bench_function(BenchmarkId::new(format!("{name}+sign"), n), |b| {
                b.iter(|| {
                    let r = formats::render(format, black_box(&items), &env);
                    black_box(sign::signature(
                        &webhook.secrets,
                        &[],
                        env.message_id,
                        1_767_225_600,
                        &r.body,
                    ))
                })
            });
            // The signature alone over a realistic body (rendered bodies may be empty
            // while the formats are being written).
            let sized = if body.len() > 2 {
                body
            } else {
                serde_json::to_vec(&events[..n]).expect("events serialise")
            };
            g.bench_function(BenchmarkId::new(format!("sign {name} body"), n), |b| {
                b.iter(|| {
                    black_box(sign::signature(
                        &webhook.secrets,
                        &[],
                        "msg_2Qn9DkqfFFRzCqGh3VTTqgd4ZsC",
                        1_767_225_600,
                        black_box(&sized),
                    ))
                })
            });
        }
    }
    g.finish();
}

/// What the delivery log costs a webhook per attempt: what was sent captured
/// (`Sent::of`: headers redacted, the body's SHA-256, the body kept) and the attempt
/// recorded (JSON, LZ4 and the sled writes of a full value, amortised), with the body
/// kept, without it, and without any record of what was sent.
fn bench_delivery_log(c: &mut Criterion) {
    use clicktap::deliver::log::{Answer, DeliveryLog, Recorder, Request, Sending};
    use clicktap::deliver::sent::Sent;
    let dir = tempfile::tempdir().expect("a temp dir");
    let cfg = config(dir.path());
    let metrics = Arc::new(Metrics::new());
    let queue = Queue::open(&cfg.queue, metrics.clone()).expect("the queue opens");
    let log = DeliveryLog::open(&queue, 1 << 40, metrics).expect("the log opens");
    let enricher = enricher(&cfg);
    let event = enricher
        .enrich(&raw_click(AGENTS[0].1, 1), None)
        .expect("events serialise");
    let body = serde_json::to_vec(&event).expect("events serialise");
    let client = clicktap::tls::client_builder().build().expect("a client");
    let req = client
        .post("http://hooks.example:8080/in?source=clicktap")
        .header("content-type", "application/json")
        .header("idempotency-key", "msg_2Qn9DkqfFFRzCqGh3VTTqgd4ZsC")
        .header("webhook-id", "msg_2Qn9DkqfFFRzCqGh3VTTqgd4ZsC")
        .header("webhook-timestamp", "1767225600")
        .header(
            "webhook-signature",
            "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
        )
        .body(body.clone())
        .build()
        .expect("a request");
    let mut g = c.benchmark_group("delivery_log");
    g.throughput(Throughput::Elements(1));
    for keep in [4096, 0] {
        g.bench_function(BenchmarkId::new("sent", keep), |b| {
            b.iter(|| black_box(Sent::of(black_box(&req), &body, keep)))
        });
    }
    let attempt = |n: u64, sent: Option<Sent>| Request {
        at_ms: 1_796_400_000_000 + n,
        answer: Answer {
            at: "2026-12-08T00:00:00.000Z".into(),
            outcome: None,
            status: Some(204),
            latency_ms: 1,
            error: None,
            response: String::new(),
        },
        sending: Sending {
            message_id: Some(format!("msg_2Qn9DkqfFFRzCqGh3VT{n:08}")),
            sent,
            ..Default::default()
        },
        events: vec![(n, 1, event.id.to_string())],
    };
    for (name, keep) in [
        ("body kept", Some(4096)),
        ("no body", Some(0)),
        ("nothing sent kept", None),
    ] {
        let recorder = Recorder::new(log.clone(), name);
        let mut n = 0u64;
        g.bench_function(BenchmarkId::new("capture+record", name), |b| {
            b.iter(|| {
                n += 1;
                let sent = keep.map(|k| Sent::of(&req, &body, k));
                recorder.record(attempt(n, sent)).expect("recorded");
            })
        });
        recorder.flush().expect("flushed");
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_enrich,
    bench_queue,
    bench_worker,
    bench_render_sign,
    bench_delivery_log
);
criterion_main!(benches);
