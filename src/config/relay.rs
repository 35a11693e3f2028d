//! `[relay]` validated, and what a relay's file may not hold.
//!
//! A file with `[relay]` configures `clicktap relay`: it delivers `[[webhooks]]` from a
//! JetStream stream and has no proxy, no local queue, no enrichment and no sinks. The
//! tables and keys that only mean something next to a local queue are refused in such
//! a file, each named, rather than silently ignored: an operator who sets
//! `delivery.state_max_bytes` on a relay expects it to bound something.

use std::time::Duration;

use super::bounds::{self, MILLI};
use super::nats::{self, Login, NatsServers};
use super::problems::Problems;
use super::relay_file::RelayFile;
use super::webhook::WebhookConfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    pub nats: NatsServers,
    pub stream: String,
    pub dead_letter_stream: String,
    pub dead_letter_replicas: usize,
    /// How long a message handed to a relay waits for its settling before JetStream
    /// hands it to another relay.
    pub ack_wait: Duration,
    pub deliver: DeliverFrom,
    pub max_backoff: Duration,
    pub stop_timeout: Duration,
}

/// Where a webhook's consumer starts when it is first created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliverFrom {
    /// Every message the stream holds.
    All,
    /// Messages stored from the consumer's creation on.
    New,
}

/// Top-level tables a relay's file may not have, with why.
const NOT_IN_A_RELAY: &[(&str, &str)] = &[
    (
        "proxy",
        "a relay proxies nothing: it delivers from the stream",
    ),
    (
        "queue",
        "a relay keeps no local queue: the stream is its queue",
    ),
    (
        "enrich",
        "events are enriched by the sidecars before they are published",
    ),
    (
        "geoip",
        "events are enriched by the sidecars before they are published",
    ),
    ("stats", "a relay keeps no local queue to count from"),
    (
        "sinks",
        "a relay reads the stream; sinks belong in the sidecars' files",
    ),
    ("pages", "page views are captured by the sidecars"),
    ("qr", "QR scans are marked by the sidecars"),
    ("alerts", "a relay has no alerts yet"),
];

/// `[delivery]` keys a relay does not use, with why.
const DELIVERY_NOT_IN_A_RELAY: &[(&str, &str)] = &[
    ("log_retention", "a relay keeps no delivery log"),
    ("log_max_bytes", "a relay keeps no delivery log"),
    ("state_max_bytes", "a relay keeps no local delivery state"),
    (
        "poll_interval",
        "a relay pulls from the stream, it polls no queue",
    ),
    ("stop_timeout", "a relay's is relay.stop_timeout"),
    ("nice", "a relay runs no proxy to yield to"),
];

/// `[[webhooks]]` keys a relay does not use.
const WEBHOOK_NOT_IN_A_RELAY: &[(&str, &str)] = &[
    ("batch", "a relay sends one event per request"),
    (
        "disable_after",
        "a relay does not disable webhooks; failures end as dead letters",
    ),
];

