//! The dashboard in a real browser: the real binary in front of a real upstream and
//! receivers, Debian's chromium driven through WebDriver (chromedriver, fantoccini).
//! An operator signs in, sees a click made during the test on the overview and in the
//! event tail, presses Test and reads its answer, opens an attempt in the delivery
//! log; sees each webhook's health on the overview, pages back through the delivery
//! log and the events, and is asked before a bulk replay or purge.
//!
//! Every state the browser tests leave the page in is checked at a phone's width and a
//! desktop's (`dashboard/check.rs`: no horizontal scroll, legible charts, whole rows,
//! no serious or critical axe-core finding) and saved as
//! `target/dashboard-screenshots/<state>-<width>.png`.
//!
//! Without chromium and chromedriver the browser tests fail and say what to install.
//! The session rules (cookie attributes, the same-origin rule, sign-out, a token
//! changed by a reload) are checked over plain HTTP as well, where each header is seen.

#[path = "dashboard/browser.rs"]
mod browser;
#[path = "dashboard/check.rs"]
mod check;
mod common;

use browser::{
    browser, chromium, click, one_at_a_time, open_page, sign_in, start_driver, wait_script,
    wait_text,
};
use check::at_both_widths;
use common::clicktap::TOKEN;
use common::receiver;
use common::{BROWSER, Clicktap, Options, admin_exchange, upstream, wait_until};
use fantoccini::{Client, Locator};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

/// The seed of RFC 8032's first test key, as a `whsk_` secret key, and its public key.
const SECRET_KEY: &str = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
const PUBLIC_KEY: &str = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

/// A webhook that delivers, and ones whose receiver refuses, so that every number on
/// the pages has something to show: `main` to `ok`, signing with a secret and a secret
/// key; `down` to `down`, one attempt; `gone` to `down` + `gone` (a path the refusing
/// receiver answers 410); `paused` (`enabled = false`) to `ok`.
fn options(ok: &str, down: &str) -> Options {
    Options::default()
        .tail(&format!("[[webhooks]]\nid = \"main\"\nurl = \"{ok}\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nsecret_key = \"{SECRET_KEY}\"\n"))
        .tail(&format!(
            "[[webhooks]]\nid = \"down\"\nurl = \"{down}\"\n[webhooks.retry]\nmax_attempts = 1\n"
        ))
        .tail(&format!("[[webhooks]]\nid = \"gone\"\nurl = \"{down}gone\"\n"))
        .tail(&format!(
            "[[webhooks]]\nid = \"paused\"\nurl = \"{ok}\"\nenabled = false\n"
        ))
}

/// A receiver that answers 410 on `/gone` and 500 elsewhere.
fn refusing() -> common::server::TestServer {
    receiver::scripted(|_, s| async move {
        let status = if s.uri.path() == "/gone" { 410 } else { 500 };
        common::reply(status, &[], "nope")
    })
}

/// GET on the admin API with the token; the answer's JSON.
fn api(ct: &Clicktap, path: &str) -> serde_json::Value {
    serde_json::from_str(&ct.admin_get(path)).unwrap()
}

/// The overview shows the clicks made by the test: totals by kind, a bar in the hour's
/// chart, the link in the top list.
async fn overview(c: &Client) {
    wait_text(c, "#total-clicks", "4").await;
    wait_text(c, "#total-human", "1").await;
    wait_text(c, "#total-preview", "1").await;
    wait_text(c, "#total-head", "1").await;
    let top = wait_text(c, "#top-links li", "/r/dashboard").await;
    assert!(
        top.trim_end().ends_with('3'),
        "three clicks on the link: {top:?}"
    );
    let bars = c
        .find_all(Locator::Css("#chart-hour rect.k-human"))
        .await
        .unwrap();
    assert!(!bars.is_empty(), "the hour's chart has a bar for the click");
}

