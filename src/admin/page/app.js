// clicktap's dashboard. Plain script, no framework, nothing fetched from another host.
//
// Every call goes to this listener's admin API; the browser sends the HttpOnly session
// cookie (the page never sees the token). The admin listener answers whole responses,
// so the page polls: the visible page is fetched again every POLL_MS.
//
// Charts are drawn at the width they are shown at, again when the window changes size,
// so that their text keeps its size on a phone. Bulk operations (replaying dead letters
// or a time range, purging dead letters) ask in a dialog first.
//
// Whatever the API returns (links, referrers, user agents, receiver answers) can come
// from strangers: it is only ever put in the page as text (textContent, attributes),
// never parsed as HTML.
"use strict";

const POLL_MS = 3000;
// Rows per page in the delivery log and the events.
const PAGE = 50;
// The most one listing of the API gives (deliveries::MAX_LIMIT).
const MAX_LIMIT = 10000;
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

function del(path) {
  return api(path, { method: "DELETE" });
}

// Asks in a modal dialog; resolves to true only when the operator presses `ok`.
// Escape and Cancel answer false.
function confirmAction(title, text, ok) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = ok;
  return new Promise((resolve) => {
    const done = (yes) => () => dialog.close(yes ? "ok" : "cancel");
    const okButton = $("confirm-ok"), cancel = $("confirm-cancel");
    okButton.onclick = done(true);
    cancel.onclick = done(false);
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    cancel.focus();
  });
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

// Each refresh has a number; only the latest draws a paged list and sets the next
// poll, so that pages turned quickly never show an answer that came late.
let generation = 0;

async function refresh() {
  clearTimeout(timer);
  const mine = ++generation;
  try {
    await pages[current](mine);
    if (mine === generation) $("live").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    if (e instanceof SignedOut) return signedOut();
    $("live").textContent = "not reachable: " + e.message;
  }
  if (mine === generation) timer = setTimeout(refresh, POLL_MS);
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
  const health = drawHealth(now);
  const [hour, day, top] = await Promise.all([
    api(`/api/v1/stats?since=${now - 3600e3}&until=${now}&step=60&top=1`),
    api(`/api/v1/stats?since=${now - 86400e3}&until=${now}&step=900&top=1`),
    api(`/api/v1/stats?since=${now - win}&until=${now}&top=10`),
  ]);
  await health;
  const missing = [hour, day, top].find((r) => !r.ok);
  $("stats-missing").hidden = !missing;
  if (missing) {
    $("stats-missing").textContent =
      `The click statistics are not available (${missing.status}: ${missing.body.message || missing.body}).`;
    return;
  }
  drawTotals(top.body);
  charts = { hour: hour.body, day: day.body };
  drawCharts();
  $("legend").replaceChildren(...KINDS.map((k) => el("span", { class: "swatch k-" + k, text: k })));
  $("tops").replaceChildren(...TOPS.map(([key, title]) => drawTop(title, (top.body.top || {})[key] || [])));
}

// Each webhook's state at a glance: paused, healthy, alerting or disabled, with its
// success rate over the last hour, what waits and what is dead.
async function drawHealth(now) {
  const list = (await api("/api/v1/webhooks")).body.webhooks || [];
  const sums = await Promise.all(list.map((w) =>
    api(`/api/v1/webhooks/${encodeURIComponent(w.id)}/deliveries?since_ms=${now - 3600e3}&limit=0&summary=true`)));
  const fact = (k, v) => el("div", { "data-fact": k }, el("dt", { text: k }), el("dd", { text: v }));
  $("health").replaceChildren(...list.map((w, i) => {
    const s = sums[i].body.summary || {};
    const shown = stateOf(w);
    return el("div", { class: "hcard", id: "health-" + w.id },
      el("a", { class: "name", href: "#webhooks", "data-page": "webhooks", text: w.id }),
      el("span", { class: "state " + shown, text: shown }),
      el("dl", {},
        fact("success, last hour", fmtRate(s.success_rate) + (s.attempts ? ` of ${s.attempts}` : "")),
        fact("lag", String(w.lag)),
        fact("retries", String(w.retries ?? "–")),
        fact("dead letters", String(w.dead_letters ?? "–"))));
  }));
  if (!list.length) $("health").append(el("p", { class: "note", text: "no webhook configured" }));
}