pub(super) fn relay(f: RelayFile, p: &mut Problems) -> Option<RelayConfig> {
    let key = "relay";
    let before = p.list.len();
    nats::urls(&f.urls, key, p);
    let stream_name = |name: &str, k: &str, p: &mut Problems| {
        if name.is_empty() {
            p.push(
                k.to_string(),
                "is missing (the stream the sidecars publish into)",
            );
        } else if name
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control())
        {
            p.push(
                k.to_string(),
                format!("{name:?} may not hold `.`, `*`, `>` or spaces"),
            );
        }
    };
    stream_name(&f.stream, "relay.stream", p);
    let dead = f
        .dead_letter_stream
        .clone()
        .unwrap_or_else(|| format!("{}_DEAD", f.stream));
    if f.dead_letter_stream.is_some() {
        stream_name(&dead, "relay.dead_letter_stream", p);
    }
    if dead == f.stream {
        p.push(
            "relay.dead_letter_stream",
            format!("{dead:?} is the stream itself"),
        );
    }
    bounds::count(
        p,
        "relay.dead_letter_replicas",
        f.dead_letter_replicas,
        1..=5,
    );
    let credentials = nats::credentials(
        &Login {
            user: &f.user,
            password: &f.password,
            token: &f.token,
            nkey_seed: &f.nkey_seed,
            creds_file: &f.creds_file,
        },
        key,
        p,
    );
    let tls = nats::tls(&f.tls, key, p);
    let duration = |p: &mut Problems, name: &str, v: &str, min: Duration| {
        bounds::duration(p, &format!("relay.{name}"), v, min, None)
    };
    let connect_timeout = duration(p, "connect_timeout", &f.connect_timeout, MILLI);
    let request_timeout = duration(p, "request_timeout", &f.request_timeout, MILLI);
    let ack_wait = duration(p, "ack_wait", &f.ack_wait, MILLI);
    let max_backoff = duration(p, "max_backoff", &f.max_backoff, MILLI);
    let stop_timeout = duration(p, "stop_timeout", &f.stop_timeout, Duration::ZERO);
    let deliver = match f.deliver.as_str() {
        "all" => Some(DeliverFrom::All),
        "new" => Some(DeliverFrom::New),
        other => {
            p.push(
                "relay.deliver",
                format!("{other:?} is not one of \"all\", \"new\""),
            );
            None
        }
    };
    if p.list.len() > before {
        return None;
    }
    Some(RelayConfig {
        nats: NatsServers {
            urls: f.urls,
            credentials,
            tls,
            connect_timeout: connect_timeout?,
            request_timeout: request_timeout?,
        },
        stream: f.stream,
        dead_letter_stream: dead,
        dead_letter_replicas: f.dead_letter_replicas,
        ack_wait: ack_wait?,
        deliver: deliver?,
        max_backoff: max_backoff?,
        stop_timeout: stop_timeout?,
    })
}

/// What a relay's file holds that only a sidecar's may: every table and key named.
pub(super) fn sidecar_only(table: &toml::Table, p: &mut Problems) {
    for (name, why) in NOT_IN_A_RELAY {
        if table.contains_key(*name) {
            p.push(
                name.to_string(),
                format!("is not for a relay ([relay] is set): {why}"),
            );
        }
    }
    if let Some(d) = table.get("delivery").and_then(|d| d.as_table()) {
        for (k, why) in DELIVERY_NOT_IN_A_RELAY {
            if d.contains_key(*k) {
                p.push(
                    format!("delivery.{k}"),
                    format!("is not for a relay ([relay] is set): {why}"),
                );
            }
        }
    }
    let webhooks = table.get("webhooks").and_then(|w| w.as_array());
    for (i, w) in webhooks.into_iter().flatten().enumerate() {
        let Some(w) = w.as_table() else { continue };
        for (k, why) in WEBHOOK_NOT_IN_A_RELAY {
            if w.contains_key(*k) {
                p.push(
                    format!("webhooks[{i}].{k}"),
                    format!("is not for a relay ([relay] is set): {why}"),
                );
            }
        }
    }
}

/// Checks between `[relay]` and the webhooks it delivers.
pub(super) fn with_webhooks(
    relay: &RelayConfig,
    webhooks: &[WebhookConfig],
    any: bool,
    p: &mut Problems,
) {
    if !any {
        p.push(
            "webhooks",
            "is missing: a relay delivers [[webhooks]] from the stream, and there is none",
        );
    }
    for w in webhooks {
        // An attempt that outlasts ack_wait is handed to another relay while it runs.
        if w.timeout >= relay.ack_wait {
            p.push(
                "relay.ack_wait",
                format!(
                    "{} is not longer than the timeout of webhook {:?} ({}): another relay would send the event while the first one still waits for the answer",
                    humantime::format_duration(relay.ack_wait),
                    w.id,
                    humantime::format_duration(w.timeout)
                ),
            );
        }
    }
}
