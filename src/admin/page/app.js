// clicktap's dashboard. Plain script, no framework, nothing fetched from another host.
//
// Every call goes to this listener's admin API; the browser sends the HttpOnly session
// cookie (the page never sees the token). The admin listener answers whole responses,
// so the page polls: the visible page is fetched again every POLL_MS.
//
// Whatever the API returns (links, referrers, user agents, receiver answers) can come
// from strangers: it is only ever put in the page as text (textContent, attributes),
// never parsed as HTML.
"use strict";

const POLL_MS = 3000;
const KINDS = ["human", "bot", "preview", "head", "prefetch"];
const SVG = "http://www.w3.org/2000/svg";
const TOPS = [
  ["links", "Links"], ["destinations", "Destinations"], ["countries", "Countries"],
  ["devices", "Devices"], ["browsers", "Browsers"], ["referrers", "Referrer hosts"],
];

// ---- small helpers ---------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

const $ = (id) => document.getElementById(id);

function fmtMs(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return ms + " ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return Math.round(s / 60) + " min";
  if (s < 86400) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}

function fmtRate(r) {
  return r === null || r === undefined ? "–" : (r * 100).toFixed(1) + " %";
}

function fmtTime(ms) {
  return new Date(ms).toLocaleString();
}

// A datetime-local input's value as ms since 1970, or null when empty.
function inputMs(input) {
  return input.value ? new Date(input.value).getTime() : null;
}

class SignedOut extends Error {}

async function api(path, options) {
  const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
  const r = await fetch(path, opts);
  if (r.status === 401) throw new SignedOut();
  const type = r.headers.get("content-type") || "";
  const body = type.includes("application/json") ? await r.json() : await r.text();
  return { status: r.status, ok: r.ok, body };
}

function post(path, json) {
  const options = { method: "POST" };
  if (json !== undefined) {
    options.headers = { "Content-Type": "application/json" };
    options.body = JSON.stringify(json);
  }
  return api(path, options);
}

// ---- pages -----------------------------------------------------------------------

const pages = { overview: drawOverview, webhooks: drawWebhooks, deliveries: drawLog, tail: drawTail };
let current = null;
let timer = null;

function show(name) {
  if (!pages[name]) name = "overview";
  current = name;
  for (const p of document.querySelectorAll(".page")) p.hidden = p.id !== name;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("on", a.dataset.page === name);
  refresh();
}

async function refresh() {
  clearTimeout(timer);
  try {
    await pages[current]();
    $("live").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    if (e instanceof SignedOut) return signedOut();
    $("live").textContent = "not reachable: " + e.message;
  }
  timer = setTimeout(refresh, POLL_MS);
}

function signedOut() {
  clearTimeout(timer);
  for (const id of ["nav", "signout", "live"]) $(id).hidden = true;
  for (const p of document.querySelectorAll(".page")) p.hidden = true;
  $("signin").hidden = false;
  $("signin-failed").hidden = !location.search.includes("signin=failed");
  $("token").focus();
}

// ---- overview --------------------------------------------------------------------

async function drawOverview() {
  const now = Date.now();
  const win = Number($("window").value);
  const [hour, day, top] = await Promise.all([
    api(`/api/v1/stats?since=${now - 3600e3}&until=${now}&step=60&top=1`),
    api(`/api/v1/stats?since=${now - 86400e3}&until=${now}&step=900&top=1`),
    api(`/api/v1/stats?since=${now - win}&until=${now}&top=10`),
  ]);
  const missing = [hour, day, top].find((r) => !r.ok);
  $("stats-missing").hidden = !missing;
  if (missing) {
    $("stats-missing").textContent =
      `The click statistics are not available (${missing.status}: ${missing.body.message || missing.body}).`;
    return;
  }
  drawTotals(top.body);
  drawSeries($("chart-hour"), hour.body);
  drawSeries($("chart-day"), day.body);
  $("legend").replaceChildren(...KINDS.map((k) => el("span", { class: "k-" + k, text: k })));
  $("tops").replaceChildren(...TOPS.map(([key, title]) => drawTop(title, (top.body.top || {})[key] || [])));
}