// A paused webhook is shown as paused whatever its health.
function stateOf(w) {
  return w.paused ? "paused" : w.health.state;
}

// The overview's series, kept to draw them again at a new width.
let charts = null;

function drawCharts() {
  if (!charts || current !== "overview") return;
  drawSeries($("chart-hour"), charts.hour, "the last hour");
  drawSeries($("chart-day"), charts.day, "the last day");
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

// Clicks per minute, stacked by kind, one bar per step, drawn at the box's own width
// (one unit of the drawing is one pixel), so that its text is never squeezed.
function drawSeries(box, stats, span) {
  const series = stats.series || [];
  const pad = getComputedStyle(box);
  const inner = box.clientWidth - parseFloat(pad.paddingLeft) - parseFloat(pad.paddingRight);
  const W = Math.max(200, Math.floor(inner)), H = 160, left = 34, bottom = 18;
  const perMin = 60000 / (stats.step_ms || 60000);
  const totals = series.map((p) => KINDS.reduce((s, k) => s + (p[k] || 0), 0) * perMin);
  const max = Math.max(1, ...totals);
  const clicks = Math.round(totals.reduce((a, b) => a + b, 0) / perMin);
  const byKind = KINDS.map((k) => `${series.reduce((s, p) => s + (p[k] || 0), 0)} ${k}`).join(", ");
  const label = `Clicks per minute over ${span}: ${clicks} clicks (${byKind}), at most ${fmtNumber(max)} a minute.`;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": label });
  chart.append(svg("title", { text: label }));
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
    chart.append(svg("text", { x: W - 4, y: H - 4, "text-anchor": "end", text: "now" }));
  }
  box.replaceChildren(chart);
}

function fmtNumber(n) {
  return n >= 10 ? String(Math.round(n)) : n.toFixed(1);
}