/// Whether the element `css` is shown (not `display: none`, not hidden).
async fn shown(c: &Client, css: &str) -> bool {
    let script = format!(
        "const e = document.querySelector({css:?}); return !!e && e.getClientRects().length > 0"
    );
    c.execute(&script, vec![]).await.unwrap() == serde_json::Value::Bool(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_sees_a_click_arrive_and_tests_a_webhook() {
    let _one = one_at_a_time().await;
    let binary = chromium();
    let driver = start_driver();
    let up = upstream::start();
    let rx = receiver::ok();
    let refusing = refusing();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(
        dir.path(),
        up.addr,
        &options(&rx.url("/clicks"), &refusing.url("/")),
    );
    let c = browser(&driver, binary).await;
    let base = format!("http://{}", ct.admin);

    c.goto(&format!("{base}/")).await.unwrap();
    // Signed out, the nav is not shown (`hidden` wins over its display: flex).
    c.wait().for_element(Locator::Id("token")).await.unwrap();
    assert!(!shown(&c, "#nav").await, "the nav shows while signed out");
    sign_in(&c, "not-the-admin-token").await;
    wait_text(&c, "#signin-failed", "not the admin token").await;
    at_both_widths(&c, "signin").await;
    sign_in(&c, TOKEN).await;
    c.wait()
        .for_element(Locator::Css("#nav a.on"))
        .await
        .unwrap();
    assert!(shown(&c, "#nav").await, "the nav shows once signed in");
    let cookie = c.execute("return document.cookie", vec![]).await.unwrap();
    assert_eq!(
        cookie, "",
        "the session cookie is HttpOnly: no script reads it"
    );
    let page = c.source().await.unwrap();
    assert!(!page.contains(TOKEN), "the token never reaches the page");

    // A click made now shows on the overview without a reload.
    assert_eq!(ct.click("/r/dashboard", BROWSER), 302);
    ct.click("/r/dashboard", "User-Agent: curl/8.5.0\r\n");
    ct.click(
        "/r/x?utm_source=chat",
        "User-Agent: Slackbot-LinkExpanding 1.0\r\n",
    );
    ct.click("HEAD /r/dashboard", BROWSER);
    overview(&c).await;
    at_both_widths(&c, "overview").await;

    // And in the event tail, whole when opened.
    open_page(&c, "tail").await;
    wait_text(&c, "#events summary", "http://sho.rt/r/dashboard").await;
    click(&c, "#events details summary").await;
    wait_text(&c, "#events details[open] pre", "\"user_agent\"").await;
    at_both_widths(&c, "events").await;

    // Test answers on the webhook's card.
    open_page(&c, "webhooks").await;
    wait_text(&c, "#hook-main .facts", "lag").await;
    click(&c, "#hook-main button[data-action=Test]").await;
    wait_text(&c, "#hook-main [data-result=Test]", "Test delivered: 200").await;
    assert!(
        rx.requests()
            .iter()
            .any(|s| s.headers.get("x-clicktap-test").is_some()),
        "the test event reached the receiver"
    );
    wait_until(
        "the refused clicks' dead letters",
        Duration::from_secs(10),
        || ct.metric("clicktap_delivery_dead_total", "") >= 4.0,
    );
    wait_text(&c, "#hook-down [data-fact='dead letters']", "4").await;
    // Dead letters are undelivered too; the last error says when it was.
    wait_text(
        &c,
        "#hook-down [data-fact='oldest undelivered']",
        "ago (a dead letter)",
    )
    .await;
    wait_text(&c, "#hook-down [data-fact='last error']", "ago)").await;
    wait_text(&c, "#hook-main [data-fact='success rate']", "100.0 %").await;
    // The v1a public key, never the secret key; why a webhook is disabled.
    wait_text(&c, "#hook-main [data-fact='public key (v1a)']", PUBLIC_KEY).await;
    wait_text(
        &c,
        "#hook-gone [data-fact='disabled because']",
        "answered 410 Gone",
    )
    .await;
    let page = c.source().await.unwrap();
    assert!(
        !page.contains(&SECRET_KEY[5..]),
        "the secret key is on the page"
    );
    at_both_widths(&c, "webhooks").await;

    // The delivery log, filtered to failures, opens an attempt to its answer.
    open_page(&c, "deliveries").await;
    wait_text(&c, "#log summary", "main").await;
    let status = c.find(Locator::Id("log-status")).await.unwrap();
    status.select_by_value("failure").await.unwrap();
    wait_text(&c, "#log summary", "down").await;
    let rows = c.find_all(Locator::Css("#log summary")).await.unwrap();
    for r in &rows {
        assert!(
            !r.text().await.unwrap().contains("main"),
            "only failures listed"
        );
    }
    let mut down_row = None;
    for r in &rows {
        if r.text().await.unwrap().contains("down") {
            down_row = Some(r);
            break;
        }
    }
    down_row.expect("a failure of down").click().await.unwrap();
    wait_text(&c, "#log details[open] .body", "status:  500").await;
    wait_text(&c, "#log details[open] .body", "\"link\"").await;
    at_both_widths(&c, "deliveries").await;

    // Signing out ends the session: the API refuses the browser's next call.
    click(&c, "#signout button").await;
    c.wait().for_element(Locator::Id("token")).await.unwrap();
    assert!(!shown(&c, "#nav").await, "the nav shows after sign-out");
    let after = c
        .execute_async(
            "const done = arguments[0]; fetch('/api/v1/status').then(r => done(r.status))",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(after, 401);
    c.close().await.unwrap();
}

/// The `data-*` keys of the rows `css` shows.
async fn keys(c: &Client, css: &str, attr: &str) -> Vec<String> {
    let script = format!(
        "return [...document.querySelectorAll({css:?})].map((e) => e.getAttribute({attr:?}))"
    );
    let v = c.execute(&script, vec![]).await.unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap_or_default().to_string())
        .collect()
}

/// Goes through every page of a paged list (`list` its rows, `older` and `newer` its
/// buttons) and back to the first; returns each page's keys.
async fn pages(c: &Client, list: &str, attr: &str, older: &str, newer: &str) -> Vec<Vec<String>> {
    let mut seen = vec![keys(c, list, attr).await];
    loop {
        let script = format!("return document.querySelector({older:?}).disabled");
        if c.execute(&script, vec![]).await.unwrap() == serde_json::Value::Bool(true) {
            break;
        }
        let first = seen.last().unwrap()[0].clone();
        click(c, older).await;
        // The next page is there when its first row is another.
        wait_script(
            c,
            "the older page",
            &format!(
                "const e = document.querySelector({list:?}); return !!e && e.getAttribute({attr:?}) !== {first:?}"
            ),
        )
        .await;
        seen.push(keys(c, list, attr).await);
        assert!(seen.len() < 10, "paging never ends");
    }
    for _ in 1..seen.len() {
        click(c, newer).await;
    }
    let first = seen[0][0].clone();
    wait_script(
        c,
        "back on the first page",
        &format!(
            "return document.querySelector({list:?}).getAttribute({attr:?}) === {first:?} && document.querySelector({newer:?}).disabled"
        ),
    )
    .await;
    assert_eq!(keys(c, list, attr).await, seen[0], "back on the first page");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_health_the_log_and_events_page_back_and_bulk_operations_ask_first() {
    let _one = one_at_a_time().await;
    let binary = chromium();
    let driver = start_driver();
    let up = upstream::start();
    let rx = receiver::ok();
    let refusing = refusing();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(
        dir.path(),
        up.addr,
        &options(&rx.url("/clicks"), &refusing.url("/")),
    );
    // More clicks than one page holds (50): 60 events, and over 120 attempts (main and
    // down one each per event, gone a 410 and then disabled).
    const CLICKS: usize = 60;
    for i in 0..CLICKS {
        assert_eq!(ct.click(&format!("/r/page{i}"), BROWSER), 302);
    }
    wait_until(
        "every click delivered or dead",
        Duration::from_secs(30),
        || {
            ct.metric("clicktap_delivery_delivered_total", "webhook=\"main\"") >= CLICKS as f64
                && ct.metric("clicktap_delivery_dead_total", "webhook=\"down\"") >= CLICKS as f64
                && ct.metric("clicktap_delivery_disabled_total", "") >= 1.0
        },
    );
    let c = browser(&driver, binary).await;
    c.goto(&format!("http://{}/", ct.admin)).await.unwrap();
    sign_in(&c, TOKEN).await;

    // Each webhook's health at a glance; a paused one is paused.
    wait_text(&c, "#health-main .state", "healthy").await;
    wait_text(
        &c,
        "#health-main [data-fact='success, last hour']",
        "100.0 %",
    )
    .await;
    wait_text(&c, "#health-gone .state", "disabled").await;
    wait_text(&c, "#health-paused .state", "paused").await;
    wait_text(&c, "#health-down [data-fact='dead letters']", "60").await;
    wait_text(&c, "#total-clicks", "60").await;
    at_both_widths(&c, "overview-health").await;
    click(&c, "#health-paused a").await;
    wait_text(&c, "#hook-paused .state", "paused").await;

    // Bulk operations ask first: Cancel leaves the dead letters as they are.
    wait_text(&c, "#hook-down [data-fact='dead letters']", "60").await;
    for action in ["Replay dead letters", "Purge dead letters"] {
        click(&c, &format!("#hook-down button[data-action='{action}']")).await;
        wait_script(
            &c,
            "the dialog",
            "return document.querySelector('#confirm').open",
        )
        .await;
        wait_text(&c, "#confirm", "60 dead letters").await;
        if action == "Purge dead letters" {
            at_both_widths(&c, "confirm").await;
        }
        click(&c, "#confirm-cancel").await;
        wait_script(
            &c,
            "the dialog closed",
            "return !document.querySelector('#confirm').open",
        )
        .await;
    }
    assert!(
        c.find_all(Locator::Css("#hook-down [data-result]"))
            .await
            .unwrap()
            .is_empty(),
        "nothing was sent"
    );
    assert_eq!(api(&ct, "/api/v1/webhooks/down")["dead_letters"], 60);

    // Its undelivered messages, listed with their errors, and one resent: the resend is
    // an attempt now (a replay of the message), which fails again into a dead letter.
    click(&c, "#hook-down details.messages summary").await;
    let first = wait_text(&c, "#hook-down .messages li", "dead").await;
    assert!(first.contains("500"), "the last error is shown: {first}");
    at_both_widths(&c, "messages").await;
    let replays = || {
        api(
            &ct,
            "/api/v1/webhooks/down/deliveries?replay=true&limit=100",
        )["deliveries"]
            .as_array()
            .map_or(0, Vec::len)
    };
    click(&c, "#hook-down .messages li button[data-action='Resend']").await;
    wait_text(
        &c,
        "#hook-down .messages [data-result='Resend']",
        "resent 1",
    )
    .await;
    wait_until(
        "the resend attempted and dead-lettered again",
        Duration::from_secs(20),
        || replays() == 1 && api(&ct, "/api/v1/webhooks/down")["dead_letters"] == 60,
    );

    // Accepted, the purge goes through.
    click(&c, "#hook-down button[data-action='Purge dead letters']").await;
    wait_script(
        &c,
        "the dialog",
        "return document.querySelector('#confirm').open",
    )
    .await;
    click(&c, "#confirm-ok").await;
    wait_text(
        &c,
        "#hook-down [data-result='Purge dead letters']",
        "60 removed",
    )
    .await;
    assert_eq!(api(&ct, "/api/v1/webhooks/down")["dead_letters"], 0);
    // The replay of a time range asks as well.
    let bulk = keys(&c, "#hook-down button.bulk", "data-action").await;
    assert_eq!(
        bulk,
        ["Replay dead letters", "Purge dead letters", "Replay"]
    );

    // The delivery log pages back through every attempt, each once.
    open_page(&c, "deliveries").await;
    wait_text(&c, "#log-page", "page 1").await;
    let log = pages(&c, "#log details", "data-key", "#log-older", "#log-newer").await;
    let all = api(&ct, "/api/v1/deliveries?limit=10000");
    let want: BTreeSet<String> = all["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}/{}/{}/{}",
                a["webhook"].as_str().unwrap(),
                a["seq"],
                a["attempt"],
                a["at_ms"]
            )
        })
        .collect();
    assert!(want.len() > 2 * CLICKS, "{} attempts", want.len());
    let sizes: Vec<usize> = log.iter().map(Vec::len).collect();
    let full: Vec<usize> = (0..want.len())
        .step_by(50)
        .map(|i| (want.len() - i).min(50))
        .collect();
    assert_eq!(sizes, full, "pages of 50 attempts, the last one less");
    let got: BTreeSet<String> = log.iter().flatten().cloned().collect();
    assert_eq!(got.len(), want.len(), "no attempt on two pages");
    assert_eq!(got, want, "every attempt on a page");
    click(&c, "#log-older").await;
    wait_text(&c, "#log-page", "page 2").await;
    at_both_widths(&c, "deliveries-older").await;

    // And the events, newest first.
    open_page(&c, "tail").await;
    wait_text(&c, "#events-page", "events 1 to 50").await;
    let events = pages(
        &c,
        "#events details",
        "data-id",
        "#events-older",
        "#events-newer",
    )
    .await;
    let sizes: Vec<usize> = events.iter().map(Vec::len).collect();
    assert_eq!(sizes, [50, 10], "pages of the events");
    let ids: BTreeSet<String> = events.iter().flatten().cloned().collect();
    assert_eq!(ids.len(), CLICKS, "every event once");
    click(&c, "#events-older").await;
    wait_text(&c, "#events-page", "events 51 to 60").await;
    at_both_widths(&c, "events-older").await;
    c.close().await.unwrap();
}

fn sign_in_raw(admin: SocketAddr, token: &str) -> (u16, String) {
    let form = format!("token={token}");
    let (status, head, _) = admin_exchange(
        admin,
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", &format!("http://{admin}")),
        ],
        &form,
    );
    (status, head)
}