function drawTotals(stats) {
  const t = stats.totals || {};
  const cards = [["clicks", t.clicks]].concat(KINDS.map((k) => [k, t[k]]));
  if (stats.unique !== null && stats.unique !== undefined) cards.push(["unique", stats.unique]);
  if (stats.qr !== null && stats.qr !== undefined) cards.push(["QR", stats.qr]);
  $("totals").replaceChildren(...cards.map(([k, n]) =>
    el("div", { class: "card", id: "total-" + k },
      el("span", { class: "n", text: String(n ?? 0) }),
      el("span", { class: "k", text: k }))));
}

// Clicks per minute, stacked by kind, one bar per step.
function drawSeries(box, stats) {
  const series = stats.series || [];
  const W = 960, H = 160, left = 34, bottom = 18;
  const perMin = 60000 / (stats.step_ms || 60000);
  const totals = series.map((p) => KINDS.reduce((s, k) => s + (p[k] || 0), 0) * perMin);
  const max = Math.max(1, ...totals);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
  chart.append(svg("title", { text: `${totals.reduce((a, b) => a + b, 0) / perMin} clicks` }));
  const bw = (W - left) / Math.max(1, series.length);
  series.forEach((p, i) => {
    let y = H - bottom;
    for (const k of KINDS) {
      const h = ((p[k] || 0) * perMin / max) * (H - bottom - 8);
      if (h <= 0) continue;
      y -= h;
      chart.append(svg("rect", {
        class: "k-" + k, x: left + i * bw, y, width: Math.max(1, bw - 1), height: h,
      }, svg("title", { text: `${new Date(p.at_ms).toLocaleTimeString()} ${k}: ${p[k]}` })));
    }
  });
  chart.append(svg("line", { class: "axis", x1: left, x2: W, y1: H - bottom, y2: H - bottom }));
  chart.append(svg("text", { x: 2, y: 12, text: fmtNumber(max) }));
  chart.append(svg("text", { x: 2, y: H - bottom, text: "0" }));
  if (series.length) {
    const first = new Date(series[0].at_ms);
    const long = (stats.until_ms - stats.since_ms) > 6 * 3600e3;
    chart.append(svg("text", { x: left, y: H - 4, text: long ? first.toLocaleString() : first.toLocaleTimeString() }));
    chart.append(svg("text", { x: W - 60, y: H - 4, text: "now" }));
  }
  box.replaceChildren(chart);
}

function fmtNumber(n) {
  return n >= 10 ? String(Math.round(n)) : n.toFixed(1);
}

// One top list as horizontal bars: where people would rather look than read.
function drawTop(title, rows) {
  const W = 340, row = 20;
  const max = Math.max(1, ...rows.map((r) => r.count));
  const chart = svg("svg", { viewBox: `0 0 ${W} ${Math.max(1, rows.length) * row}`, role: "img" });
  rows.forEach((r, i) => {
    const y = i * row;
    const label = String(r.key === null || r.key === "" ? "(none)" : r.key);
    chart.append(
      svg("rect", { class: "barfill", x: 0, y: y + 2, width: (r.count / max) * (W - 50), height: row - 4 }),
      svg("text", { class: "label", x: 4, y: y + 14, text: label.length > 48 ? label.slice(0, 47) + "…" : label },
        svg("title", { text: label })),
      svg("text", { x: W - 4, y: y + 14, "text-anchor": "end", text: String(r.count) }),
    );
  });
  const box = el("div", { class: "top", id: "top-" + title.toLowerCase().split(" ")[0] }, el("h3", { text: title }));
  box.append(rows.length ? chart : el("p", { class: "note", text: "nothing in this window" }));
  return box;
}

// ---- webhooks --------------------------------------------------------------------

// Results of the buttons, kept across polls so an answer stays on screen.
const results = {};