// One top list: each key with its count, over a bar as long as the count (a style
// property set through the DOM, which the page's Content-Security-Policy allows).
function drawTop(title, rows) {
  const max = Math.max(1, ...rows.map((r) => r.count));
  const list = el("ol", { class: "toplist" }, ...rows.map((r) => {
    const label = String(r.key === null || r.key === "" ? "(none)" : r.key);
    const li = el("li", {},
      el("span", { class: "label", text: label.length > 120 ? label.slice(0, 119) + "…" : label, title: label }),
      el("span", { class: "count", text: String(r.count) }));
    li.style.setProperty("--w", ((r.count / max) * 100).toFixed(1) + "%");
    return li;
  }));
  const box = el("div", { class: "top", id: "top-" + title.toLowerCase().split(" ")[0] }, el("h3", { text: title }));
  box.append(rows.length ? list : el("p", { class: "note", text: "nothing in this window" }));
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

// The latest state of each webhook, for the questions the dialog asks.
const shownHooks = {};

function hookCard(w) {
  const id = encodeURIComponent(w.id);
  const result = el("div", { class: "result" });
  // `ask`, for a bulk operation, gives the dialog's title, text and button, or null to
  // go ahead without asking.
  const act = (label, run, ask) => el("button", {
    type: "button", "data-action": label, class: ask ? "bulk" : null, onclick: async () => {
      const question = ask && ask();
      if (question && !(await confirmAction(...question))) return;
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
      act("Replay dead letters", () => post(`/api/v1/webhooks/${id}/dead-letters/replay`), () => [
        `Replay the dead letters of ${w.id}?`,
        `${deadCount(w.id)} put back in line for delivery to ${w.id}, as new attempts.`,
        "Replay dead letters"]),
      act("Purge dead letters", () => del(`/api/v1/webhooks/${id}/dead-letters`), () => [
        `Purge the dead letters of ${w.id}?`,
        `${deadCount(w.id)} removed for good: they will not be delivered to ${w.id}, and cannot be replayed after this.`,
        "Purge dead letters"]),
      act("Reactivate", () => post(`/api/v1/webhooks/${id}/reactivate`)),
      el("form", { onsubmit: (e) => e.preventDefault() },
        el("label", { text: "from " }), since, el("label", { text: " to " }), until,
        act("Replay", () => {
          const s = inputMs(since), u = inputMs(until);
          if (s === null || u === null) {
            return Promise.resolve({ status: 0, body: { error: "give both ends of the range" } });
          }
          return post(`/api/v1/webhooks/${id}/replay`, { since: s, until: u });
        }, () => {
          const s = inputMs(since), u = inputMs(until);
          if (s === null || u === null) return null;
          return [`Replay a time range to ${w.id}?`,
            `Every event stored from ${fmtTime(s)} to ${fmtTime(u)} is delivered to ${w.id} again, ` +
            "including those it already received.", "Replay"];
        }))),
    result,
    messagesBox(w.id));
  if (results[w.id]) showResult(result, results[w.id]);
  return card;
}

// A webhook's undelivered messages (waiting for a retry, or dead letters), oldest
// first, 20 a page, each with its last error and a Resend: loaded when opened.
function messagesBox(hookId) {
  const box = el("details", { class: "messages" },
    el("summary", { text: "Undelivered messages" }),
    el("ul", { class: "message-rows" }),
    el("div", { class: "more" }));
  box.addEventListener("toggle", () => { if (box.open) loadMessages(hookId, box, null); });
  return box;
}

async function loadMessages(hookId, box, cursor) {
  const id = encodeURIComponent(hookId);
  const from = cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`;
  let r;
  try {
    r = await api(`/api/v1/webhooks/${id}/messages?status=all&limit=20${from}`);
  } catch (e) {
    if (e instanceof SignedOut) return signedOut();
    throw e;
  }
  const list = box.querySelector("ul");
  const more = box.querySelector(".more");
  if (cursor === null) list.replaceChildren();
  if (!r.ok) {
    more.replaceChildren(el("p", { class: "bad", text: (r.body && r.body.message) || String(r.status) }));
    return;
  }
  for (const m of r.body.messages || []) {
    const answer = el("span", { class: "result" });
    const resend = async () => {
      try {
        const a = await post(`/api/v1/webhooks/${id}/messages/${m.seq}/resend`);
        answer.replaceChildren(el("span", {
          class: a.ok ? "good" : "bad", "data-result": "Resend",
          text: a.ok ? `resent ${a.body.resent}: put back in line` : (a.body.message || String(a.status)),
        }));
      } catch (e) {
        if (e instanceof SignedOut) return signedOut();
        answer.replaceChildren(el("span", { class: "bad", text: e.message }));
      }
      refresh();
    };
    list.append(el("li", { "data-seq": String(m.seq) },
      el("span", { text: `#${m.seq} ${m.status}, ${m.attempts} attempt${m.attempts === 1 ? "" : "s"}` }),
      el("span", { text: [m.event_type, m.link].filter(Boolean).join(" ") }),
      el("span", { class: "error", text: m.last_error || "" }),
      el("button", { type: "button", "data-action": "Resend", onclick: resend }, "Resend"),
      answer));
  }
  if (!list.children.length) list.append(el("li", { class: "note", text: "none: nothing waits for delivery" }));
  const next = r.body.next_cursor;
  more.replaceChildren(next === null || next === undefined ? "" : el("button", {
    type: "button", "data-action": "Older messages", onclick: () => loadMessages(hookId, box, next),
  }, "Older messages"));
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

