//! The admin API against its OpenAPI description, by a real client: schemathesis (PyPI)
//! generates valid and invalid requests for every route from `openapi.json`, as the
//! running binary serves it, and checks every answer against the description: status
//! codes, content types, bodies, `Allow` on 405, 401 without the token, no 5xx; then,
//! in its stateful phase, chains of calls along the description's links.
//! Without schemathesis the test fails and says what to install. The cases a generator
//! does not think of (HTTP's own rules: scheme names, HEAD; filters that must agree
//! between routes; sign-in from a client that is not a browser; wrong tokens) are
//! written out below it.

mod common;

use common::receiver;
use common::{Clicktap, Options, admin_exchange, upstream, wait_until};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

fn bearer() -> String {
    format!("Bearer {}", common::clicktap::TOKEN)
}

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
    // A replay range whose since is after its until is a 400 (the range is reversed):
    // a rule between two fields that a JSON schema cannot state, so a request the
    // description allows may be refused there.
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        r#"[[operations]]
include-path = "/api/v1/webhooks/{id}/replay"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
"#,
    )
    .unwrap();
    let out = Command::new("schemathesis")
        .current_dir(dir.path())
        .arg("--config-file")
        .arg(&config)
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
        // stateful: sequences of calls along the description's OpenAPI links.
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
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
    // The stateful phase chains calls through the description's links (a webhook listed,
    // then its deliveries, dead letters, test send, replays): it must have run.
    let scenarios = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Scenarios:"))
        .and_then(|n| n.trim().parse::<u32>().ok());
    assert!(
        report.contains("✅ Stateful") && scenarios.is_some_and(|n| n > 0),
        "the stateful phase did not run:\n{report}"
    );
    assert!(
        ct.child.try_wait().unwrap().is_none(),
        "clicktap died:\n{}",
        ct.log_text()
    );
}

#[test]
fn the_api_keeps_http_rules_and_its_filters_agree_between_routes() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&format!(
        "[[webhooks]]\nid = \"main\"\nurl = \"{}\"\n",
        rx.url("/")
    ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/edge", ""), 302);
    ct.wait_deliveries("main", 1);
    let a = ct.admin;

    // The scheme's name is case-insensitive (RFC 9110, 11.1).
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let auth = format!("{scheme} {}", common::clicktap::TOKEN);
        let (status, _, body) =
            admin_exchange(a, "GET", "/api/v1/status", &[("Authorization", &auth)], "");
        assert_eq!(status, 200, "{scheme}: {body}");
    }
    let (status, _, _) = admin_exchange(
        a,
        "GET",
        "/api/v1/status",
        &[("Authorization", "Basic eDp5")],
        "",
    );
    assert_eq!(status, 401);

    // HEAD is answered like GET, with the same head and no body.
    let auth = bearer();
    for (path, headers) in [
        ("/healthz", vec![]),
        ("/readyz", vec![]),
        ("/", vec![]),
        ("/api/v1/openapi.json", vec![]),
        ("/api/v1/status", vec![("Authorization", auth.as_str())]),
        ("/api/v1/webhooks", vec![("Authorization", auth.as_str())]),
        (
            "/api/v1/webhooks/main",
            vec![("Authorization", auth.as_str())],
        ),
        ("/api/v1/deliveries", vec![("Authorization", auth.as_str())]),
        ("/metrics", vec![("Authorization", auth.as_str())]),
    ] {
        let (get_status, get_head, get_body) = admin_exchange(a, "GET", path, &headers, "");
        let (status, head, body) = admin_exchange(a, "HEAD", path, &headers, "");
        assert_eq!((status, get_status), (200, 200), "HEAD {path}: {head}");
        assert!(body.is_empty(), "HEAD {path} has a body: {body}");
        let content_type = |h: &str| {
            h.lines()
                .find(|l| l.starts_with("content-type:"))
                .map(str::to_string)
        };
        assert_eq!(content_type(&head), content_type(&get_head), "{path}");
        assert!(!get_body.is_empty());
    }
    let (status, head, _) = admin_exchange(a, "HEAD", "/api/v1/status", &[], "");
    assert_eq!(status, 401, "HEAD needs the token as GET does: {head}");
    let (status, head, _) = admin_exchange(a, "POST", "/healthz", &[], "");
    assert_eq!(status, 405);
    assert!(head.contains("allow: get, head"), "{head}");

    // The delivery log: an unknown webhook is a 404 on both routes.
    for path in [
        "/api/v1/deliveries?webhook=nope",
        "/api/v1/webhooks/nope/deliveries",
    ] {
        let (status, _, body) = admin_exchange(a, "GET", path, &[("Authorization", &auth)], "");
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body.contains("unknown_webhook"), "{body}");
    }
    // `since` and `until` as stats and replay take them; since_ms reads the same way.
    let count = |path: &str| -> usize {
        let (status, _, body) = admin_exchange(a, "GET", path, &[("Authorization", &auth)], "");
        assert_eq!(status, 200, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["deliveries"].as_array().unwrap().len()
    };
    assert_eq!(count("/api/v1/deliveries"), 1);
    for path in [
        "/api/v1/deliveries?since=2999-01-01T00:00:00Z",
        "/api/v1/deliveries?webhook=main&since=32503680000000",
        "/api/v1/deliveries?since_ms=2999-01-01T00:00:00Z",
        "/api/v1/webhooks/main/deliveries?since=2999-01-01T00:00:00%2B01:00",
        "/api/v1/deliveries?until=1970-01-01T00:00:01Z",
    ] {
        assert_eq!(count(path), 0, "{path}");
    }
    for path in [
        "/api/v1/deliveries?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z",
        "/api/v1/webhooks/main/deliveries?since=0",
    ] {
        assert_eq!(count(path), 1, "{path}");
    }
    let (status, _, body) = admin_exchange(
        a,
        "GET",
        "/api/v1/deliveries?since=yesterday",
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(status, 400);
    assert!(body.contains("since"), "{body}");

    // Sign-in from a client that is not a browser (no Origin, no Sec-Fetch-Site) is
    // not a forgery: every browser sends Origin with a form's POST.
    let form = format!("token={}", common::clicktap::TOKEN);
    let urlencoded = ("Content-Type", "application/x-www-form-urlencoded");
    let (status, head, body) = admin_exchange(a, "POST", "/login", &[urlencoded], &form);
    assert_eq!(status, 303, "{head}{body}");
    assert!(head.contains("set-cookie: clicktap_session="), "{head}");
    // From another site's page it is refused, and the answer says why.
    for foreign in [
        ("Origin", "http://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let (status, _, body) = admin_exchange(a, "POST", "/login", &[urlencoded, foreign], &form);
        assert_eq!(status, 403, "{foreign:?}");
        assert!(
            body.contains("sign-in must come from the dashboard"),
            "{body}"
        );
    }
}

/// A GET from `source` (a loopback address of its own, 127.0.0.x) with `auth`;
/// returns the status and how long the answer took.
fn timed_get(source: [u8; 4], admin: SocketAddr, path: &str, auth: &str) -> (u16, Duration) {
    let started = std::time::Instant::now();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {admin}\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
    );
    let out = common::raw_exchange_from(source, admin, req.as_bytes());
    let status = String::from_utf8_lossy(&out)
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, started.elapsed())
}

