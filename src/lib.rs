//! clicktap: a reverse-proxy sidecar that turns every redirect a URL shortener answers
//! into an enriched, durable click event and delivers it as webhooks.
//!
//! ```text
//! visitor ─► [proxy] ──────────────► shortener (upstream), answer passed back unchanged
//!               │ logging phase: RawClick, try_send (never waits)
//!               ▼ crossbeam channel, bounded
//!            [enrich] N threads: client IP, GeoIP, user agent, bots, referrer, params
//!               │ batches
//!               ▼
//!            [queue] sled: event log, per-consumer cursors, delivery state
//!               │
//!               ▼
//!            [deliver] tokio + reqwest: one consumer per webhook
//!            [rollup]  per-minute click counts for the stats API: one more consumer
//!            [alert]   mail and chat to a person when a webhook fails, is disabled or
//!                      recovers (notices from deliver) and when clicks are dropped
//!            [sink]    NATS JetStream publisher per `[[sinks]]`: one more consumer
//!
//! `clicktap relay` (another process, no proxy, no queue):
//!   JetStream stream ─► [relay] one durable pull consumer per webhook, shared by every
//!                       relay ─► deliver's sender ─► receivers; dead letters to a stream
//! ```
//!
//! Each stage owns its data and hands it on; only counters flow back (`metrics`).

pub mod admin;
pub mod alert;
pub mod background;
pub mod cli;
pub mod click;
pub mod clock;
pub mod config;
pub mod deliver;
pub mod demo;
pub mod enrich;
pub mod events;
pub mod hex;
pub mod keeper;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod notice;
pub mod proxy;
pub mod queue;
pub mod redact;
pub mod relay;
pub mod rollup;
pub mod run;
pub mod shutdown;
pub mod sink;
pub mod systemd;
pub mod tls;
pub mod upgrade;
