//! The documentation against what clicktap is: every configuration key the file
//! accepts is in docs/configuration.md and every key documented there is accepted; every
//! metric the running binary exports (and every one the code registers) is in the
//! metrics table of docs/operations.md, and every metric documented there exists; every
//! relative link of README.md, docs/*.md and benches/README.md reaches a file, and a
//! heading when it names one.

mod common;

use common::{Clicktap, Options, receiver, upstream, wait_until};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The lines of a Markdown text outside fenced code blocks, numbered from 1.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((n + 1, line));
        }
    }
    out
}

/// The text between each pair of backticks in `s`.
fn code_spans(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

/// A table row's cells, without the outer pipes.
fn cells(line: &str) -> Option<Vec<&str>> {
    let inner = line.trim().strip_prefix('|')?.strip_suffix('|')?;
    Some(inner.split('|').map(str::trim).collect())
}

/// The keys docs/configuration.md documents: a heading naming a table (`` `[queue]` ``,
/// `` `[[webhooks]]` ``, `` `[webhooks.filter]` ``) opens its section, and each row of a
/// table whose first column is headed `key` documents the keys written in code in its
/// first cell (`` `user` + `password` ``, `` `tls.ca` ``), under that section.
fn documented_keys(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut section: Option<String> = None;
    let mut in_key_table = false;
    for (n, line) in prose(text) {
        if line.starts_with('#') {
            section = code_spans(line).into_iter().find_map(|span| {
                let name = span.trim_start_matches('[').trim_end_matches(']');
                (span.starts_with('[') && span.ends_with(']')).then(|| name.to_string())
            });
            in_key_table = false;
            continue;
        }
        let Some(row) = cells(line) else {
            in_key_table = false;
            continue;
        };
        if row.first() == Some(&"key") {
            in_key_table = true;
            continue;
        }
        if !in_key_table
            || row
                .iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue;
        }
        let section = section.as_deref().unwrap_or_else(|| {
            panic!("docs/configuration.md:{n}: a key table under no `[section]` heading")
        });
        let first = row[0];
        let spans = code_spans(first);
        assert!(
            !spans.is_empty(),
            "docs/configuration.md:{n}: a key row without a `key`: {line}"
        );
        for key in spans {
            keys.insert(format!("{section}.{key}"));
        }
    }
    keys
}

#[test]
fn every_config_key_is_documented_and_every_documented_key_exists() {
    let code = clicktap::config::keys();
    let docs = documented_keys(&read("docs/configuration.md"));
    assert!(code.len() > 100, "the key list looks short: {code:?}");
    let missing: Vec<_> = code.difference(&docs).collect();
    let unknown: Vec<_> = docs.difference(&code).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/configuration.md and the configuration file disagree.\n\
         accepted by clicktap, not documented: {missing:?}\n\
         documented, not accepted by clicktap: {unknown:?}"
    );
}

/// A metric name as docs and code write it, without its labels.
fn metric_names(text: &str) -> BTreeSet<String> {
    code_spans(text)
        .into_iter()
        .filter(|s| s.starts_with("clicktap_"))
        .map(|s| s.split('{').next().unwrap().to_string())
        .collect()
}

/// The metrics in the table of docs/operations.md's "Metrics" section: the names in
/// the first cell of each row.
fn documented_metrics() -> BTreeSet<String> {
    let text = read("docs/operations.md");
    let mut names = BTreeSet::new();
    let mut in_section = false;
    for (_, line) in prose(&text) {
        if line.starts_with("## ") {
            in_section = line == "## Metrics";
            continue;
        }
        if let (true, Some(row)) = (in_section, cells(line)) {
            names.extend(metric_names(row[0]));
        }
    }
    names
}

/// The metric names src/metrics.rs registers, as string literals.
fn registered_metrics() -> BTreeSet<String> {
    read("src/metrics.rs")
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.starts_with("clicktap_") && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
        .map(str::to_string)
        .collect()
}

/// The families a scrape holds, from its `# TYPE` lines.
fn scraped_families(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("clicktap_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_metric_is_documented_and_every_documented_metric_exists() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&format!(
        "[[webhooks]]\nid = \"main\"\nurl = \"{}\"\n",
        rx.url("/hook")
    ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    // Traffic, so that the labelled families have a child: clicks delivered (attempts,
    // latency, per-webhook gauges), a reload, a wrong admin token.
    for i in 0..5 {
        assert_eq!(ct.click(&format!("/r/{i}"), ""), 302);
    }
    rx.wait_for(5, Duration::from_secs(20));
    wait_until("5 delivered", Duration::from_secs(20), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 5.0
    });
    let (code, out, err) = ct.cli(&["reload"]);
    assert_eq!(code, 0, "reload: {out}{err}");
    let (status, _, _) = common::admin_exchange(
        ct.admin,
        "GET",
        "/api/v1/status",
        &[("Authorization", "Bearer not-the-token-at-all")],
        "",
    );
    assert_eq!(status, 401);
    let scrape = ct.admin_get("/metrics");

    let documented = documented_metrics();
    let registered = registered_metrics();
    let scraped = scraped_families(&scrape);
    assert!(
        scraped.len() > 30 && registered.len() > 40,
        "too few metrics read: scraped {scraped:?}, registered {registered:?}"
    );
    let scraped_undocumented: Vec<_> = scraped.difference(&documented).collect();
    let registered_undocumented: Vec<_> = registered.difference(&documented).collect();
    let documented_unknown: Vec<_> = documented
        .iter()
        .filter(|n| !scraped.contains(*n) && !registered.contains(*n))
        .collect();
    assert!(
        scraped_undocumented.is_empty()
            && registered_undocumented.is_empty()
            && documented_unknown.is_empty(),
        "docs/operations.md (\"Metrics\") and clicktap's metrics disagree.\n\
         exported by the running clicktap, not documented: {scraped_undocumented:?}\n\
         registered in src/metrics.rs, not documented: {registered_undocumented:?}\n\
         documented, neither exported nor registered: {documented_unknown:?}"
    );
}

