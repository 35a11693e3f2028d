//! Authentication towards receivers, and the SSRF guard, against real loopback servers.

mod common;

use base64::Engine;
use common::receiver;
use common::{Clicktap, Options, reply, upstream, wait_until};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[test]
fn oauth_client_credentials_fetches_caches_and_refreshes_on_401() {
    let up = upstream::start();
    let issued = Arc::new(AtomicUsize::new(0));
    let i2 = issued.clone();
    let tokens = receiver::scripted(move |_, s| {
        let n = i2.fetch_add(1, Ordering::SeqCst) + 1;
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("cid:csecret")
        );
        let ok = s
            .headers
            .get("authorization")
            .is_some_and(|v| v == basic.as_str())
            && String::from_utf8_lossy(&s.body).contains("grant_type=client_credentials")
            && s.headers["content-type"] == "application/x-www-form-urlencoded";
        async move {
            if ok {
                reply(
                    200,
                    &[("Content-Type", "application/json")],
                    format!(
                        r#"{{"access_token":"tok-{n}","expires_in":3600,"token_type":"bearer"}}"#
                    ),
                )
            } else {
                reply(401, &[], "bad client")
            }
        }
    });
    // The receiver revokes the first token: it accepts only tok-2.
    let rx = receiver::scripted(|_, s| {
        let ok = s
            .headers
            .get("authorization")
            .is_some_and(|v| v == "Bearer tok-2");
        async move {
            if ok {
                reply(200, &[], "")
            } else {
                reply(401, &[], "expired")
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let hook = format!(
        r#"[[webhooks]]
id = "oauth"
url = "{}"
[webhooks.auth]
type = "oauth2_client_credentials"
token_url = "{}"
client_id = "cid"
client_secret = "csecret"
scope = "clicks:write"
"#,
        rx.url("/events"),
        tokens.url("/token")
    );
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().tail(&hook));
    ct.click("/r/1", "");
    wait_until("delivery", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 1.0
    });
    assert_eq!(
        issued.load(Ordering::SeqCst),
        2,
        "one token, then one more after the 401"
    );
    let form = String::from_utf8_lossy(&tokens.requests()[0].body).into_owned();
    assert!(form.contains("scope=clicks%3Awrite"), "{form}");
    // The 401 and its retry were one attempt, which succeeded.
    assert_eq!(
        ct.metric("clicktap_delivery_attempts_total", r#"outcome="failure""#),
        0.0
    );
    // The cached token serves the next events without another fetch.
    ct.click("/r/2", "");
    ct.click("/r/3", "");
    wait_until("more deliveries", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 3.0
    });
    assert_eq!(issued.load(Ordering::SeqCst), 2);
    assert_eq!(
        ct.metric(
            "clicktap_delivery_token_fetches_total",
            r#"outcome="success""#
        ),
        2.0
    );
}

#[test]
fn a_failing_token_endpoint_is_a_delivery_failure_with_its_reason() {
    let up = upstream::start();
    let tokens = receiver::always(500);
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let hook = format!(
        "[[webhooks]]\nid = \"oauth\"\nurl = \"{}\"\n[webhooks.retry]\nmax_attempts = 1\n[webhooks.auth]\ntype = \"oauth2_client_credentials\"\ntoken_url = \"{}\"\nclient_id = \"cid\"\nclient_secret = \"super-secret-value\"\n",
        rx.url("/"),
        tokens.url("/token")
    );
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().tail(&hook));
    ct.click("/r/1", "");
    wait_until("dead letter", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_dead_total", "") == 1.0
    });
    assert!(rx.requests().is_empty());
    let log = ct.wait_deliveries("oauth", 1);
    assert_eq!(
        log["deliveries"][0]["error"],
        "token endpoint answered 500 Internal Server Error"
    );
    assert!(!ct.log_text().contains("super-secret-value"));
    assert!(!log.to_string().contains("super-secret-value"));
}

#[test]
fn basic_bearer_query_and_static_headers_are_sent() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let base = rx.addr;
    let hooks = format!(
        r#"[[webhooks]]
id = "basic-in-url"
url = "http://alice:pa55@{base}/basic"
[webhooks.auth]
type = "basic"

[[webhooks]]
id = "bearer"
url = "http://{base}/bearer"
headers = {{ "X-Team" = "growth" }}
[webhooks.auth]
type = "bearer"
token = "b-token-123"

[[webhooks]]
id = "query"
url = "http://{base}/query?x=1"
[webhooks.auth]
type = "query"
param = "api_key"
value = "k-456"
"#
    );
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().tail(&hooks));
    ct.click("/r/a", "");
    let seen = rx.wait_for(3, Duration::from_secs(10));
    let by_path = |p: &str| seen.iter().find(|s| s.uri.path() == p).unwrap().clone();
    let basic = by_path("/basic");
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:pa55")
    );
    assert_eq!(basic.headers["authorization"], want.as_str());
    let bearer = by_path("/bearer");
    assert_eq!(bearer.headers["authorization"], "Bearer b-token-123");
    assert_eq!(bearer.headers["x-team"], "growth");
    let query = by_path("/query");
    assert_eq!(query.uri.query(), Some("x=1&api_key=k-456"));
    // Credentials never reach the log or the admin API.
    let listing = ct.admin_get("/api/v1/webhooks");
    for secret in ["pa55", "b-token-123", "k-456"] {
        assert!(!ct.log_text().contains(secret), "{secret} in the log");
        assert!(!listing.contains(secret), "{secret} in the admin API");
    }
}

#[test]
fn private_targets_are_refused_by_name_and_by_literal() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let port = rx.addr.port();
    let mut hooks = String::new();
    for (id, host) in [
        ("name", "localhost".to_string()),
        ("literal", "127.0.0.1".to_string()),
        ("hex", "0x7f.1".to_string()),
        ("mapped", "[::ffff:127.0.0.1]".to_string()),
    ] {
        hooks.push_str(&format!(
            "[[webhooks]]\nid = \"{id}\"\nurl = \"http://{host}:{port}/\"\n[webhooks.retry]\nmax_attempts = 1\n\n"
        ));
    }
    let o = Options::default()
        .delivery("allow_private_targets = false")
        .tail(&hooks);
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    ct.click("/r/ssrf", "");
    wait_until("four refusals", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_dead_total", "") == 4.0
    });
    assert!(rx.requests().is_empty(), "a private target was reached");
    for id in ["name", "literal", "hex", "mapped"] {
        let err = ct.wait_deliveries(id, 1)["deliveries"][0]["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(err.contains("private"), "{id}: {err}");
    }
}

#[test]
fn basic_credentials_in_the_url_reach_the_receiver_percent_decoded() {
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    // `@`, `:` and a space cannot stand in userinfo as themselves: operators write them
    // percent-encoded, and the receiver must see what they meant.
    let hook = format!(
        "[[webhooks]]\nid = \"encoded\"\nurl = \"http://us%40er:p%3Ass%20w%C3%B6rd@{}/basic\"\n\
         [webhooks.auth]\ntype = \"basic\"\n",
        rx.addr
    );
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default().tail(&hook));
    ct.click("/r/enc", "");
    let seen = rx.wait_for(1, Duration::from_secs(10));
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("us@er:p:ss wörd")
    );
    assert_eq!(seen[0].headers["authorization"], want.as_str());
    assert!(
        !ct.log_text().contains("w%C3%B6rd"),
        "the password in the log"
    );
}
