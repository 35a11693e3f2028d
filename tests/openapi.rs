//! The admin API against its OpenAPI description, by a real client: schemathesis (PyPI)
//! generates valid and invalid requests for every route from `openapi.json`, as the
//! running binary serves it, and checks every answer against the description: status
//! codes, content types, bodies, `Allow` on 405, 401 without the token, no 5xx.
//! Without schemathesis the test fails and says what to install.

mod common;

use common::receiver;
use common::{Clicktap, Options, upstream, wait_until};
use std::process::Command;
use std::time::Duration;

#[test]
fn the_admin_api_answers_as_its_openapi_description_says() {
    let has = Command::new("schemathesis").arg("--version").output();
    assert!(
        has.is_ok_and(|o| o.status.success()),
        "schemathesis is needed: python3 -m pip install schemathesis"
    );
    let up = upstream::start();
    let rx = receiver::ok();
    let failing = receiver::always(500);
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .tail(&format!(
            "[[webhooks]]\nid = \"main\"\nurl = \"{}\"\n",
            rx.url("/")
        ))
        .tail(&format!(
            "[[webhooks]]\nid = \"dead\"\nurl = \"{}\"\n[webhooks.retry]\nmax_attempts = 1\n",
            failing.url("/")
        ));
    let mut ct = Clicktap::start(dir.path(), up.addr, &o);
    // Something in every listing: events, deliveries, dead letters.
    for i in 0..5 {
        assert_eq!(ct.click(&format!("/r/api-{i}"), ""), 302);
    }
    wait_until("dead letters", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_dead_total", "") == 5.0
    });
    // The document the binary serves is the one in the repository.
    let (status, served) = common::http_get(ct.admin, "/api/v1/openapi.json", &[]);
    assert_eq!(status, 200);
    let kept = include_str!("../src/admin/openapi.json");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&served).unwrap(),
        serde_json::from_str::<serde_json::Value>(kept).unwrap()
    );

    // A deeper run: CLICKTAP_API_EXAMPLES=500 CLICKTAP_API_SEED=7 cargo test --test openapi
    let examples = std::env::var("CLICKTAP_API_EXAMPLES").unwrap_or_else(|_| "25".into());
    let seed = std::env::var("CLICKTAP_API_SEED").unwrap_or_else(|_| "1".into());
    let base = format!("http://{}", ct.admin);
    let out = Command::new("schemathesis")
        .current_dir(dir.path())
        .args(["run", &format!("{base}/api/v1/openapi.json")])
        .args(["--url", &base])
        .args([
            "-H",
            &format!("Authorization: Bearer {}", common::clicktap::TOKEN),
        ])
        .args(["--checks", "all"])
        .args([
            "--exclude-checks",
            "use_after_free,ensure_resource_availability",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args([
            "--max-examples",
            &examples,
            "--workers",
            "1",
            "--seed",
            &seed,
        ])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--request-timeout", "30"])
        .output()
        .expect("run schemathesis");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}\n{}", ct.log_text());
    assert!(
        ct.child.try_wait().unwrap().is_none(),
        "clicktap died:\n{}",
        ct.log_text()
    );
}