/// GitHub's anchor for a heading: lower case, only letters, digits, `-`, `_` and
/// spaces kept, spaces as `-`; a repeated heading gets `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    let mut out = BTreeSet::new();
    for (_, line) in prose(text) {
        let Some(title) = line
            .trim_start_matches('#')
            .strip_prefix(' ')
            .filter(|_| line.starts_with('#'))
        else {
            continue;
        };
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of the Markdown links `[text](target)` in a line, outside code spans.
fn link_targets(line: &str) -> Vec<String> {
    let outside: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
    outside
        .match_indices("](")
        .filter_map(|(i, _)| {
            let rest = &outside[i + 2..];
            let end = rest.find(')')?;
            Some(rest[..end].trim().to_string())
        })
        .collect()
}

#[test]
fn every_relative_link_reaches_a_file_and_its_heading() {
    let mut files: Vec<PathBuf> = vec!["README.md".into(), "benches/README.md".into()];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| p.strip_prefix(ROOT).unwrap().to_path_buf())
        .collect();
    docs.sort();
    assert!(docs.len() >= 5, "docs/ holds too few pages: {docs:?}");
    files.extend(docs);
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = read(file.to_str().unwrap());
        for (n, line) in prose(&text) {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let dest = if path.is_empty() {
                    Path::new(ROOT).join(file)
                } else {
                    Path::new(ROOT).join(file.parent().unwrap()).join(path)
                };
                let here = format!("{}:{n}: ({target})", file.display());
                if !dest.exists() {
                    broken.push(format!("{here}: no file {}", dest.display()));
                    continue;
                }
                if let Some(anchor) = anchor
                    && dest.extension().is_some_and(|e| e == "md")
                {
                    let text = std::fs::read_to_string(&dest).unwrap();
                    if !anchors(&text).contains(anchor) {
                        broken.push(format!(
                            "{here}: no heading #{anchor} in {}",
                            dest.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} relative links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn anchors_follow_githubs_rule() {
    let a = anchors(
        "# The event (native format)\n## `[webhooks.filter]`\n## Slow visitors: `bash benches/slow_clients.sh`\n## Stats\n## Stats\n```\n# not a heading\n```\n",
    );
    for want in [
        "the-event-native-format",
        "webhooksfilter",
        "slow-visitors-bash-benchesslow_clientssh",
        "stats",
        "stats-1",
    ] {
        assert!(a.contains(want), "{want} not in {a:?}");
    }
    assert!(!a.contains("not-a-heading"));
}

/// The lines of the first fenced block after the heading `heading` of `text`.
fn block_after(text: &str, heading: &str) -> Vec<String> {
    let rest = text
        .split_once(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no heading {heading:?}"))
        .1;
    let block = rest.split("```").nth(1).expect("a fenced block");
    block.lines().skip(1).map(str::to_string).collect()
}

#[test]
fn readme_setup_and_test_commands_are_what_ci_runs() {
    let readme = block_after(&read("README.md"), "## Setup and tests");
    let ci: Vec<String> = read(".ci/run")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    assert_eq!(
        readme,
        ci[ci.len() - 2..],
        "README's setup and test commands are not the last two commands of .ci/run"
    );
    assert_eq!(readme, ["bash .ci/setup", "cargo test"]);
}

#[test]
fn readme_service_install_is_the_one_the_unit_file_gives() {
    let strip = |l: &str| l.split("  #").next().unwrap().trim().to_string();
    let readme: Vec<String> = block_after(&read("README.md"), "## Installing it as a service")
        .iter()
        .map(|l| strip(l))
        .filter(|l| !l.is_empty())
        .collect();
    // The unit's header: the commented lines between "The install" and the first blank
    // comment line.
    let unit: Vec<String> = read("conf/clicktap.service")
        .lines()
        .skip_while(|l| !l.contains("The install"))
        .skip(1)
        .map(|l| l.trim_start_matches('#').trim())
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .map(strip)
        .collect();
    assert!(
        unit.len() >= 6,
        "no install steps read from the unit: {unit:?}"
    );
    assert_eq!(
        readme, unit,
        "README's install and conf/clicktap.service's differ"
    );
}