function deadCount(id) {
  const n = (shownHooks[id] || {}).dead_letters;
  if (n === undefined || n === null) return "Every dead letter is";
  return n === 1 ? "1 dead letter is" : `${n} dead letters are`;
}

function fillHook(card, w, s) {
  shownHooks[w.id] = w;
  const state = card.querySelector(".state");
  const shown = stateOf(w);
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
  } else if (r.ok && b.purged !== undefined) {
    line = `${label}: ${b.purged} removed`;
  } else if (r.ok) {
    line = `${label}: done`;
  } else {
    line = `${label}: ${b.message || b.error || r.status}`;
  }
  box.replaceChildren(
    el("p", { class: r.ok && b.delivered !== false ? "good" : "bad", "data-result": label, text: line }),
    el("details", {}, el("summary", { text: "the whole answer" }), el("pre", { tabindex: 0, text: JSON.stringify(b, null, 2) })));
}

// ---- delivery log ----------------------------------------------------------------

const opened = new Set();

// Paging: the API lists newest first up to `until`, so an older page asks for what is
// at or before the oldest attempt shown (`until`) and skips the attempts at that same
// millisecond that were already shown (`skip`). `back` holds the pages before.
const logPaging = { cursor: null, back: [], rows: [], more: false };

function resetLogPaging() {
  logPaging.cursor = null;
  logPaging.back = [];
}

function logOlder() {
  const rows = logPaging.rows;
  if (!rows.length || !logPaging.more) return;
  const until = rows[rows.length - 1].at_ms;
  const c = logPaging.cursor;
  const skip = (c && c.until === until ? c.skip : 0) + rows.filter((a) => a.at_ms === until).length;
  logPaging.back.push(c);
  logPaging.cursor = { until, skip };
  turnPage("log");
}

function logNewer() {
  if (!logPaging.back.length) return;
  logPaging.cursor = logPaging.back.pop();
  turnPage("log");
}

// Shows another page of the list `id` from its first row.
async function turnPage(id) {
  await refresh();
  $(id).scrollIntoView({ block: "start" });
}

