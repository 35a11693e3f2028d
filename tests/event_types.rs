//! Event types through the real binary: QR scans, bio page views and clicks on a bio
//! page's links are told apart, each format sends them as its vendor does, a webhook
//! gets only the types it chose, and the CloudEvents format carries every attribute the
//! specification requires, alone and batched.

mod common;

use common::clicktap::check_text;
use common::receiver::{self, body_json};
use common::server::{Seen, TestServer};
use common::{Clicktap, Options, handler, http_post, reply, wait_until};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// A shortener with bio pages: `/bio/<name>` answers the page (200), links under it
/// (`/bio/<name>/<link>`) and short links (`/r/...`, `/q/...`, `/menu`) redirect; a
/// plain page (`/about`) answers 200 too, and anything else 404.
fn shortener() -> TestServer {
    TestServer::start(
        "127.0.0.1:0",
        handler(|s: Seen| async move {
            let path = s.uri.path().to_string();
            let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
            match segments.as_slice() {
                ["bio", _] | ["about"] => {
                    reply(200, &[("Content-Type", "text/html")], "<a>links</a>")
                }
                ["bio", _, link] | ["r", link] | ["q", link] => reply(
                    302,
                    &[("Location", &format!("https://example.com/{link}"))],
                    "",
                ),
                ["menu"] => reply(302, &[("Location", "https://example.com/menu")], ""),
                _ => reply(404, &[], ""),
            }
        }),
    )
}

/// The type rules every test here uses.
const RULES: &str = r#"[qr]
params = ["qr"]
paths = ["/q/*"]

[[links]]
path = "/menu"
qr = true

[[pages]]
path = "/bio/alice"
"#;

const ALL: &str =
    r#"events = ["link.clicked", "link.scanned", "page.viewed", "page.link_clicked"]"#;

/// The visits, each with the type it must get, keyed by what tells them apart in every
/// format: the link's path.
const VISITS: [(&str, &str, &str); 7] = [
    ("/r/plain", "", "link.clicked"),
    ("/r/poster?qr=1", "", "link.scanned"),
    ("/q/flyer", "", "link.scanned"),
    ("/menu", "", "link.scanned"),
    ("/bio/alice", "", "page.viewed"),
    ("/bio/alice/github", "", "page.link_clicked"),
    (
        "/r/blog",
        "Referer: http://sho.rt/bio/alice\r\n",
        "page.link_clicked",
    ),
];

fn visit_all(ct: &Clicktap) {
    for (path, headers, _) in VISITS {
        let status = ct.click(path, &format!("{}{headers}", common::BROWSER));
        assert!(status == 200 || status == 302, "{path}: {status}");
    }
}

/// The type each visit must get, by link path.
fn wanted() -> BTreeMap<&'static str, &'static str> {
    VISITS
        .iter()
        .map(|(path, _, t)| (path.split('?').next().unwrap(), *t))
        .collect()
}

fn requests_to(rx: &TestServer, path: &str) -> Vec<Seen> {
    rx.requests()
        .into_iter()
        .filter(|s| s.uri.path() == path)
        .collect()
}

