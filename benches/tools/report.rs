//! Turns a run's raw records (one JSON object per line, written by run.sh) into the
//! report: medians over rounds, the ratios the issue asks for, loss accounting, CPU
//! per delivered click of the contenders that deliver (d and h), delivery figures,
//! click-to-webhook and visitor latency and the targets, as markdown on stdout and
//! one JSON file.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

const CONTENDERS: [(&str, &str); 10] = [
    ("a", "a. direct to the origin"),
    ("b", "b. bare Pingora"),
    ("g", "g. lean Pingora (experiment)"),
    ("c", "c. clicktap, capture off"),
    ("i", "i. clicktap, capture off, full path"),
    ("f", "f. clicktap, capture on, no webhook"),
    ("j", "j. clicktap, capture on, publishing to NATS"),
    ("d", "d. clicktap, full pipeline"),
    ("e", "e. nginx proxy_pass"),
    ("h", "h. nginx + access log + syslog-ng"),
];

pub(crate) fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

pub(crate) fn num(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_f64().unwrap_or(f64::NAN)
}

/// Clicks a contender that delivers (d, h) delivered from the start of wrk until it
/// had delivered every click it served: the counts at both ends differ by them.
pub(crate) fn delivered_in_window(r: &Value) -> f64 {
    num(r, &["deliver", "after", "delivered"]) - num(r, &["deliver", "before", "delivered"])
}

/// The figures of one proxy run that the table shows.
fn proxy_figures(r: &Value) -> BTreeMap<&'static str, f64> {
    let requests = num(r, &["wrk", "requests"]);
    let secs = num(r, &["wrk", "duration_us"]) / 1e6;
    let cpu_s = num(r, &["proc", "cpu_s"]);
    let errors: f64 = ["connect", "read", "write", "status", "timeout"]
        .iter()
        .map(|k| num(r, &["wrk", "errors", k]))
        .sum();
    BTreeMap::from([
        ("rps", requests / secs),
        ("p50_ms", num(r, &["wrk", "latency_us", "p50"]) / 1e3),
        ("p99_ms", num(r, &["wrk", "latency_us", "p99"]) / 1e3),
        ("p999_ms", num(r, &["wrk", "latency_us", "p999"]) / 1e3),
        ("cpu_pct", num(r, &["proc", "cpu_pct"])),
        ("cpu_us_per_req", 1e6 * cpu_s / requests),
        ("rss_max_mib", num(r, &["proc", "rss_max_kib"]) / 1024.0),
        ("origin_cpu_pct", num(r, &["origin_proc", "cpu_pct"])),
        ("others_pct", num(r, &["proc", "others_pct"])),
        ("steal_pct", num(r, &["proc", "steal_pct"])),
        ("errors", errors),
        // NaN for the contenders that do not deliver: median() leaves them out.
        (
            "cpu_us_per_delivered",
            1e6 * num(r, &["deliver", "proc", "cpu_s"]) / delivered_in_window(r),
        ),
        (
            "delivered_after_s",
            num(r, &["deliver", "after", "seconds"]),
        ),
    ])
}

fn medians(runs: &[BTreeMap<&'static str, f64>]) -> BTreeMap<&'static str, f64> {
    let mut out = BTreeMap::new();
    if let Some(first) = runs.first() {
        for k in first.keys() {
            if let Some(m) = median(runs.iter().map(|r| r[k]).collect()) {
                out.insert(*k, m);
            }
        }
    }
    out
}

pub(crate) fn f(v: Option<&f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => "n/a".into(),
    }
}

/// The req/s ratio of `num` to `den` within each round, in round order: the two ran
/// minutes apart at most, so the spread of these shows how much of a median ratio is
/// the machine's drift between rounds.
fn rps_by_round(proxy: &[&Value], num: &str, den: &str) -> Vec<f64> {
    let rps = |key: &str, round: &Value| {
        proxy
            .iter()
            .find(|r| r["contender"] == key && &r["round"] == round)
            .map(|r| proxy_figures(r)["rps"])
    };
    proxy
        .iter()
        .filter(|r| r["contender"] == num)
        .filter_map(|r| Some(rps(num, &r["round"])? / rps(den, &r["round"])?))
        .collect()
}

fn by_kind<'a>(raw: &'a [Value], kind: &str) -> Vec<&'a Value> {
    raw.iter().filter(|r| r["kind"] == kind).collect()
}