async function drawLog(mine) {
  const cursor = logPaging.cursor;
  const skip = cursor ? cursor.skip : 0;
  // One more than the page, to know whether there is an older one.
  const q = new URLSearchParams({ limit: String(Math.min(MAX_LIMIT, skip + PAGE + 1)) });
  const hook = $("log-webhook").value;
  if (hook) q.set("webhook", hook);
  const code = $("log-code").value.trim();
  const status = /^[1-5][0-9][0-9]$/.test(code) ? code : $("log-status").value;
  if (status) q.set("status", status);
  const since = inputMs($("log-since")), until = inputMs($("log-until"));
  if (since !== null) q.set("since_ms", since);
  const bound = cursor ? (until === null ? cursor.until : Math.min(until, cursor.until)) : until;
  if (bound !== null) q.set("until_ms", bound);
  const [hooks, log] = await Promise.all([api("/api/v1/webhooks"), api("/api/v1/deliveries?" + q)]);
  if (mine !== generation) return;
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
  const all = log.body.deliveries || [];
  const page = all.slice(skip, skip + PAGE);
  logPaging.rows = page;
  logPaging.more = all.length > skip + PAGE && skip + PAGE < MAX_LIMIT;
  const rows = page.map((a) => {
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
  const n = logPaging.back.length;
  $("log-page").textContent = page.length
    ? `page ${n + 1}: ${fmtTime(page[0].at_ms)} back to ${fmtTime(page[page.length - 1].at_ms)}`
    : `page ${n + 1}`;
  $("log-newer").disabled = n === 0;
  $("log-older").disabled = !logPaging.more;
}

async function fillAttempt(box, a, w) {
  const answer = el("pre", {
    tabindex: 0,
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
    el("pre", { tabindex: 0, text }),
    el("h3", { text: "Answer" }),
    answer);
}

// ---- event tail ------------------------------------------------------------------

const openEvents = new Set();

// Paging: the API gives the newest `limit` events, so a page further back asks for more
// and shows a slice. `anchor` is the id of the newest event on the page shown (null on
// the first page, which follows new events); `at` is where it stood last time, so that
// the page stays put while new events arrive.
const eventPaging = { anchor: null, at: 0, list: [], more: false };

function eventsOlder() {
  if (!eventPaging.more) return;
  eventPaging.at += PAGE;
  eventPaging.anchor = eventPaging.list[eventPaging.at].id ?? null;
  turnPage("events");
}

function eventsNewer() {
  eventPaging.at = Math.max(0, eventPaging.at - PAGE);
  eventPaging.anchor = eventPaging.at === 0 ? null : (eventPaging.list[eventPaging.at].id ?? null);
  turnPage("events");
}

async function drawTail(mine) {
  const limit = Math.min(MAX_LIMIT, eventPaging.at + 2 * PAGE + 1);
  const r = await api(`/api/v1/events?limit=${limit}`);
  if (mine !== generation) return;
  const list = String(r.body).split("\n").filter((l) => l.trim()).map((l) => {
    try { return JSON.parse(l); } catch { return { raw: l }; }
  }).reverse();
  let at = 0;
  if (eventPaging.at > 0) {
    const found = eventPaging.anchor === null ? -1 : list.findIndex((e) => e.id === eventPaging.anchor);
    at = found >= 0 ? found : Math.min(eventPaging.at, Math.max(0, list.length - 1));
  }
  eventPaging.at = at;
  eventPaging.list = list;
  eventPaging.more = list.length > at + PAGE;
  const events = list.slice(at, at + PAGE);
  const rows = events.map((e) => {
    const d = el("details", { class: "event", "data-id": e.id, open: openEvents.has(e.id) },
      el("summary", {},
        el("span", { text: e.timestamp }),
        el("span", { class: "swatch k-" + e.kind, text: e.kind }),
        el("span", { text: (e.link || {}).url }),
        el("span", { text: "→ " + ((e.destination || {}).url || "") }),
        el("span", { text: (e.geo || {}).country_code || "" })),
      el("div", { class: "body" }, el("pre", { tabindex: 0, text: JSON.stringify(e, null, 2) })));
    d.addEventListener("toggle", () => (d.open ? openEvents.add(e.id) : openEvents.delete(e.id)));
    return d;
  });
  $("events").replaceChildren(el("div", { class: "rows" }, ...rows));
  if (!rows.length) $("events").append(el("p", { class: "note", text: "no event stored yet" }));
  $("events-page").textContent = events.length
    ? `events ${at + 1} to ${at + events.length}, newest first` : "";
  $("events-newer").disabled = at === 0;
  $("events-older").disabled = !eventPaging.more;
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
  // A webhook's name on the overview opens the webhooks page.
  $("health").addEventListener("click", (e) => {
    const link = e.target.closest("a[data-page]");
    if (!link) return;
    e.preventDefault();
    history.replaceState(null, "", "#" + link.dataset.page);
    show(link.dataset.page);
  });
  for (const id of ["window", "hook-window"]) $(id).addEventListener("change", refresh);
  const filtered = () => { resetLogPaging(); refresh(); };
  $("log-filter").addEventListener("change", filtered);
  $("log-filter").addEventListener("submit", (e) => { e.preventDefault(); filtered(); });
  $("log-older").addEventListener("click", logOlder);
  $("log-newer").addEventListener("click", logNewer);
  $("events-older").addEventListener("click", eventsOlder);
  $("events-newer").addEventListener("click", eventsNewer);
  // Charts follow the window's width, drawn again once per frame at most.
  let frame = 0;
  window.addEventListener("resize", () => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(drawCharts);
  });
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
