//! The paced part of the report: d's and h's CPU per delivered click at a fixed click
//! rate that both keep up with, median of rounds, with the threads it went to and the
//! ratio d / h. At saturation (the proxy part) both compete with wrk and the origin
//! for every core and h's syslog-ng falls far behind; paced, each delivers as it goes.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write;

use crate::report::{delivered_in_window, f, median, num, show_threads, threads_per_delivered};

/// Writes the section; returns d's CPU per delivered click over h's, when both ran.
pub fn section(
    md: &mut String,
    result: &mut Value,
    paced: &[&Value],
    rate: Option<f64>,
) -> Result<Option<f64>, std::fmt::Error> {
    if paced.is_empty() {
        return Ok(None);
    }
    let at = rate.map_or_else(
        || "a fixed rate".to_string(),
        |r| format!("{r:.0} clicks/s"),
    );
    writeln!(
        md,
        "\n### CPU per delivered click at {at} (d and h, median of rounds)\n\n\
         Open loop (bench-tools pace), a rate both keep up with: the CPU of each contender's \
         processes from the first paced click until the hook server had received every click \
         served, over the clicks delivered.\n\n\
         | contender | rounds | clicks/s sent | delivered | CPU µs/delivered click | rounds' range | delivered after the last click (s) | where it goes |\n\
         |---|---:|---:|---:|---:|---|---:|---|"
    )?;
    let mut out = BTreeMap::new();
    for key in ["d", "h"] {
        let runs: Vec<&&Value> = paced.iter().filter(|r| r["contender"] == key).collect();
        if runs.is_empty() {
            continue;
        }
        let per_click: Vec<f64> = runs
            .iter()
            .map(|r| 1e6 * num(r, &["deliver", "proc", "cpu_s"]) / delivered_in_window(r))
            .collect();
        let lo = per_click.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = per_click.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let cpu = median(per_click.clone());
        let sent = median(
            runs.iter()
                .map(|r| num(r, &["pace", "achieved_rate"]))
                .collect(),
        );
        let delivered = median(runs.iter().map(|r| delivered_in_window(r)).collect());
        let after = median(
            runs.iter()
                .map(|r| num(r, &["deliver", "after", "seconds"]))
                .collect(),
        );
        let rows: Vec<&Value> = runs.iter().map(|r| **r).collect();
        let threads = threads_per_delivered(&rows, key);
        let show = show_threads(&threads);
        writeln!(
            md,
            "| {key} | {} | {} | {} | {} | {} - {} | {} | {show} |",
            runs.len(),
            f(sent.as_ref(), 0),
            f(delivered.as_ref(), 0),
            f(cpu.as_ref(), 1),
            f(Some(&lo), 1),
            f(Some(&hi), 1),
            f(after.as_ref(), 2),
        )?;
        out.insert(
            key,
            json!({
                "rounds": runs.len(),
                "sent_per_s": sent,
                "delivered": delivered,
                "cpu_us_per_delivered": cpu,
                "cpu_us_per_delivered_by_round": per_click,
                "delivered_after_s": after,
                "threads": threads,
            }),
        );
    }
    let ratio = out.get("d").zip(out.get("h")).and_then(|(d, h)| {
        Some(d["cpu_us_per_delivered"].as_f64()? / h["cpu_us_per_delivered"].as_f64()?)
    });
    if let Some(r) = ratio {
        writeln!(md, "\nd / h, CPU per delivered click: {r:.2}x")?;
    }
    result["paced"] = json!({"rate": rate, "contenders": out, "d_over_h_cpu": ratio});
    Ok(ratio)
}