pub fn run(raw_path: &Path, out: &Path, meta_path: &Path) -> anyhow::Result<()> {
    let raw: Vec<Value> = std::fs::read_to_string(raw_path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(meta_path)?)?;
    let mut md = String::new();
    let mut result = json!({ "meta": meta });

    // Proxy contenders.
    let proxy = by_kind(&raw, "proxy");
    let mut med: BTreeMap<&str, BTreeMap<&str, f64>> = BTreeMap::new();
    let mut rounds: BTreeMap<&str, usize> = BTreeMap::new();
    for (key, _) in CONTENDERS {
        let runs: Vec<_> = proxy
            .iter()
            .filter(|r| r["contender"] == key)
            .map(|r| proxy_figures(r))
            .collect();
        if !runs.is_empty() {
            rounds.insert(key, runs.len());
            med.insert(key, medians(&runs));
        }
    }
    if !med.is_empty() {
        writeln!(
            md,
            "### Proxy throughput and latency (median of rounds)\n\n\
             CPU µs/delivered click (d, h): the CPU from the start of wrk until the hook server \
             had received every click served, over the clicks delivered in that time; delivered \
             after: the seconds that took once wrk ended. Others CPU %: the machine's CPU \
             outside the bench's processes, steal included; steal %: what the hypervisor took \
             (100 = one core).\n\n\
             | contender | rounds | req/s | p50 ms | p99 ms | p99.9 ms | CPU % | CPU µs/req | CPU µs/delivered click | delivered after (s) | RSS max MiB | origin CPU % | others CPU % | steal % | errors |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        )?;
        for (key, name) in CONTENDERS {
            let Some(m) = med.get(key) else { continue };
            writeln!(
                md,
                "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                rounds[key],
                f(m.get("rps"), 0),
                f(m.get("p50_ms"), 3),
                f(m.get("p99_ms"), 3),
                f(m.get("p999_ms"), 3),
                f(m.get("cpu_pct"), 0),
                f(m.get("cpu_us_per_req"), 1),
                f(m.get("cpu_us_per_delivered"), 1),
                f(m.get("delivered_after_s"), 1),
                f(m.get("rss_max_mib"), 1),
                f(m.get("origin_cpu_pct"), 0),
                f(m.get("others_pct"), 0),
                f(m.get("steal_pct"), 0),
                f(m.get("errors"), 0),
            )?;
        }
        let mut ratios = Vec::new();
        let pairs = ["c", "i", "f", "d", "g"]
            .into_iter()
            .flat_map(|n| [(n, "b"), (n, "e")])
            // d against the setup users would build instead, what that setup's log
            // and shipper cost nginx, the lean forwarding path against the full, and
            // capture with a NATS sink publishing against capture alone.
            .chain([("d", "h"), ("h", "e"), ("c", "i"), ("j", "f")]);
        for (num_key, den_key) in pairs {
            let (Some(n), Some(d)) = (med.get(num_key), med.get(den_key)) else {
                continue;
            };
            let r = |k: &str| n.get(k).zip(d.get(k)).map(|(a, b)| a / b);
            ratios.push(json!({
                "of": num_key, "to": den_key,
                "rps": r("rps"), "p50": r("p50_ms"), "p99": r("p99_ms"),
                "p999": r("p999_ms"), "cpu_us_per_req": r("cpu_us_per_req"),
                "cpu_us_per_delivered": r("cpu_us_per_delivered"),
                "rps_by_round": rps_by_round(&proxy, num_key, den_key),
            }));
        }
        if !ratios.is_empty() {
            writeln!(
                md,
                "\n### Ratios (medians; req/s above 1 is faster, latency below 1 is faster)\n\n\
                 | ratio | req/s | p50 | p99 | p99.9 | CPU µs/req | CPU µs/delivered click | req/s, round by round |\n|---|---:|---:|---:|---:|---:|---:|---|"
            )?;
            for r in &ratios {
                let g = |k: &str| f(r[k].as_f64().as_ref(), 3);
                writeln!(
                    md,
                    "| {} / {} | {} | {} | {} | {} | {} | {} | {} |",
                    r["of"].as_str().unwrap_or(""),
                    r["to"].as_str().unwrap_or(""),
                    g("rps"),
                    g("p50"),
                    g("p99"),
                    g("p999"),
                    g("cpu_us_per_req"),
                    g("cpu_us_per_delivered"),
                    r["rps_by_round"]
                        .as_array()
                        .map(|v| v
                            .iter()
                            .map(|x| f(x.as_f64().as_ref(), 2))
                            .collect::<Vec<_>>()
                            .join(" "))
                        .unwrap_or_default()
                )?;
            }
        }
        result["proxy"] = json!(med);
        result["ratios"] = json!(ratios);
    }

    // Loss accounting at saturation (contender d).
    let loss: Vec<_> = proxy.iter().filter(|r| !r["loss"].is_null()).collect();
    if !loss.is_empty() {
        writeln!(
            md,
            "\n### Loss accounting at saturation (contenders d and f, per round; counts include the warm-up)\n\n\
             | contender | round | wrk redirects (measured) | proxied | captured | persisted | capture drops | queue drops | settled |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---|"
        )?;
        let mut rows = Vec::new();
        for r in loss {
            let m = &r["loss"];
            let g = |k: &str| num(m, &[k]);
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r["contender"].as_str().unwrap_or(""),
                r["round"],
                num(r, &["wrk", "requests"]),
                g("clicktap_proxy_requests_total"),
                g("clicktap_capture_clicks_total"),
                g("clicktap_queue_appended_total"),
                g("clicktap_capture_dropped_total"),
                g("clicktap_queue_dropped_total"),
                m["settled"]
            )?;
            rows.push(json!({
                "contender": r["contender"],
                "round": r["round"],
                "wrk_requests": num(r, &["wrk", "requests"]),
                "proxied": g("clicktap_proxy_requests_total"),
                "captured": g("clicktap_capture_clicks_total"),
                "persisted": g("clicktap_queue_appended_total"),
                "capture_dropped": g("clicktap_capture_dropped_total"),
                "queue_dropped": g("clicktap_queue_dropped_total"),
            }));
        }
        result["loss"] = json!(rows);
    }

    // Delivery at saturation (d, h): every click served, delivered.
    let deliver: Vec<_> = proxy.iter().filter(|r| !r["deliver"].is_null()).collect();
    if !deliver.is_empty() {
        writeln!(
            md,
            "\n### Delivery at saturation (contenders d and h, per round; from the start of wrk \
             until every click served was delivered)\n\n\
             | contender | round | served | delivered | webhooks received | complete | CPU s | CPU µs/delivered click | delivered after wrk (s) | syslog-ng dropped |\n\
             |---|---:|---:|---:|---:|---|---:|---:|---:|---:|"
        )?;
        let mut rows = Vec::new();
        for r in deliver {
            let d = &r["deliver"];
            let diff = |k: &str| num(d, &["after", k]) - num(d, &["before", k]);
            let dropped = if d["syslog_ng"].is_null() {
                "n/a".to_string()
            } else {
                format!("{}", num(d, &["syslog_ng", "dropped"]))
            };
            let fig = proxy_figures(r);
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {:.2} | {} | {} | {dropped} |",
                r["contender"].as_str().unwrap_or(""),
                r["round"],
                diff("served"),
                diff("delivered"),
                diff("received"),
                d["after"]["complete"],
                num(d, &["proc", "cpu_s"]),
                f(fig.get("cpu_us_per_delivered"), 1),
                f(fig.get("delivered_after_s"), 2),
            )?;
            rows.push(json!({
                "contender": r["contender"],
                "round": r["round"],
                "served": diff("served"),
                "delivered": diff("delivered"),
                "received": diff("received"),
                "complete": d["after"]["complete"],
                "cpu_s": num(d, &["proc", "cpu_s"]),
                "cpu_us_per_delivered": fig["cpu_us_per_delivered"],
                "delivered_after_s": fig["delivered_after_s"],
                "syslog_ng": d["syslog_ng"],
            }));
        }
        result["deliver_at_saturation"] = json!(rows);
    }
    threads_table(&mut md, &mut result, &proxy)?;

    // Delivery throughput.
    let delivery = by_kind(&raw, "delivery");
    if !delivery.is_empty() {
        writeln!(
            md,
            "\n### Delivery to a local receiver (median of rounds)\n\n\
             | mode | rounds | events | events/s | requests/s | clicktap CPU % | RSS max MiB | complete |\n\
             |---|---:|---:|---:|---:|---:|---:|---|"
        )?;
        let mut out = BTreeMap::new();
        for mode in ["unbatched", "batched"] {
            let rs: Vec<_> = delivery.iter().filter(|r| r["mode"] == mode).collect();
            if rs.is_empty() {
                continue;
            }
            let m = |p: &[&str]| median(rs.iter().map(|r| num(r, p)).collect());
            let eps = m(&["drain", "events_per_s"]);
            let reqs = median(
                rs.iter()
                    .map(|r| num(r, &["drain", "requests"]) / num(r, &["drain", "seconds"]))
                    .collect(),
            );
            let complete = rs.iter().all(|r| r["drain"]["complete"] == true);
            writeln!(
                md,
                "| {mode} | {} | {} | {} | {} | {} | {} | {complete} |",
                rs.len(),
                f(m(&["drain", "expected"]).as_ref(), 0),
                f(eps.as_ref(), 0),
                f(reqs.as_ref(), 0),
                f(m(&["proc", "cpu_pct"]).as_ref(), 0),
                f(m(&["proc", "rss_max_kib"]).map(|k| k / 1024.0).as_ref(), 1),
            )?;
            out.insert(
                mode,
                json!({"events_per_s": eps, "requests_per_s": reqs, "complete": complete}),
            );
        }
        result["delivery"] = json!(out);
    }

    // Click-to-webhook latency.
    let latency = by_kind(&raw, "latency");
    if !latency.is_empty() {
        writeln!(
            md,
            "\n### Click-to-webhook latency, paced clicks (per round)\n\n\
             | round | rate/s | achieved/s | redirects | webhooks | matched (by) | p50 ms | p90 ms | p99 ms | max ms | clicktap RSS max MiB |\n\
             |---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"
        )?;
        for r in &latency {
            let p = &r["pace"];
            writeln!(
                md,
                "| {} | {} | {:.0} | {} | {} | {} ({}) | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} |",
                r["round"],
                p["rate"],
                num(p, &["achieved_rate"]),
                p["redirects"],
                p["webhook_requests"],
                p["matched"],
                p["matched_by"].as_str().unwrap_or(""),
                num(p, &["p50_ms"]),
                num(p, &["p90_ms"]),
                num(p, &["p99_ms"]),
                num(p, &["max_ms"]),
                num(r, &["proc", "rss_max_kib"]) / 1024.0,
            )?;
        }
        let p99 = median(
            latency
                .iter()
                .map(|r| num(r, &["pace", "p99_ms"]))
                .collect(),
        );
        let p50 = median(
            latency
                .iter()
                .map(|r| num(r, &["pace", "p50_ms"]))
                .collect(),
        );
        let rss = latency
            .iter()
            .map(|r| num(r, &["proc", "rss_max_kib"]) / 1024.0)
            .fold(0.0, f64::max);
        result["latency"] = json!({"p50_ms": p50, "p99_ms": p99, "rss_max_mib": rss});
    }

    // The visitor's latency at a fixed rate, open loop, well below saturation.
    let visitor = by_kind(&raw, "visitor");
    let mut vmed: BTreeMap<&str, BTreeMap<&str, f64>> = BTreeMap::new();
    let visitor_rate = meta["settings"]["visitor_rate"]
        .as_f64()
        .or_else(|| median(visitor.iter().map(|r| num(r, &["pace", "rate"])).collect()));
    if !visitor.is_empty() {
        writeln!(
            md,
            "\n### Visitor latency at a fixed rate (median of rounds)\n\n\
             Clicks sent on schedule (open loop) at a rate well below saturation: the time from \
             sending a click to the end of its redirect, as a visitor feels it.\n\n\
             | contender | rounds | rate/s | achieved/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors (all rounds) | CPU % | RSS max MiB | others CPU % |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        )?;
        for (key, name) in CONTENDERS {
            let rs: Vec<_> = visitor.iter().filter(|r| r["contender"] == key).collect();
            if rs.is_empty() {
                continue;
            }
            let runs: Vec<BTreeMap<&str, f64>> = rs
                .iter()
                .map(|r| {
                    BTreeMap::from([
                        ("rate", num(r, &["pace", "rate"])),
                        ("achieved", num(r, &["pace", "achieved_rate"])),
                        ("p50_ms", num(r, &["pace", "redirect_p50_ms"])),
                        ("p90_ms", num(r, &["pace", "redirect_p90_ms"])),
                        ("p99_ms", num(r, &["pace", "redirect_p99_ms"])),
                        ("p999_ms", num(r, &["pace", "redirect_p999_ms"])),
                        ("max_ms", num(r, &["pace", "redirect_max_ms"])),
                        ("cpu_pct", num(r, &["proc", "cpu_pct"])),
                        ("rss_max_mib", num(r, &["proc", "rss_max_kib"]) / 1024.0),
                        ("others_pct", num(r, &["proc", "others_pct"])),
                    ])
                })
                .collect();
            let mut m = medians(&runs);
            let errors: f64 = rs.iter().map(|r| num(r, &["pace", "errors"])).sum();
            m.insert("errors", errors);
            m.insert("rounds", rs.len() as f64);
            writeln!(
                md,
                "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                rs.len(),
                f(m.get("rate"), 0),
                f(m.get("achieved"), 0),
                f(m.get("p50_ms"), 3),
                f(m.get("p90_ms"), 3),
                f(m.get("p99_ms"), 3),
                f(m.get("p999_ms"), 3),
                f(m.get("errors"), 0),
                f(m.get("cpu_pct"), 0),
                f(m.get("rss_max_mib"), 1),
                f(m.get("others_pct"), 0),
            )?;
            vmed.insert(key, m);
        }
        let mut ratios = Vec::new();
        for num_key in ["f", "d"] {
            let (Some(n), Some(d)) = (vmed.get(num_key), vmed.get("b")) else {
                continue;
            };
            let r = |k: &str| n.get(k).zip(d.get(k)).map(|(a, b)| a / b);
            ratios.push(json!({"of": num_key, "to": "b", "p50": r("p50_ms"), "p99": r("p99_ms")}));
        }
        if !ratios.is_empty() {
            writeln!(md, "\n| visitor ratio | p50 | p99 |\n|---|---:|---:|")?;
            for r in &ratios {
                writeln!(
                    md,
                    "| {} / {} | {} | {} |",
                    r["of"].as_str().unwrap_or(""),
                    r["to"].as_str().unwrap_or(""),
                    f(r["p50"].as_f64().as_ref(), 3),
                    f(r["p99"].as_f64().as_ref(), 3),
                )?;
            }
        }
        result["visitor"] = json!({"rate": visitor_rate, "contenders": vmed, "ratios": ratios});
    }

    let paced_rate = meta["settings"]["paced_rate"].as_f64();
    let paced_ratio =
        crate::report_paced::section(&mut md, &mut result, &by_kind(&raw, "paced"), paced_rate)?;
    let published = crate::report_fleet::publish(&mut md, &mut result, &by_kind(&raw, "publish"))?;
    crate::report_fleet::relay(&mut md, &mut result, &by_kind(&raw, "relay"))?;

    // Targets from the issue that this run can judge.
    let mut targets = Vec::new();
    // A goal reads "<op> <bound>[unit]": what is printed is what is judged.
    let mut check = |name: &str, value: Option<f64>, goal: &str| {
        let verdict = match value {
            Some(v) if v.is_finite() => {
                if meets(v, goal) {
                    "met"
                } else {
                    "NOT met"
                }
            }
            _ => "not measured",
        };
        targets.push(json!({"target": name, "goal": goal, "value": value, "verdict": verdict}));
    };
    let ratio = |a: &str, b: &str, k: &str| {
        med.get(a)
            .zip(med.get(b))
            .and_then(|(x, y)| Some(x.get(k)? / y.get(k)?))
    };
    check(
        "capture on (d) req/s vs bare Pingora (b)",
        ratio("d", "b", "rps"),
        ">= 0.95x",
    );
    check(
        "capture on (d) p99 vs bare Pingora (b)",
        ratio("d", "b", "p99_ms"),
        "<= 1.10x",
    );
    check(
        "capture on, no webhook (f) req/s vs bare Pingora (b)",
        ratio("f", "b", "rps"),
        ">= 0.95x",
    );
    check(
        "capture on, no webhook (f) p99 vs bare Pingora (b)",
        ratio("f", "b", "p99_ms"),
        "<= 1.10x",
    );
    check(
        "capture off (c) req/s vs bare Pingora (b)",
        ratio("c", "b", "rps"),
        ">= 1.0x",
    );
    let vratio = |a: &str| {
        vmed.get(a)
            .zip(vmed.get("b"))
            .and_then(|(x, y)| Some(x.get("p99_ms")? / y.get("p99_ms")?))
    };
    let at = visitor_rate.map_or_else(|| "the visitor rate".to_string(), |r| format!("{r:.0}/s"));
    check(
        &format!("visitor p99 at {at}, d vs b"),
        vratio("d"),
        "<= 1.10x",
    );
    check(
        &format!("visitor p99 at {at}, f vs b"),
        vratio("f"),
        "<= 1.10x",
    );
    check(
        "capture on (d) req/s vs nginx proxy_pass (e)",
        ratio("d", "e", "rps"),
        ">= 1.0x (moonshot)",
    );
    check(
        "capture on (d) req/s vs nginx + syslog-ng (h)",
        ratio("d", "h", "rps"),
        ">= 1.0x",
    );
    check(
        "capture on (d) CPU per delivered click vs nginx + syslog-ng (h)",
        ratio("d", "h", "cpu_us_per_delivered"),
        "<= 1.0x",
    );
    check(
        &format!(
            "capture on (d) CPU per delivered click vs nginx + syslog-ng (h), paced at {}",
            paced_rate.map_or_else(|| "a fixed rate".to_string(), |r| format!("{r:.0}/s"))
        ),
        paced_ratio,
        "<= 1.0x",
    );
    check(
        "unbatched deliveries/s",
        result["delivery"]["unbatched"]["events_per_s"].as_f64(),
        ">= 10000",
    );
    check(
        "click-to-webhook p99 at the paced rate",
        result["latency"]["p99_ms"].as_f64(),
        "< 100 ms",
    );
    check(
        "batched events/s",
        result["delivery"]["batched"]["events_per_s"].as_f64(),
        ">= 50000",
    );
    check(
        "capture with a NATS sink publishing (j) req/s vs capture alone (f)",
        ratio("j", "f", "rps"),
        ">= 0.95x",
    );
    check(
        "events/s published to NATS JetStream by one sidecar",
        published,
        ">= 50000",
    );
    check(
        "delivery running (d) req/s vs capture alone (f)",
        ratio("d", "f", "rps"),
        ">= 0.95x",
    );
    // Steady load: the paced runs (click-to-webhook, and d in the visitor part).
    let steady = [
        result["latency"]["rss_max_mib"].as_f64(),
        vmed.get("d").and_then(|m| m.get("rss_max_mib").copied()),
    ]
    .into_iter()
    .flatten()
    .reduce(f64::max);
    check(
        "clicktap RSS at steady load (paced runs, max)",
        steady,
        "< 64 MiB",
    );
    check(
        "clicktap RSS at saturation (d, max)",
        med.get("d").and_then(|m| m.get("rss_max_mib").copied()),
        "< 64 MiB",
    );
    writeln!(
        md,
        "\n### Targets\n\n| target | goal | value | verdict |\n|---|---|---:|---|"
    )?;
    for t in &targets {
        writeln!(
            md,
            "| {} | {} | {} | {} |",
            t["target"].as_str().unwrap_or(""),
            t["goal"].as_str().unwrap_or(""),
            f(t["value"].as_f64().as_ref(), 3),
            t["verdict"].as_str().unwrap_or("")
        )?;
    }
    result["targets"] = json!(targets);
    result["raw"] = json!(raw);

    print!("{md}");
    std::fs::write(out, serde_json::to_string_pretty(&result)?)?;
    Ok(())
}

