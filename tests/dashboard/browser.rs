//! The browser the dashboard's tests drive: Debian's chromium, headless, through
//! chromedriver on a free loopback port (WebDriver, fantoccini), and the few moves an
//! operator makes in it. Only one browser runs at a time (`one_at_a_time`): two
//! chromiums on a small machine would make each slow enough to miss a deadline.

use crate::common::{free_port, wait_until};
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL: &str =
    "install chromium and chromium-driver (apt-get install chromium chromium-driver)";

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Held by a test for as long as its browser runs.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

/// `target/dashboard-screenshots/` (under `CARGO_TARGET_DIR` when it is set).
pub fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// chromedriver on a free loopback port, ended with the test.
pub struct Driver {
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

pub fn chromium() -> &'static str {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|p| found(p))
        .unwrap_or_else(|| panic!("no chromium found: {INSTALL}"))
}

pub fn start_driver() -> Driver {
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

pub async fn browser(driver: &Driver, binary: &str) -> Client {
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
                     "--disable-gpu", "--window-size=1440,1000", "--no-first-run"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let c = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .unwrap_or_else(|e| panic!("the browser did not start ({e}): {INSTALL}"));
    // axe-core takes a few seconds on a busy machine: more than WebDriver's default.
    c.update_timeouts(TimeoutConfiguration::new(
        Some(Duration::from_secs(120)),
        Some(Duration::from_secs(60)),
        None,
    ))
    .await
    .unwrap();
    c
}

/// Polls until an element matching `css` shows text containing `want`; returns the
/// text, or fails the test with what was there.
pub async fn wait_text(c: &Client, css: &str, want: &str) -> String {
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

/// Polls until `script` (a function body) returns `true`.
pub async fn wait_script(c: &Client, what: &str, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = c.execute(script, vec![]).await.unwrap();
        if v == serde_json::Value::Bool(true) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{css} could not be clicked: {e}"));
}

pub async fn open_page(c: &Client, page: &str) {
    click(c, &format!("#nav a[data-page={page}]")).await;
}

pub async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

pub async fn sign_in(c: &Client, token: &str) {
    let field = c.wait().for_element(Locator::Id("token")).await.unwrap();
    field.send_keys(token).await.unwrap();
    click(c, "#signin-button").await;
}