async function drawWebhooks() {
  const since = Date.now() - Number($("hook-window").value);
  const list = (await api("/api/v1/webhooks")).body.webhooks || [];
  const sums = await Promise.all(list.map((w) =>
    api(`/api/v1/webhooks/${encodeURIComponent(w.id)}/deliveries?since_ms=${since}&limit=0&summary=true`)));
  const box = $("hooks");
  // Keep what the operator is typing: redraw only the facts of a webhook already shown.
  for (const [i, w] of list.entries()) {
    let card = document.getElementById("hook-" + w.id);
    if (!card) {
      card = hookCard(w);
      box.append(card);
    }
    fillHook(card, w, sums[i].body.summary || {});
  }
}

function hookCard(w) {
  const id = encodeURIComponent(w.id);
  const result = el("div", { class: "result" });
  const act = (label, run) => el("button", {
    type: "button", "data-action": label, onclick: async () => {
      result.replaceChildren(el("p", { class: "note", text: label + "…" }));
      try {
        const r = await run();
        results[w.id] = [label, r];
      } catch (e) {
        if (e instanceof SignedOut) return signedOut();
        results[w.id] = [label, { status: 0, body: { error: e.message } }];
      }
      showResult(result, results[w.id]);
      refresh();
    },
  }, label);
  const since = el("input", { type: "datetime-local", step: "1", name: "since", "aria-label": "replay from" });
  const until = el("input", { type: "datetime-local", step: "1", name: "until", "aria-label": "replay to" });
  const card = el("div", { class: "hook", id: "hook-" + w.id },
    el("h3", {}, el("span", { text: w.id }), el("span", { class: "state" })),
    el("div", { class: "url" }),
    el("div", { class: "facts" }),
    el("div", { class: "actions" },
      act("Test", () => post(`/api/v1/webhooks/${id}/test`)),
      act("Replay dead letters", () => post(`/api/v1/webhooks/${id}/dead-letters/replay`)),
      act("Reactivate", () => post(`/api/v1/webhooks/${id}/reactivate`)),
      el("form", { onsubmit: (e) => e.preventDefault() },
        el("label", { text: "from " }), since, el("label", { text: " to " }), until,
        act("Replay", () => {
          const s = inputMs(since), u = inputMs(until);
          if (s === null || u === null) {
            return Promise.resolve({ status: 0, body: { error: "give both ends of the range" } });
          }
          return post(`/api/v1/webhooks/${id}/replay`, { since: s, until: u });
        }))),
    result);
  if (results[w.id]) showResult(result, results[w.id]);
  return card;
}

// Dead letters are undelivered too: the oldest of what waits for an attempt and of
// the dead letters, and which it is.
function oldestUndelivered(w) {
  const waiting = w.oldest_undelivered_age_ms ?? null;
  const dead = w.oldest_dead_letter_age_ms ?? null;
  if (waiting === null && dead === null) return "none";
  if (dead !== null && (waiting === null || dead > waiting)) return fmtMs(dead) + " ago (a dead letter)";
  return fmtMs(waiting) + " ago";
}

// The last error with when it happened, and whether deliveries succeeded since.
function lastError(h) {
  const notes = [];
  if (h.last_failure_ms) notes.push(fmtMs(Math.max(0, Date.now() - h.last_failure_ms)) + " ago");
  if (h.last_success_ms && h.last_failure_ms && h.last_success_ms > h.last_failure_ms) notes.push("delivered since");
  return notes.length ? `${h.last_error} (${notes.join("; ")})` : h.last_error;
}

