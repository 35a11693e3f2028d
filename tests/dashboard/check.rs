//! What the dashboard must be in every state a test leaves it in, at a phone's width
//! (390 x 844) and a desktop's (1,440 x 900): no horizontal scroll and nothing off
//! the side, the nav hidden while signed out, charts drawn at the width they are shown
//! at (no squeezed text), every part of a row shown whole, and no serious or critical
//! finding of axe-core (tests/data/axe-core, injected into the page by WebDriver, which
//! the page's Content-Security-Policy does not govern). Each state is saved as
//! `<state>-<width>.png`.

use fantoccini::Client;
use serde_json::Value;
use std::time::{Duration, Instant};

use super::browser::screenshot;

/// The viewports every state is checked at: a phone, then a desktop (the test goes on
/// at the last).
pub const VIEWPORTS: [(u32, u32); 2] = [(390, 844), (1440, 900)];

const AXE: &str = include_str!("../data/axe-core/axe.min.js");

/// Problems of the page's layout as it stands, as sentences; none when it is right.
const LAYOUT: &str = r##"
const problems = [];
const W = window.innerWidth;
const shown = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";
const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
  (e.className && typeof e.className === "string" ? "." + e.className.trim().split(/\s+/).join(".") : "") +
  ` "${(e.textContent || "").trim().slice(0, 40)}"`;
const root = document.documentElement;
if (root.scrollWidth > W) problems.push(`the page is ${root.scrollWidth} px wide in a window ${W} px wide`);
for (const e of document.querySelectorAll("header *, main *, dialog[open] *")) {
  if (!shown(e) || (e.closest("pre") && e.tagName !== "PRE")) continue;
  const r = e.getBoundingClientRect();
  if (r.width > 0 && (r.right > W + 0.5 || r.left < -0.5)) {
    problems.push(`${name(e)} is off the side: from ${Math.round(r.left)} to ${Math.round(r.right)} px`);
  }
}
if (shown(document.getElementById("signin"))) {
  for (const id of ["nav", "signout", "live"]) {
    if (shown(document.getElementById(id))) problems.push(`#${id} shows while signed out`);
  }
}
for (const s of document.querySelectorAll("svg")) {
  if (s.getAttribute("preserveAspectRatio") === "none") problems.push(`${name(s)} is stretched (preserveAspectRatio="none")`);
  if (!shown(s)) continue;
  const drawn = s.viewBox.baseVal.width;
  if (drawn && Math.abs(drawn - s.clientWidth) > 1) {
    problems.push(`${name(s)} is drawn ${drawn} wide and shown ${s.clientWidth} wide: its text is scaled`);
  }
  for (const t of s.querySelectorAll("text")) {
    const h = t.getBoundingClientRect().height;
    if (h < 10) problems.push(`chart text "${t.textContent}" is ${h.toFixed(1)} px high`);
  }
}
for (const e of document.querySelectorAll(".rows summary > span")) {
  if (!shown(e)) continue;
  if (e.scrollWidth > e.clientWidth + 1) problems.push(`${name(e)} is cut: ${e.scrollWidth} px of text in ${e.clientWidth}`);
}
return problems.slice(0, 20);
"##;

/// Runs axe-core (injected once per page load) and returns its serious and critical
/// violations as `{id, impact, help, nodes}`.
const RUN_AXE: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ["violations"] })
  .then((r) => done(r.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => n.target.join(" ") + ": " + (n.failureSummary || "").replace(/\s+/g, " ")) }))))
  .catch((e) => done({ error: String(e) }));
"#;

/// Sets the window so that the page's viewport is `width` x `height`.
pub async fn viewport(c: &Client, width: u32, height: u32) {
    let inner = || async {
        let v = c
            .execute("return [window.innerWidth, window.innerHeight]", vec![])
            .await
            .unwrap();
        (v[0].as_i64().unwrap(), v[1].as_i64().unwrap())
    };
    c.set_window_size(width, height).await.unwrap();
    // The window's frame takes some of its height: add it back.
    let (_, h) = inner().await;
    let frame = (height as i64 - h).max(0) as u32;
    c.set_window_size(width, height + frame).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = inner().await;
        if got == (width as i64, height as i64) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the viewport is {got:?}, not {width} x {height}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until the layout has no problem (charts are drawn again after a resize),
/// or fails with the problems.
pub async fn layout(c: &Client, state: &str, width: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let problems = c.execute(LAYOUT, vec![]).await.unwrap();
        let list = problems.as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{state} at {width} px wide:\n  {}",
            list.iter()
                .map(|p| p.as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
                .join("\n  ")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fails on any serious or critical axe-core violation, naming its rule, its impact
/// and the nodes.
pub async fn accessible(c: &Client, state: &str, width: u32) {
    let loaded = c
        .execute("return typeof axe !== 'undefined'", vec![])
        .await
        .unwrap();
    if loaded != Value::Bool(true) {
        c.execute(AXE, vec![]).await.unwrap();
    }
    let found = c.execute_async(RUN_AXE, vec![]).await.unwrap();
    if let Some(e) = found.get("error") {
        panic!("axe-core failed on {state} at {width} px: {e}");
    }
    let list = found.as_array().cloned().unwrap_or_default();
    let text: Vec<String> = list
        .iter()
        .map(|v| {
            let nodes: Vec<String> = v["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| format!("    {}", n.as_str().unwrap_or_default()))
                .collect();
            format!(
                "  {} ({}): {}\n{}",
                v["id"].as_str().unwrap_or_default(),
                v["impact"].as_str().unwrap_or_default(),
                v["help"].as_str().unwrap_or_default(),
                nodes.join("\n")
            )
        })
        .collect();
    assert!(
        text.is_empty(),
        "axe-core finds, on {state} at {width} px wide:\n{}",
        text.join("\n")
    );
}

/// The state the page is in, checked at both viewports and saved as
/// `<state>-390.png` and `<state>-1440.png`; the page is left at the desktop's.
pub async fn at_both_widths(c: &Client, state: &str) {
    for (width, height) in VIEWPORTS {
        viewport(c, width, height).await;
        layout(c, state, width).await;
        accessible(c, state, width).await;
        screenshot(c, &format!("{state}-{width}")).await;
    }
}