#[test]
fn wrong_tokens_are_slowed_per_address_logged_without_the_token_and_counted() {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default());
    let a = ct.admin;
    let wrong = "Bearer a-wrong-token-that-must-not-be-logged";
    let right = bearer();
    let guesser = [127, 0, 0, 1];
    let other = [127, 0, 0, 2];

    // Each wrong token from the same address waits longer: 100 ms, 200 ms, 300 ms, ...
    let mut took = Vec::new();
    for path in ["/api/v1/status", "/api/v1/webhooks", "/api/v1/events"] {
        let (status, t) = timed_get(guesser, a, path, wrong);
        assert_eq!(status, 401, "{path}");
        took.push(t);
    }
    assert!(took[0] >= Duration::from_millis(100), "{took:?}");
    assert!(took[2] >= Duration::from_millis(300), "{took:?}");
    // Twelve more at once wait 400 ms to 1.5 s; meanwhile the same address's right
    // token and another address's first wrong one are answered without that wait.
    let guesses: Vec<_> = (0..12)
        .map(|_| std::thread::spawn(move || timed_get(guesser, a, "/api/v1/status", wrong)))
        .collect();
    wait_until("the guesses counted", Duration::from_secs(5), || {
        ct.metric("clicktap_admin_auth_failures_total", "") == 15.0
    });
    let (status, _) = timed_get(guesser, a, "/api/v1/status", &right);
    assert_eq!(status, 200);
    let (status, t) = timed_get(other, a, "/api/v1/status", wrong);
    assert_eq!(status, 401);
    assert!(t >= Duration::from_millis(100), "{t:?}");
    assert!(
        guesses.iter().any(|g| !g.is_finished()),
        "the right token and the other address were answered while guesses still waited"
    );
    let mut waits: Vec<Duration> = guesses
        .into_iter()
        .map(|g| {
            let (status, t) = g.join().unwrap();
            assert_eq!(status, 401);
            t
        })
        .collect();
    waits.sort();
    assert!(waits[11] >= Duration::from_millis(1500), "{waits:?}");
    assert!(waits[11] < Duration::from_secs(5), "bounded: {waits:?}");
    // No token at all is no guess: refused at once, not counted.
    let (status, _) = common::http_get(a, "/api/v1/status", &[]);
    assert_eq!(status, 401);
    assert_eq!(ct.metric("clicktap_admin_auth_failures_total", ""), 16.0);

    let log = ct.log_text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("wrong token refused"))
        .collect();
    assert_eq!(lines.len(), 16, "{log}");
    assert!(lines.iter().all(|l| l.contains("WARN")), "{log}");
    assert!(lines.iter().any(|l| l.contains("127.0.0.2")), "{log}");
    assert!(
        !log.contains("a-wrong-token"),
        "the token given is never logged"
    );
}