function fillHook(card, w, s) {
  const state = card.querySelector(".state");
  const shown = w.paused ? "paused" : w.health.state;
  state.textContent = shown;
  state.className = "state " + shown;
  card.querySelector(".url").textContent = `${w.format} → ${w.url}`;
  const lat = s.latency_ms || {};
  const facts = [
    ["success rate", fmtRate(s.success_rate) + (s.attempts !== undefined ? ` of ${s.attempts}` : "")],
    ["latency p50 / p90 / p99", [lat.p50, lat.p90, lat.p99].map((v) => (v ?? "–")).join(" / ") + " ms"],
    ["lag (events unread)", String(w.lag)],
    ["oldest undelivered", oldestUndelivered(w)],
    ["pending retries", String(w.retries ?? "–")],
    ["dead letters", String(w.dead_letters ?? "–")],
  ];
  for (const k of w.public_keys || []) facts.push(["public key (v1a)", k]);
  if (w.health.disabled_reason) facts.push(["disabled because", w.health.disabled_reason]);
  if (w.health.backoff_until_ms) {
    facts.push(["backing off until", new Date(w.health.backoff_until_ms).toLocaleString() +
      (w.health.backoff_reason ? ` (${w.health.backoff_reason})` : "")]);
  }
  if (w.health.last_error && w.health.last_error !== w.health.disabled_reason) {
    facts.push(["last error", lastError(w.health)]);
  }
  const wide = new Set(["public key (v1a)", "disabled because", "backing off until", "last error"]);
  card.querySelector(".facts").replaceChildren(...facts.map(([k, v]) =>
    el("div", { "data-fact": k, class: wide.has(k) ? "wide" : "" }, el("span", { text: k }), el("b", { text: v }))));
}

function showResult(box, [label, r]) {
  const b = r.body || {};
  let line;
  if (label === "Test" && r.ok) {
    line = b.delivered
      ? `Test delivered: ${b.status} in ${b.latency_ms} ms`
      : `Test failed: ${b.error || b.status} (${b.latency_ms} ms)`;
  } else if (r.ok && b.scheduled !== undefined) {
    line = `${label}: ${b.scheduled} events put back in line (not yet delivered)`;
  } else if (r.ok) {
    line = `${label}: done`;
  } else {
    line = `${label}: ${b.message || b.error || r.status}`;
  }
  box.replaceChildren(
    el("p", { class: r.ok && b.delivered !== false ? "good" : "bad", "data-result": label, text: line }),
    el("details", {}, el("summary", { text: "the whole answer" }), el("pre", { text: JSON.stringify(b, null, 2) })));
}

// ---- delivery log ----------------------------------------------------------------

const opened = new Set();

async function drawLog() {
  const q = new URLSearchParams({ limit: "200" });
  const hook = $("log-webhook").value;
  if (hook) q.set("webhook", hook);
  const code = $("log-code").value.trim();
  const status = /^[1-5][0-9][0-9]$/.test(code) ? code : $("log-status").value;
  if (status) q.set("status", status);
  const since = inputMs($("log-since")), until = inputMs($("log-until"));
  if (since !== null) q.set("since_ms", since);
  if (until !== null) q.set("until_ms", until);
  const [hooks, log] = await Promise.all([api("/api/v1/webhooks"), api("/api/v1/deliveries?" + q)]);
  const select = $("log-webhook");
  const ids = (hooks.body.webhooks || []).map((w) => w.id);
  if (select.options.length - 1 !== ids.length) {
    select.replaceChildren(el("option", { value: "", text: "all" }),
      ...ids.map((id) => el("option", { value: id, text: id })));
    select.value = hook;
  }
  const formats = Object.fromEntries((hooks.body.webhooks || []).map((w) => [w.id, w]));
  if (!log.ok) {
    $("log").replaceChildren(el("p", { class: "bad", text: log.body.message || String(log.status) }));
    return;
  }
  const rows = (log.body.deliveries || []).map((a) => {
    const key = `${a.webhook}/${a.seq}/${a.attempt}/${a.at_ms}`;
    const good = a.error === null;
    const d = el("details", { class: "attempt", "data-key": key, open: opened.has(key) },
      el("summary", {},
        el("span", { text: fmtTime(a.at_ms) }),
        el("span", { text: a.webhook }),
        el("span", { class: good ? "good" : "bad", text: good ? String(a.status) : (a.status || "error") + "" }),
        el("span", { text: a.latency_ms + " ms" }),
        el("span", { text: "event " + a.seq + ", attempt " + a.attempt })),
      el("div", { class: "body" }));
    d.addEventListener("toggle", () => {
      if (d.open) {
        opened.add(key);
        fillAttempt(d.querySelector(".body"), a, formats[a.webhook]);
      } else opened.delete(key);
    });
    if (d.open) fillAttempt(d.querySelector(".body"), a, formats[a.webhook]);
    return d;
  });
  $("log").replaceChildren(el("div", { class: "rows" }, ...rows));
  if (!rows.length) $("log").append(el("p", { class: "note", text: "no attempt matches" }));
}