/// A contender's threads' CPU over a window, as µs per unit (request or delivered
/// click) by kind of thread, medians of the rounds, largest first; kinds under 0.5 µs
/// summed into the last entry as `other`. `window` picks a run's thread times and the
/// units of its window.
pub(crate) fn threads_of(
    proxy: &[&Value],
    key: &str,
    window: impl Fn(&Value) -> Option<(&serde_json::Map<String, Value>, f64)>,
) -> Vec<(String, f64)> {
    let mut per_kind: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in proxy.iter().filter(|r| r["contender"] == key) {
        let Some((threads, units)) = window(r) else {
            continue;
        };
        for (kind, s) in threads {
            let us = 1e6 * s.as_f64().unwrap_or(f64::NAN) / units;
            per_kind.entry(kind.clone()).or_default().push(us);
        }
    }
    let mut rows: Vec<(String, f64)> = per_kind
        .into_iter()
        .filter_map(|(k, v)| Some((k, median(v)?)))
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (mut big, small): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.1 >= 0.5);
    let rest: f64 = small.iter().map(|r| r.1).sum();
    if rest > 0.0 {
        big.push(("other".into(), rest));
    }
    big
}

/// A contender's threads' CPU per delivered click (d, h), from the start of the run
/// until every click was delivered: [`threads_of`] over each run's delivery window.
pub(crate) fn threads_per_delivered(runs: &[&Value], key: &str) -> Vec<(String, f64)> {
    threads_of(runs, key, |r| {
        Some((
            r["deliver"]["proc"]["threads"].as_object()?,
            delivered_in_window(r),
        ))
    })
}

