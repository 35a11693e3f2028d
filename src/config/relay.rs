//! `[relay]` validated, and what a relay's file may not hold.
//!
//! A file with `[relay]` configures `clicktap relay`: it delivers `[[webhooks]]` from a
//! JetStream stream and has no proxy, no local queue, no enrichment and no sinks. The
//! tables and keys that only mean something next to a local queue are refused in such
//! a file, each named, rather than silently ignored: an operator who sets
//! `delivery.state_max_bytes` on a relay expects it to bound something.

use std::time::Duration;

use super::nats::{self, Login, NatsServers};
use super::parse;
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
    if !(1..=5).contains(&f.dead_letter_replicas) {
        p.push(
            "relay.dead_letter_replicas",
            format!(
                "{} is not between 1 and 5, what JetStream allows",
                f.dead_letter_replicas
            ),
        );
    }
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
    let mut duration = |name: &str, v: &str, nonzero: bool| {
        let k = format!("relay.{name}");
        let d = p.check(&k, parse::duration(v))?;
        if nonzero && d.is_zero() {
            p.push(k, format!("{v:?} must be more than zero"));
            return None;
        }
        Some(d)
    };
    let connect_timeout = duration("connect_timeout", &f.connect_timeout, true);
    let request_timeout = duration("request_timeout", &f.request_timeout, true);
    let ack_wait = duration("ack_wait", &f.ack_wait, true);
    let max_backoff = duration("max_backoff", &f.max_backoff, true);
    let stop_timeout = duration("stop_timeout", &f.stop_timeout, false);
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
