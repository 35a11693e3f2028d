//! The fleet parts of the report. Publish: the events/s one clicktap publishes from a
//! filled queue into a local nats-server's JetStream stream (acknowledged, from the
//! first acknowledgement to the last), median of rounds, with the CPU that clicktap and
//! nats-server spent on each event. Relay: click-to-webhook latency through a sidecar,
//! nats-server and `clicktap relay`, beside the latency part's (clicktap run alone).

use serde_json::{Value, json};
use std::fmt::Write;

use crate::report::{f, median, num};

/// Writes the publish section; returns the median acknowledged events/s, when it ran.
pub fn publish(
    md: &mut String,
    result: &mut Value,
    runs: &[&Value],
) -> Result<Option<f64>, std::fmt::Error> {
    if runs.is_empty() {
        return Ok(None);
    }
    writeln!(
        md,
        "\n### Publishing to NATS JetStream (one sidecar, median of rounds)\n\n\
         The filled queue published by one clicktap (`[[sinks]] type = \"nats\"`, no webhook) \
         into a fresh stream of a local nats-server (JetStream, file store): events \
         acknowledged per second, and the CPU of each process over the whole run (start-up \
         and connect included) per event.\n\n\
         | rounds | events | acked events/s | rounds' range | clicktap CPU µs/event | nats-server CPU µs/event | clicktap RSS max MiB | complete |\n\
         |---:|---:|---:|---|---:|---:|---:|---|"
    )?;
    let per_event = |r: &Value, p: &str| {
        let events = num(r, &["drain", "delivered"]);
        (events > 0.0).then(|| num(r, &[p, "cpu_s"]) * 1e6 / events)
    };
    let eps: Vec<f64> = runs
        .iter()
        .map(|r| num(r, &["drain", "events_per_s"]))
        .collect();
    let lo = eps.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = eps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let m = median(eps.clone());
    let cpu = median(runs.iter().filter_map(|r| per_event(r, "proc")).collect());
    let nats = median(runs.iter().filter_map(|r| per_event(r, "nats")).collect());
    let rss = median(
        runs.iter()
            .map(|r| num(r, &["proc", "rss_max_kib"]) / 1024.0)
            .collect(),
    );
    let expected = median(
        runs.iter()
            .map(|r| num(r, &["drain", "expected"]))
            .collect(),
    );
    let complete = runs.iter().all(|r| r["drain"]["complete"] == true);
    writeln!(
        md,
        "| {} | {} | {} | {:.0}-{:.0} | {} | {} | {} | {complete} |",
        runs.len(),
        f(expected.as_ref(), 0),
        f(m.as_ref(), 0),
        lo,
        hi,
        f(cpu.as_ref(), 1),
        f(nats.as_ref(), 1),
        f(rss.as_ref(), 1),
    )?;
    result["publish"] = json!({
        "events_per_s": m,
        "range": [lo, hi],
        "clicktap_cpu_us_per_event": cpu,
        "nats_cpu_us_per_event": nats,
        "complete": complete,
    });
    Ok(m)
}

/// Writes the relay section: p50 and p99 per round and their medians, beside those of
/// `clicktap run` (the latency part, `result["latency"]`, written before this).
pub fn relay(md: &mut String, result: &mut Value, runs: &[&Value]) -> Result<(), std::fmt::Error> {
    if runs.is_empty() {
        return Ok(());
    }
    writeln!(
        md,
        "\n### Click-to-webhook latency through a relay (per round)\n\n\
         The latency part's paced clicks through a sidecar publishing into a local \
         nats-server and one `clicktap relay` delivering the same webhook from the stream, \
         all on this machine.\n\n\
         | round | rate/s | achieved/s | redirects | webhooks | matched | p50 ms | p90 ms | p99 ms | max ms | sidecar + relay CPU % |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    for r in runs {
        let p = &r["pace"];
        writeln!(
            md,
            "| {} | {} | {:.0} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |",
            r["round"],
            p["rate"],
            num(p, &["achieved_rate"]),
            p["redirects"],
            p["webhook_requests"],
            p["matched"],
            num(p, &["p50_ms"]),
            num(p, &["p90_ms"]),
            num(p, &["p99_ms"]),
            num(p, &["max_ms"]),
            num(r, &["proc", "cpu_pct"]),
        )?;
    }
    let m = |k: &str| median(runs.iter().map(|r| num(r, &["pace", k])).collect());
    let (p50, p99) = (m("p50_ms"), m("p99_ms"));
    let alone = &result["latency"];
    writeln!(
        md,
        "\n| median of rounds | p50 ms | p99 ms |\n|---|---:|---:|\n\
         | clicktap run (the latency part) | {} | {} |\n\
         | sidecar → NATS → clicktap relay | {} | {} |",
        f(alone["p50_ms"].as_f64().as_ref(), 2),
        f(alone["p99_ms"].as_f64().as_ref(), 2),
        f(p50.as_ref(), 2),
        f(p99.as_ref(), 2),
    )?;
    result["relay"] = json!({"p50_ms": p50, "p99_ms": p99});
    Ok(())
}