/// `kind µs, kind µs, ...` for a table cell.
pub(crate) fn show_threads(rows: &[(String, f64)]) -> String {
    rows.iter()
        .map(|(k, v)| format!("{k} {v:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where each contender's CPU goes, by kind of thread: at saturation per request (wrk's
/// window), and for d and h until every click is delivered, per delivered click; so
/// that a missed target can be placed (the proxy's threads, enrichment, sled, delivery).
fn threads_table(md: &mut String, result: &mut Value, proxy: &[&Value]) -> std::fmt::Result {
    let mut json = serde_json::Map::new();
    let mut lines = Vec::new();
    for (key, name) in CONTENDERS {
        let rows = threads_of(proxy, key, |r| {
            Some((
                r["proc"]["threads"].as_object()?,
                num(r, &["wrk", "requests"]),
            ))
        });
        if !rows.is_empty() {
            lines.push(format!(
                "| {name} | per request, wrk's window | {} |",
                show_threads(&rows)
            ));
            json.insert(format!("{key}_per_request"), json!(rows));
        }
    }
    for (key, name) in CONTENDERS {
        let rows = threads_per_delivered(proxy, key);
        if !rows.is_empty() {
            lines.push(format!(
                "| {name} | per delivered click, until all delivered | {} |",
                show_threads(&rows)
            ));
            json.insert(format!("{key}_per_delivered"), json!(rows));
        }
    }
    if lines.is_empty() {
        return Ok(());
    }
    writeln!(
        md,
        "\n### Where the CPU goes, by thread (µs, medians of the rounds; run time from \
         /proc/<pid>/task/<tid>/schedstat; threads of one kind added up)\n\n\
         | contender | unit | µs by thread |\n|---|---|---|"
    )?;
    for l in lines {
        writeln!(md, "{l}")?;
    }
    result["threads"] = Value::Object(json);
    Ok(())
}

/// Whether `v` meets `goal`, written "<op> <bound>" with a unit or a remark after the
/// number (">= 0.95x", "< 100 ms", ">= 1.0x (moonshot)").
fn meets(v: f64, goal: &str) -> bool {
    let mut words = goal.split_whitespace();
    let op = words.next().unwrap_or("");
    let bound: f64 = words
        .next()
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_digit()))
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("a target's goal {goal:?} has no bound"));
    match op {
        ">=" => v >= bound,
        "<=" => v <= bound,
        "<" => v < bound,
        ">" => v > bound,
        _ => panic!("a target's goal {goal:?} has no comparison"),
    }
}