fn session_id(head: &str) -> String {
    let line = head
        .lines()
        .find(|l| l.starts_with("set-cookie: clicktap_session="))
        .unwrap_or_else(|| panic!("no session cookie in {head}"));
    line["set-cookie: clicktap_session=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn the_session_cookie_is_strict_refused_cross_site_and_ended_by_sign_out_or_a_new_token() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &options(&rx.url("/"), &rx.url("/")));
    let a = ct.admin;

    // The page and its assets, with a policy that allows nothing from elsewhere.
    for path in ["/", "/app.js", "/app.css"] {
        let (status, head, _) = admin_exchange(a, "GET", path, &[], "");
        assert_eq!(status, 200, "{path}");
        assert!(
            head.contains("content-security-policy: default-src 'self'"),
            "{head}"
        );
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
        assert!(head.contains("x-frame-options: deny"), "{head}");
    }

    // A wrong token: back to the form, slowed, no cookie, and never written to the log.
    let wrong = "wrong-token-that-must-not-be-logged";
    let (status, head) = sign_in_raw(a, wrong);
    assert_eq!(status, 303);
    assert!(head.contains("location: /?signin=failed"), "{head}");
    assert!(!head.contains("set-cookie"), "{head}");
    assert!(
        !ct.log_text().contains(wrong),
        "the token given is not logged"
    );
    assert!(
        ct.log_text().contains("sign-in refused"),
        "the failure is logged"
    );

    // The right one: a random id, HttpOnly, SameSite=Strict, with an expiry.
    let (status, head) = sign_in_raw(a, TOKEN);
    assert_eq!(status, 303, "{head}");
    let cookie_line = head.lines().find(|l| l.starts_with("set-cookie")).unwrap();
    for attr in ["httponly", "samesite=strict", "path=/", "max-age=43200"] {
        assert!(cookie_line.contains(attr), "{cookie_line} lacks {attr}");
    }
    let id = session_id(&head);
    assert_eq!(id.len(), 64);
    assert!(!id.contains(TOKEN) && !cookie_line.contains(&TOKEN.to_ascii_lowercase()));
    let cookie = format!("clicktap_session={id}");

    // Reading with the cookie is fine; changing needs the dashboard's own origin.
    let (status, _, _) = admin_exchange(a, "GET", "/api/v1/webhooks", &[("Cookie", &cookie)], "");
    assert_eq!(status, 200);
    let reactivate = "/api/v1/webhooks/main/reactivate";
    for refused in [
        vec![("Cookie", cookie.as_str())],
        vec![
            ("Cookie", cookie.as_str()),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        vec![
            ("Cookie", cookie.as_str()),
            ("Origin", "http://evil.example"),
        ],
    ] {
        let (status, _, body) = admin_exchange(a, "POST", reactivate, &refused, "");
        assert_eq!(status, 403, "{refused:?}: {body}");
        assert!(body.contains("cross_site"), "{body}");
    }
    let (status, _, _) = admin_exchange(
        a,
        "POST",
        reactivate,
        &[("Cookie", &cookie), ("Sec-Fetch-Site", "same-origin")],
        "",
    );
    assert_eq!(status, 200);
    // Nor can another site sign a browser in or out.
    let (status, _, _) = admin_exchange(
        a,
        "POST",
        "/logout",
        &[("Cookie", &cookie), ("Sec-Fetch-Site", "cross-site")],
        "",
    );
    assert_eq!(status, 403);

    // Sign-out ends the session on the server, not only in the browser.
    let (status, head, _) = admin_exchange(
        a,
        "POST",
        "/logout",
        &[("Cookie", &cookie), ("Sec-Fetch-Site", "same-origin")],
        "",
    );
    assert_eq!(status, 303);
    assert!(head.contains("max-age=0"), "{head}");
    let (status, _, _) = admin_exchange(a, "GET", "/api/v1/status", &[("Cookie", &cookie)], "");
    assert_eq!(status, 401);

    // A reload that changes the token ends every session.
    let (_, head) = sign_in_raw(a, TOKEN);
    let cookie = format!("clicktap_session={}", session_id(&head));
    let (status, _, _) = admin_exchange(a, "GET", "/api/v1/status", &[("Cookie", &cookie)], "");
    assert_eq!(status, 200);
    let new_token = "a-new-admin-token-after-reload";
    let text = std::fs::read_to_string(&ct.config)
        .unwrap()
        .replace(TOKEN, new_token);
    std::fs::write(&ct.config, text).unwrap();
    let (status, _, body) = admin_exchange(
        a,
        "POST",
        "/api/v1/reload",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        "",
    );
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = admin_exchange(a, "GET", "/api/v1/status", &[("Cookie", &cookie)], "");
    assert_eq!(status, 401, "the session opened with the old token is over");
}
