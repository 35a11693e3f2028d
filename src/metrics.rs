//! Counters for every stage: what came in, what went out, what was dropped and why.
//!
//! The invariant "no click is lost silently" is checkable only if each stage counts
//! both sides, so that `captured = dropped + enriched` and `enriched = persisted +
//! queue drops` can be read off `/metrics`. Counters the request path touches are
//! resolved to plain `IntCounter`s up front: one relaxed atomic add, no lookup, no lock.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub proxy_requests: IntCounter,
    pub proxy_full_path: IntCounter,
    pub capture_clicks: IntCounter,
    pub capture_dropped_full: IntCounter,
    pub capture_dropped_closed: IntCounter,
    pub enrich_events: IntCounter,
    pub channel_depth: IntGauge,
    pub enrich_unique_entries: IntGauge,
    pub enrich_unique_bytes: IntGauge,
    pub enrich_unique_max_bytes: IntGauge,
    pub enrich_unique_evicted: IntCounter,
    pub enrich_unique_first: IntCounter,
    pub enrich_unique_repeat: IntCounter,
    pub queue_appended: IntCounter,
    pub queue_dropped_full: IntCounter,
    pub queue_evicted: IntCounter,
    pub queue_expired: IntCounter,
    pub queue_dropped_error: IntCounter,
    pub queue_dropped_corrupt: IntCounter,
    pub queue_dropped_no_space: IntCounter,
    pub queue_dropped_spool_full: IntCounter,
    pub queue_spooled: IntGauge,
    pub queue_available: IntGauge,
    pub queue_unflushed_writes: IntGauge,
    pub queue_errors: IntCounter,
    pub queue_flushes: IntCounter,
    pub queue_unflushed: IntGauge,
    pub queue_depth: IntGauge,
    pub queue_bytes: IntGauge,
    pub delivery_attempts: IntCounterVec,
    pub delivery_delivered: IntCounterVec,
    pub delivery_retried: IntCounterVec,
    pub delivery_dead: IntCounterVec,
    pub delivery_skipped: IntCounterVec,
    pub delivery_state: IntGaugeVec,
    pub delivery_disabled: IntCounterVec,
    pub delivery_lag: IntGaugeVec,
    pub delivery_latency: HistogramVec,
    pub delivery_token_fetches: IntCounterVec,
    pub delivery_interrupted: IntCounterVec,
    pub delivery_dead_expired: IntCounterVec,
    pub delivery_state_bytes: IntGaugeVec,
    pub delivery_held: IntCounterVec,
    pub delivery_log_bytes: IntGauge,
    pub sink_events: IntCounterVec,
    pub sink_lag: IntGaugeVec,
    pub sink_state: IntGaugeVec,
    pub sink_in_flight_bytes: IntGaugeVec,
    pub relay_messages: IntCounterVec,
    pub relay_consumer_recreated: IntCounterVec,
    pub relay_state: IntGaugeVec,
    pub relay_pending: IntGaugeVec,
    pub relay_ack_pending: IntGaugeVec,
    pub delivery_log_evicted: IntCounter,
    pub delivery_log_skipped: IntCounter,
    pub alerts_dropped: IntCounter,
    pub alerts_sent: IntCounterVec,
    pub alerts_suppressed: IntCounterVec,
    pub stats_counted: IntCounter,
    pub stats_missed: IntCounter,
    pub stats_unreadable: IntCounter,
    pub stats_lag: IntGauge,
    pub config_reloads: IntCounterVec,
    pub admin_auth_failures: IntCounter,
    pub geoip_reloads: IntCounterVec,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("metric names are valid");
    registry
        .register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("metric names are valid");
    registry
        .register(Box::new(g.clone()))
        .expect("metric names are unique");
    g
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("metric names are valid");
    registry
        .register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("metric names are valid");
    registry
        .register(Box::new(g.clone()))
        .expect("metric names are unique");
    g
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let dropped = counter_vec(
            &r,
            "clicktap_capture_dropped_total",
            "Redirects not captured, by reason (channel_full, closed).",
            &["reason"],
        );
        let queue_lost = counter_vec(
            &r,
            "clicktap_queue_dropped_total",
            "Events not stored or removed before every consumer read them, by reason \
             (full: refused when the queue was full; evicted: oldest removed to make room; \
             expired: older than the retention; error: a failed write, or stored in memory \
             but lost when the storage failed before a flush; corrupt: a stored value that \
             no longer decodes, removed; no_space: refused while the disk had less than \
             queue.min_free_bytes free; spool_full: captured while the queue was not open yet, \
             beyond queue.spool_bytes).",
            &["reason"],
        );
        let unique_checks = counter_vec(
            &r,
            "clicktap_enrich_unique_checks_total",
            "Events checked against the unique-click table, by result (first: the visitor's \
             first on the link within enrich.unique_window, unique: true; repeat: unique: false).",
            &["result"],
        );
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "clicktap_delivery_latency_seconds",
                "Time from request sent to response received, per webhook.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["webhook"],
        )
        .expect("metric names are valid");
        r.register(Box::new(latency.clone()))
            .expect("metric names are unique");
        let stats_events = counter_vec(
            &r,
            "clicktap_stats_events_total",
            "Stored events the stats rollup read, by outcome (counted; missed: removed from \
             the queue before the rollup read them; unreadable: not an event it can count).",
            &["outcome"],
        );
        Metrics {
            proxy_requests: counter(
                &r,
                "clicktap_proxy_requests_total",
                "Requests proxied to the upstream.",
            ),
            proxy_full_path: counter(
                &r,
                "clicktap_proxy_full_path_requests_total",
                "Requests the lean forwarding path handed to the full Pingora proxy \
                 (HTTP/2, Upgrade, CONNECT, chunked or Expect requests, unusual heads).",
            ),
            capture_clicks: counter(
                &r,
                "clicktap_capture_clicks_total",
                "Redirects and bio page views captured and handed to enrichment.",
            ),
            capture_dropped_full: dropped.with_label_values(&["channel_full"]),
            capture_dropped_closed: dropped.with_label_values(&["closed"]),
            enrich_events: counter(
                &r,
                "clicktap_enrich_events_total",
                "Clicks enriched into events.",
            ),
            channel_depth: gauge(
                &r,
                "clicktap_capture_channel_depth",
                "Clicks waiting in the channel between proxy and enrichment.",
            ),
            enrich_unique_entries: gauge(
                &r,
                "clicktap_enrich_unique_entries",
                "Visitors the unique-click table holds (slots in use; one whose window has \
                 passed counts until its slot is reused).",
            ),
            enrich_unique_bytes: gauge(
                &r,
                "clicktap_enrich_unique_bytes",
                "Bytes the unique-click table has allocated (each of its 64 shards on first use).",
            ),
            enrich_unique_max_bytes: gauge(
                &r,
                "clicktap_enrich_unique_max_bytes",
                "The most bytes the unique-click table takes: enrich.unique_max_bytes in whole buckets.",
            ),
            enrich_unique_evicted: counter(
                &r,
                "clicktap_enrich_unique_evicted_total",
                "Visitors pushed out of the full unique-click table before their window ended; \
                 their next click within it counts as unique again.",
            ),
            enrich_unique_first: unique_checks.with_label_values(&["first"]),
            enrich_unique_repeat: unique_checks.with_label_values(&["repeat"]),
            queue_appended: counter(
                &r,
                "clicktap_queue_appended_total",
                "Events written to the queue.",
            ),
            queue_dropped_full: queue_lost.with_label_values(&["full"]),
            queue_evicted: queue_lost.with_label_values(&["evicted"]),
            queue_expired: queue_lost.with_label_values(&["expired"]),
            queue_dropped_error: queue_lost.with_label_values(&["error"]),
            queue_dropped_corrupt: queue_lost.with_label_values(&["corrupt"]),
            queue_dropped_no_space: queue_lost.with_label_values(&["no_space"]),
            queue_dropped_spool_full: queue_lost.with_label_values(&["spool_full"]),
            queue_spooled: gauge(
                &r,
                "clicktap_queue_spooled_events",
                "Events waiting in memory for the queue to open (a binary upgrade: the old \
                 process still holds it).",
            ),
            queue_available: gauge(
                &r,
                "clicktap_queue_available",
                "1 while the queue's storage is in service; 0 while it is out of service after \
                 a storage failure (a full disk, a read-only file system) and being opened again.",
            ),
            queue_unflushed_writes: gauge(
                &r,
                "clicktap_queue_unflushed_writes",
                "Cursor and delivery-state changes since the last flush: what a SIGKILL or power \
                 loss would roll back now.",
            ),
            queue_errors: counter(
                &r,
                "clicktap_queue_errors_total",
                "Storage errors; the events of a failed write are counted here too.",
            ),
            queue_flushes: counter(
                &r,
                "clicktap_queue_flushes_total",
                "Flushes of the queue to disk.",
            ),
            queue_unflushed: gauge(
                &r,
                "clicktap_queue_unflushed_events",
                "Events stored since the last flush: what a SIGKILL or power loss would lose now.",
            ),
            queue_depth: gauge(&r, "clicktap_queue_depth", "Events stored in the queue."),
            queue_bytes: gauge(
                &r,
                "clicktap_queue_bytes",
                "Bytes of event data stored in the queue.",
            ),
            delivery_attempts: counter_vec(
                &r,
                "clicktap_delivery_attempts_total",
                "Delivery attempts per webhook and outcome (success: a 2xx; failure: an attempt \
                 used up; backoff: 429, 502, 503 or 504, the webhook backs off and no attempt is \
                 used up; gone: 410, the webhook is disabled).",
                &["webhook", "outcome"],
            ),
            delivery_delivered: counter_vec(
                &r,
                "clicktap_delivery_delivered_total",
                "Events delivered per webhook.",
                &["webhook"],
            ),
            delivery_retried: counter_vec(
                &r,
                "clicktap_delivery_retried_total",
                "Events scheduled for another attempt per webhook.",
                &["webhook"],
            ),
            delivery_dead: counter_vec(
                &r,
                "clicktap_delivery_dead_total",
                "Events moved to dead letters after the last attempt, per webhook.",
                &["webhook"],
            ),
            delivery_skipped: counter_vec(
                &r,
                "clicktap_delivery_filtered_total",
                "Events a webhook's filter did not select.",
                &["webhook"],
            ),
            delivery_state: gauge_vec(
                &r,
                "clicktap_delivery_webhook_state",
                "Webhook health: 0 healthy, 1 alerting, 2 disabled.",
                &["webhook"],
            ),
            delivery_disabled: counter_vec(
                &r,
                "clicktap_delivery_disabled_total",
                "Times a webhook was disabled, by reason (gone: it answered 410; failing: it \
                 failed without a success for disable_after).",
                &["webhook", "reason"],
            ),
            delivery_lag: gauge_vec(
                &r,
                "clicktap_delivery_lag_events",
                "Events in the queue a webhook has not read yet.",
                &["webhook"],
            ),
            delivery_latency: latency,
            sink_events: counter_vec(
                &r,
                "clicktap_sink_events_total",
                "Events per sink and outcome: published (sent, ack awaited), acked (stored by \
                 the stream, duplicates included), duplicate (acked as already stored), failed \
                 (no ack: sent again), missed (removed by the queue's retention before the \
                 sink read them).",
                &["sink", "outcome"],
            ),
            sink_lag: gauge_vec(
                &r,
                "clicktap_sink_lag_events",
                "Events in the queue a sink has not had acknowledged yet.",
                &["sink"],
            ),
            sink_state: gauge_vec(
                &r,
                "clicktap_sink_state",
                "Sink health: 0 publishing, 1 connecting or backing off, 2 refused (the stream \
                 does not match the config).",
                &["sink"],
            ),
            sink_in_flight_bytes: gauge_vec(
                &r,
                "clicktap_sink_in_flight_bytes",
                "Bytes of events a sink holds in memory, published and awaiting their ack.",
                &["sink"],
            ),
            relay_messages: counter_vec(
                &r,
                "clicktap_relay_messages_total",
                "Messages a relay took from the stream per webhook and outcome: received \
                 (handed to this relay, redeliveries included), delivered (acked after a 2xx), \
                 retried (nak'd with the retry schedule's delay), dead (published to the \
                 dead-letter stream, then termed), filtered (acked, not for this webhook), \
                 unsettled (left for ack_wait: the attempt or its settling did not finish).",
                &["webhook", "outcome"],
            ),
            relay_consumer_recreated: counter_vec(
                &r,
                "clicktap_relay_consumer_recreated_total",
                "Times a relay found its webhook's consumer gone and created it again.",
                &["webhook"],
            ),
            relay_state: gauge_vec(
                &r,
                "clicktap_relay_state",
                "Relay health per webhook: 0 consuming, 1 connecting or backing off.",
                &["webhook"],
            ),
            relay_pending: gauge_vec(
                &r,
                "clicktap_relay_pending_messages",
                "Messages of the stream a webhook's consumer has not handed to any relay yet \
                 (as the server said at the relay's last look, every 5 s).",
                &["webhook"],
            ),
            relay_ack_pending: gauge_vec(
                &r,
                "clicktap_relay_ack_pending_messages",
                "Messages a webhook's consumer handed out and no relay settled yet: attempts \
                 in flight and messages waiting for a retry.",
                &["webhook"],
            ),
            delivery_token_fetches: counter_vec(
                &r,
                "clicktap_delivery_token_fetches_total",
                "OAuth token fetches per webhook and outcome.",
                &["webhook", "outcome"],
            ),
            delivery_interrupted: counter_vec(
                &r,
                "clicktap_delivery_interrupted_total",
                "Events whose attempt was cut short by a stop (or never started before it), \
                 recorded as retries due at once, per webhook.",
                &["webhook"],
            ),
            delivery_dead_expired: counter_vec(
                &r,
                "clicktap_delivery_dead_expired_total",
                "Dead letters removed because the queue no longer holds their events \
                 (queue.retention or room), per webhook.",
                &["webhook"],
            ),
            delivery_state_bytes: gauge_vec(
                &r,
                "clicktap_delivery_state_bytes",
                "Bytes of retries and dead letters, per webhook (bounded by \
                 delivery.state_max_bytes).",
                &["webhook"],
            ),
            delivery_held: counter_vec(
                &r,
                "clicktap_delivery_held_total",
                "Times a webhook stopped taking new events because its retries and dead \
                 letters reached delivery.state_max_bytes or the disk fell below \
                 queue.min_free_bytes, per webhook.",
                &["webhook"],
            ),
            delivery_log_bytes: gauge(
                &r,
                "clicktap_delivery_log_bytes",
                "Bytes the delivery log holds (bounded by delivery.log_max_bytes).",
            ),
            delivery_log_evicted: counter(
                &r,
                "clicktap_delivery_log_evicted_total",
                "Delivery-log values removed, oldest first, to stay within delivery.log_max_bytes.",
            ),
            delivery_log_skipped: counter(
                &r,
                "clicktap_delivery_log_skipped_total",
                "Delivery-log values (attempts' records) not stored because the queue's file \
                 system had less than queue.min_free_bytes free; the attempts themselves \
                 were made and settled as usual.",
            ),
            alerts_dropped: counter(
                &r,
                "clicktap_alerts_dropped_total",
                "Webhook notices not handed to the alert task because its channel was full \
                 (it was far behind, say on a hanging mail server): those alerts were not sent.",
            ),
            alerts_sent: counter_vec(
                &r,
                "clicktap_alerts_sent_total",
                "Alert messages per [[alerts]] entry and outcome (sent, failed).",
                &["alert", "outcome"],
            ),
            alerts_suppressed: counter_vec(
                &r,
                "clicktap_alerts_suppressed_total",
                "Alert messages not sent because the entry's rate limit (max_messages per per) \
                 was reached; the next message sent says how many.",
                &["alert"],
            ),
            stats_counted: stats_events.with_label_values(&["counted"]),
            stats_missed: stats_events.with_label_values(&["missed"]),
            stats_unreadable: stats_events.with_label_values(&["unreadable"]),
            stats_lag: gauge(
                &r,
                "clicktap_stats_lag_events",
                "Events in the queue the stats rollup has not counted yet.",
            ),
            admin_auth_failures: counter(
                &r,
                "clicktap_admin_auth_failures_total",
                "Admin requests refused for a wrong token (an Authorization header that is not \
                 the admin token), each slowed per client address.",
            ),
            config_reloads: counter_vec(
                &r,
                "clicktap_config_reloads_total",
                "Configuration reloads by outcome (success; invalid: the file does not validate; \
                 needs_restart: it changes settings only a new process takes; failed).",
                &["outcome"],
            ),
            geoip_reloads: counter_vec(
                &r,
                "clicktap_geoip_reloads_total",
                "GeoIP databases loaded again after they changed on disk, by outcome.",
                &["outcome"],
            ),
            registry: r,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