async function fillAttempt(box, a, w) {
  const answer = el("pre", {
    text: `status:  ${a.status ?? "none"}\noutcome: ${a.outcome ?? "-"}\nlatency: ${a.latency_ms} ms\nerror:   ${a.error ?? "none"}\nat:      ${a.at}\n\n${a.response || "(no body)"}`,
  });
  const s = a.sent;
  const marks = [
    `message: ${a.message_id ?? "-"}`,
    a.test ? "a test send (not a stored event)" : `event ${a.seq} (${a.event_id}), attempt ${a.attempt}`,
    a.replay ? `a replay of ${a.replay_of ?? "an earlier message"}` : "",
  ].filter(Boolean).join("\n");
  let text;
  if (!s) {
    text = `${marks}\n\n(nothing was sent${a.error ? ": " + a.error : ""}; entries written before clicktap kept requests show no request)`;
  } else {
    const headers = Object.entries(s.headers || {}).map(([k, v]) => `${k}: ${v}`).join("\n");
    const body = s.body != null
      ? s.body
      : `(body not kept: ${s.body_bytes} bytes, over delivery.log_body_max_bytes)`;
    text = `${marks}\n\n${s.method} ${s.url}\n${headers}\n\n${body}\n\n(${s.body_bytes} bytes, sha256 ${s.body_sha256})`;
  }
  box.replaceChildren(
    el("h3", { text: "Request" }),
    el("p", { class: "note", text: "As sent: secrets (credentials, signatures, query values) are redacted before the log keeps it." }),
    el("pre", { text }),
    el("h3", { text: "Answer" }),
    answer);
}

// ---- event tail ------------------------------------------------------------------

const openEvents = new Set();

async function drawTail() {
  const r = await api("/api/v1/events?limit=50");
  const events = String(r.body).split("\n").filter((l) => l.trim()).map((l) => {
    try { return JSON.parse(l); } catch { return { raw: l }; }
  }).reverse();
  const rows = events.map((e) => {
    const d = el("details", { class: "event", "data-id": e.id, open: openEvents.has(e.id) },
      el("summary", {},
        el("span", { text: e.timestamp }),
        el("span", { class: "k-" + e.kind, text: e.kind }),
        el("span", { text: (e.link || {}).url }),
        el("span", { text: "→ " + ((e.destination || {}).url || "") }),
        el("span", { text: (e.geo || {}).country_code || "" })),
      el("div", { class: "body" }, el("pre", { text: JSON.stringify(e, null, 2) })));
    d.addEventListener("toggle", () => (d.open ? openEvents.add(e.id) : openEvents.delete(e.id)));
    return d;
  });
  $("events").replaceChildren(el("div", { class: "rows" }, ...rows));
  if (!rows.length) $("events").append(el("p", { class: "note", text: "no event stored yet" }));
}

// ---- start -----------------------------------------------------------------------

async function start() {
  for (const a of document.querySelectorAll("#nav a")) {
    a.addEventListener("click", (e) => {
      e.preventDefault();
      history.replaceState(null, "", "#" + a.dataset.page);
      show(a.dataset.page);
    });
  }
  for (const id of ["window", "hook-window"]) $(id).addEventListener("change", refresh);
  $("log-filter").addEventListener("change", refresh);
  $("log-filter").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
  try {
    await api("/api/v1/status");
  } catch (e) {
    if (e instanceof SignedOut) return signedOut();
  }
  if (location.search) history.replaceState(null, "", "/" + location.hash);
  for (const id of ["nav", "signout", "live"]) $(id).hidden = false;
  show(location.hash.slice(1));
}

document.addEventListener("DOMContentLoaded", start);
