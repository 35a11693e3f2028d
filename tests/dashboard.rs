//! The dashboard in a real browser: the real binary in front of a real upstream and
//! receivers, Debian's chromium driven through WebDriver (chromedriver, fantoccini).
//! An operator signs in, sees a click made during the test on the overview and in the
//! event tail, presses Test and reads its answer, opens an attempt in the delivery
//! log. Each page is saved as `target/dashboard-screenshots/<page>.png`.
//!
//! Without chromium and chromedriver the browser test fails and says what to install.
//! The session rules (cookie attributes, the same-origin rule, sign-out, a token
//! changed by a reload) are checked over plain HTTP as well, where each header is seen.

mod common;

use common::clicktap::TOKEN;
use common::receiver;
use common::{BROWSER, Clicktap, Options, admin_exchange, free_port, upstream, wait_until};
use fantoccini::{Client, ClientBuilder, Locator};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL: &str =
    "install chromium and chromium-driver (apt-get install chromium chromium-driver)";

/// A webhook that delivers, and one whose receiver refuses everything, so that every
/// number on the pages has something to show.
/// The seed of RFC 8032's first test key, as a `whsk_` secret key, and its public key.
const SECRET_KEY: &str = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
const PUBLIC_KEY: &str = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

/// `main` to `ok`, signing with a secret and a secret key; `down` to `down`, one
/// attempt; `gone` to `down` + `gone` (a path the first test's receiver answers 410).
fn options(ok: &str, down: &str) -> Options {
    Options::default()
        .tail(&format!("[[webhooks]]\nid = \"main\"\nurl = \"{ok}\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nsecret_key = \"{SECRET_KEY}\"\n"))
        .tail(&format!(
            "[[webhooks]]\nid = \"down\"\nurl = \"{down}\"\n[webhooks.retry]\nmax_attempts = 1\n"
        ))
        .tail(&format!("[[webhooks]]\nid = \"gone\"\nurl = \"{down}gone\"\n"))
}

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// chromedriver on a free loopback port, ended with the test.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn found(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn chromium() -> &'static str {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|p| found(p))
        .unwrap_or_else(|| panic!("no chromium found: {INSTALL}"))
}

fn start_driver() -> Driver {
    assert!(found("chromedriver"), "no chromedriver found: {INSTALL}");
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("chromedriver did not start ({e}): {INSTALL}"));
    let mut d = Driver { child, port };
    wait_until("chromedriver listening", Duration::from_secs(20), || {
        if let Ok(Some(status)) = d.child.try_wait() {
            panic!("chromedriver exited with {status}: {INSTALL}");
        }
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    d
}

async fn browser(driver: &Driver, binary: &str) -> Client {
    let path = Command::new("which")
        .arg(binary)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": path,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,1000", "--no-first-run"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .unwrap_or_else(|e| panic!("the browser did not start ({e}): {INSTALL}"))
}

/// Polls until an element matching `css` shows text containing `want`; returns the
/// text, or fails the test with what was there.
async fn wait_text(c: &Client, css: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    loop {
        if let Ok(all) = c.find_all(Locator::Css(css)).await {
            for e in all {
                if let Ok(t) = e.text().await {
                    if t.contains(want) {
                        return t;
                    }
                    last = t;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "{css} never showed {want:?}; last seen: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn open_page(c: &Client, page: &str) {
    c.find(Locator::Css(&format!("#nav a[data-page={page}]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

async fn sign_in(c: &Client, token: &str) {
    let field = c.wait().for_element(Locator::Id("token")).await.unwrap();
    field.send_keys(token).await.unwrap();
    c.find(Locator::Id("signin-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The overview shows the clicks made by the test: totals by kind, a bar in the hour's
/// chart, the link in the top list.
async fn overview(c: &Client) {
    wait_text(c, "#total-clicks", "4").await;
    wait_text(c, "#total-human", "1").await;
    wait_text(c, "#total-preview", "1").await;
    wait_text(c, "#total-head", "1").await;
    wait_text(c, "#top-links", "/r/dashboard\n3").await;
    let bars = c
        .find_all(Locator::Css("#chart-hour rect.k-human"))
        .await
        .unwrap();
    assert!(!bars.is_empty(), "the hour's chart has a bar for the click");
    screenshot(c, "overview").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_sees_a_click_arrive_and_tests_a_webhook() {
    let binary = chromium();
    let driver = start_driver();
    let up = upstream::start();
    let rx = receiver::ok();
    let refusing = receiver::scripted(|_, s| async move {
        let status = if s.uri.path() == "/gone" { 410 } else { 500 };
        common::reply(status, &[], "nope")
    });
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(
        dir.path(),
        up.addr,
        &options(&rx.url("/clicks"), &refusing.url("/")),
    );
    let c = browser(&driver, binary).await;
    let base = format!("http://{}", ct.admin);

    c.goto(&format!("{base}/")).await.unwrap();
    sign_in(&c, "not-the-admin-token").await;
    wait_text(&c, "#signin-failed", "not the admin token").await;
    screenshot(&c, "signin").await;
    sign_in(&c, TOKEN).await;
    c.wait()
        .for_element(Locator::Css("#nav a.on"))
        .await
        .unwrap();
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

    // And in the event tail, whole when opened.
    open_page(&c, "tail").await;
    wait_text(&c, "#events summary", "http://sho.rt/r/dashboard").await;
    let event = c.find(Locator::Css("#events details")).await.unwrap();
    event
        .find(Locator::Css("summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#events details[open] pre", "\"user_agent\"").await;
    screenshot(&c, "events").await;

    // Test answers on the webhook's card.
    open_page(&c, "webhooks").await;
    wait_text(&c, "#hook-main .facts", "lag").await;
    c.find(Locator::Css("#hook-main button[data-action=Test]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
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
    screenshot(&c, "webhooks").await;

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
    screenshot(&c, "deliveries").await;

    // Signing out ends the session: the API refuses the browser's next call.
    c.find(Locator::Css("#signout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("token")).await.unwrap();
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