#[test]
fn each_event_gets_its_type_and_each_format_sends_it_as_its_vendor_does() {
    let up = shortener();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let mut hooks = String::new();
    for format in [
        "native",
        "bitly",
        "linkly",
        "tly",
        "rebrandly",
        "cloudevents",
    ] {
        hooks.push_str(&format!(
            "[[webhooks]]\nid = \"{format}\"\nurl = \"{}\"\nformat = \"{format}\"\n{ALL}\n",
            rx.url(&format!("/{format}"))
        ));
        if format == "rebrandly" {
            hooks.push_str("[webhooks.batch]\nmax_events = 7\nmax_wait = \"1s\"\n");
        }
    }
    let ct = Clicktap::start(
        dir.path(),
        up.addr,
        &Options::default().tail(RULES).tail(&hooks),
    );
    visit_all(&ct);
    // Neither a plain 200 nor a POST to a page is an event.
    assert_eq!(ct.click("/about", common::BROWSER), 200);
    ct.click("POST /bio/alice", "Content-Length: 0\r\n");
    ct.wait_settled(VISITS.len() + 2);

    let stored: BTreeMap<String, String> = ct
        .events(100)
        .iter()
        .map(|e| {
            (
                e["link"]["path"].as_str().unwrap().to_string(),
                e["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeMap<String, String> = wanted()
        .into_iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
    assert_eq!(stored, want, "one event per visit, each of its type");
    let view = ct
        .events(100)
        .into_iter()
        .find(|e| e["type"] == "page.viewed")
        .unwrap();
    assert_eq!(view["status"], 200);
    assert_eq!(view["destination"], Value::Null);
    assert_eq!(view["kind"], "human");

    let n = VISITS.len();
    wait_until("every single-event format got every event", WAIT, || {
        ["native", "bitly", "linkly", "tly", "cloudevents"]
            .iter()
            .all(|f| requests_to(&rx, &format!("/{f}")).len() >= n)
    });
    wait_until("rebrandly got every event", WAIT, || {
        requests_to(&rx, "/rebrandly")
            .iter()
            .map(|s| body_json(s)["data"].as_array().unwrap().len())
            .sum::<usize>()
            >= n
    });
    let by_path = |format: &str, path: fn(&Value) -> &Value| -> BTreeMap<String, Value> {
        requests_to(&rx, &format!("/{format}"))
            .iter()
            .map(|s| {
                let b = body_json(s);
                (path(&b).as_str().unwrap().to_string(), b)
            })
            .collect()
    };
    let wanted = wanted();

    // native: its own type field.
    for (path, b) in by_path("native", |b| &b["link"]["path"]) {
        assert_eq!(b["type"], wanted[path.as_str()], "native {path}");
    }
    // tly: T.LY's three event names, and qr_code for scans, in the body and the header.
    let tly_requests = requests_to(&rx, "/tly");
    for s in &tly_requests {
        let b = body_json(s);
        let url = b["data"]["short_url"].as_str().unwrap();
        let path = url.trim_start_matches("http://sho.rt");
        let (name, qr) = match wanted[path] {
            "link.clicked" => ("short_link.visited", false),
            "link.scanned" => ("short_link.visited", true),
            "page.viewed" => ("one_link.visited", false),
            _ => ("one_link.link_visited", false),
        };
        assert_eq!(b["event"], name, "tly {path}");
        assert_eq!(s.headers["x-tly-event"], name, "tly {path}");
        assert_eq!(b["engagement"]["qr_code"], qr, "tly {path}");
    }
    // bitly: one engagement for all.
    let bitly = by_path("bitly", |b| &b["bitlink"]);
    assert_eq!(bitly.len(), n);
    for (bitlink, b) in bitly {
        assert_eq!(b["event_type"], "engagement", "bitly {bitlink}");
    }
    // linkly: clicks, scans and page events included.
    let linkly = by_path("linkly", |b| &b["link"]["slug"]);
    assert_eq!(linkly.len(), n);
    for (slug, b) in linkly {
        assert_eq!(b["event"], "click", "linkly {slug}");
    }
    // rebrandly: every event is a click in its batch, none left out.
    let slashtags: Vec<String> = requests_to(&rx, "/rebrandly")
        .iter()
        .flat_map(|s| body_json(s)["data"].as_array().unwrap().clone())
        .map(|e| e["route"]["slashtag"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(slashtags.len(), n, "{slashtags:?}");
    // cloudevents: the type in the envelope and in the native event it carries.
    for (path, b) in by_path("cloudevents", |b| &b["subject"]) {
        let t = wanted[path.as_str()];
        assert_eq!(b["type"], format!("com.clicktap.{t}"), "cloudevents {path}");
        assert_eq!(b["data"]["type"], t, "cloudevents {path}");
    }
    // The stats count every stored event, the page view too.
    let auth = format!("Bearer {}", common::clicktap::TOKEN);
    wait_until("the stats to count every event", WAIT, || {
        let (_, body) = common::http_get(ct.admin, "/api/v1/stats", &[("Authorization", &auth)]);
        serde_json::from_str::<Value>(&body).is_ok_and(|v| v["totals"]["clicks"] == n as u64)
    });
}

#[test]
fn a_webhook_gets_only_the_types_it_chose_and_the_rest_are_settled_as_filtered() {
    let up = shortener();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let hooks = format!(
        r#"[[webhooks]]
id = "default"
url = "{}"

[[webhooks]]
id = "views"
url = "{}"
events = ["page.viewed"]

[[webhooks]]
id = "pages"
url = "{}"
events = ["page.link_clicked", "page.viewed"]
"#,
        rx.url("/default"),
        rx.url("/views"),
        rx.url("/pages")
    );
    let ct = Clicktap::start(
        dir.path(),
        up.addr,
        &Options::default().tail(RULES).tail(&hooks),
    );
    visit_all(&ct);
    ct.wait_settled(VISITS.len());
    let got = |hook: &str| -> Vec<String> {
        let mut v: Vec<String> = requests_to(&rx, &format!("/{hook}"))
            .iter()
            .map(|s| body_json(s)["type"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let n = VISITS.len() as f64;
    for (hook, types) in [
        (
            "default",
            vec![
                "link.clicked",
                "link.scanned",
                "link.scanned",
                "link.scanned",
                "page.link_clicked",
                "page.link_clicked",
            ],
        ),
        ("views", vec!["page.viewed"]),
        (
            "pages",
            vec!["page.link_clicked", "page.link_clicked", "page.viewed"],
        ),
    ] {
        // Every event is settled: delivered or filtered, the cursor past all of them.
        wait_until(&format!("{hook} settled"), WAIT, || {
            let labels = format!("webhook=\"{hook}\"");
            ct.metric("clicktap_delivery_delivered_total", &labels)
                + ct.metric("clicktap_delivery_filtered_total", &labels)
                == n
        });
        assert_eq!(got(hook), types, "{hook}");
        let labels = format!("webhook=\"{hook}\"");
        assert_eq!(
            ct.metric("clicktap_delivery_filtered_total", &labels),
            n - types.len() as f64,
            "{hook}"
        );
        assert_eq!(ct.metric("clicktap_delivery_lag_events", &labels), 0.0);
        assert_eq!(ct.metric("clicktap_delivery_dead_total", &labels), 0.0);
    }
}

#[test]
fn cloudevents_carry_every_required_attribute_alone_and_batched() {
    let up = shortener();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let hooks = format!(
        r#"[[webhooks]]
id = "one"
url = "{}"
format = "cloudevents"
secret = "{secret}"
{ALL}

[[webhooks]]
id = "many"
url = "{}"
format = "cloudevents"
source = "urn:clicktap:eu-1"
{ALL}
[webhooks.batch]
max_events = 3
max_wait = "1s"
"#,
        rx.url("/one"),
        rx.url("/many")
    );
    let ct = Clicktap::start(
        dir.path(),
        up.addr,
        &Options::default().tail(RULES).tail(&hooks),
    );
    ct.click("/r/launch?qr", common::BROWSER);
    ct.click("/bio/alice", common::BROWSER);
    ct.click("/bio/alice/github", common::BROWSER);
    ct.wait_settled(3);
    let stored: BTreeMap<String, Value> = ct
        .events(10)
        .into_iter()
        .map(|e| (e["id"].as_str().unwrap().to_string(), e))
        .collect();
    assert_eq!(stored.len(), 3);

    let required = |e: &Value| {
        for attr in ["specversion", "id", "source", "type"] {
            assert!(
                e[attr].as_str().is_some_and(|v| !v.is_empty()),
                "{attr} missing in {e}"
            );
        }
        assert_eq!(e["specversion"], "1.0");
        assert_eq!(e["datacontenttype"], "application/json");
        let time = e["time"].as_str().unwrap();
        assert!(humantime::parse_rfc3339(time).is_ok(), "time {time}");
        // `data` is the native event: the stored one, with the webhook's id.
        let data = &e["data"];
        let event = &stored[data["id"].as_str().unwrap()];
        for (k, v) in event.as_object().unwrap() {
            assert_eq!(&data[k], v, "data.{k}");
        }
        assert_eq!(
            e["type"],
            format!("com.clicktap.{}", data["type"].as_str().unwrap())
        );
        assert_eq!(e["subject"], data["link"]["path"]);
        assert_eq!(e["time"], data["timestamp"]);
    };

    wait_until("three single requests", WAIT, || {
        requests_to(&rx, "/one").len() == 3
    });
    for s in &requests_to(&rx, "/one") {
        assert_eq!(s.headers["content-type"], "application/cloudevents+json");
        let e = body_json(s);
        required(&e);
        assert_eq!(e["id"], s.headers["webhook-id"].to_str().unwrap());
        assert_eq!(e["source"], "http://sho.rt");
        assert_eq!(e["data"]["webhook_id"], "one");
        common::verify_standard_webhooks(secret, s);
    }

    wait_until("the batch", WAIT, || {
        requests_to(&rx, "/many")
            .iter()
            .map(|s| body_json(s).as_array().map_or(0, Vec::len))
            .sum::<usize>()
            >= 3
    });
    let mut ids = Vec::new();
    for s in requests_to(&rx, "/many") {
        assert_eq!(
            s.headers["content-type"],
            "application/cloudevents-batch+json"
        );
        for e in body_json(&s).as_array().unwrap() {
            required(e);
            assert_eq!(e["source"], "urn:clicktap:eu-1");
            assert_eq!(e["data"]["webhook_id"], "many");
            ids.push(e["id"].as_str().unwrap().to_string());
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "an id per event");
}

/// Page views are captured on both forwarding paths, and a reload that adds a page
/// makes its next view an event (the proxy reads the pages through a swapped handle)
/// and one that adds a QR link makes its next redirect a scan (enrichment's rules).
fn page_views_are_captured_and_a_reload_adds_pages(forwarding: &str) {
    let up = shortener();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().forwarding(forwarding).tail(RULES);
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/bio/alice", common::BROWSER), 200);
    assert_eq!(ct.click("HEAD /bio/alice/", common::BROWSER), 200);
    assert_eq!(ct.click("/bio/bob", common::BROWSER), 200);
    let req = "GET /bio/alice HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n";
    common::raw_exchange(ct.proxy, req.as_bytes());
    ct.wait_settled(4);
    let events = ct.events(10);
    let views: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["link"]["path"].as_str().unwrap(),
                e["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        views.len(),
        3,
        "alice's page on any host, bob's is no page: {views:?}"
    );
    assert!(events.iter().all(|e| e["type"] == "page.viewed"));

    let text = std::fs::read_to_string(&ct.config).unwrap();
    std::fs::write(
        &ct.config,
        format!(
            "{text}\n[[pages]]\npath = \"/bio/bob\"\nhost = \"sho.rt\"\n[[links]]\npath = \"/r/new\"\nqr = true\n"
        ),
    )
    .unwrap();
    let answer = http_post(ct.admin, "/api/v1/reload");
    assert!(answer.contains("\"hash\""), "{answer}");
    assert_eq!(ct.click("/bio/bob", common::BROWSER), 200);
    assert_eq!(ct.click("/r/new", common::BROWSER), 302);
    ct.wait_settled(6);
    let newest = ct.events(2);
    assert_eq!(newest[0]["link"]["path"], "/bio/bob");
    assert_eq!(newest[0]["type"], "page.viewed");
    assert_eq!(newest[1]["link"]["path"], "/r/new");
    assert_eq!(newest[1]["type"], "link.scanned");
    assert_eq!(ct.metric("clicktap_capture_clicks_total", ""), 5.0);
}

on_both_paths!(page_views_are_captured_and_a_reload_adds_pages);

#[test]
fn check_refuses_unknown_event_types_and_bad_rules_naming_key_and_value() {
    let (code, err) = check_text(
        r#"[[webhooks]]
id = "a"
url = "https://hooks.example.com/a"
events = ["link.clicked", "link.opened"]

[[webhooks]]
id = "b"
url = "https://hooks.example.com/b"
events = []
source = "urn:x"

[qr]
params = ["", "a=b"]
paths = ["/q/[*"]

[[pages]]
path = "/bio/*/x"

[[pages]]
path = "/ok"
host = "sho.rt:8080"

[[links]]
qr_params = ["has space"]
"#,
    );
    assert_eq!(code, 2, "{err}");
    for expect in [
        r#"webhooks[0].events[1]: "link.opened" is not an event type; use link.clicked, link.scanned, page.viewed, page.link_clicked"#,
        "webhooks[1].events: is empty",
        "webhooks[1].source: only the cloudevents format sends a source",
        "qr.params[0]: is empty",
        r#"qr.params[1]: "a=b" is not a query parameter name"#,
        r#"qr.paths[0]: "/q/[*" is not a glob"#,
        r#"pages[0].path: "/bio/*/x": only a * at the end is read"#,
        r#"pages[1].host: "sho.rt:8080" is not a host name"#,
        r#"links[0].qr_params[0]: "has space" is not a query parameter name"#,
    ] {
        assert!(err.contains(expect), "does not say {expect:?}:\n{err}");
    }
    let (code, err) = check_text(
        "[[webhooks]]\nid = \"c\"\nurl = \"https://hooks.example.com/c\"\nformat = \"cloudevents\"\nsource = \"urn:clicktap:eu-1\"\nevents = [\"page.viewed\"]\n[webhooks.batch]\nmax_events = 50\n",
    );
    assert_eq!(code, 0, "{err}");
}
