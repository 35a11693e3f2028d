//! A bad configuration names every problem, file and key, and exits 2; `run` refuses
//! the same file with the same messages.

mod common;

use std::process::Command;

fn clicktap(args: &[&str], config: &std::path::Path) -> (i32, String) {
    let out = Command::new(common::clicktap::bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_problem_is_listed_with_file_and_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[proxy]
listen = "localhost"
upstrem = "127.0.0.1:8081"
trusted_proxies = ["10.0.0.0/40"]
capture_statuses = [200]
upstream_ca = "/nonexistent/ca.pem"

[enrich]
poll_interval = "5s"

[geoip]
database = "/nonexistent/City.mmdb"

[queue]
path = "/proc/clicktap-queue"
flush_interval = "soon"

[delivery]
nice = 20

[[webhooks]]
id = "a"
url = "ftp://example.com"
format = "bitly2"
"#,
    )
    .unwrap();
    let file = path.display().to_string();
    let expect = [
        "proxy.upstrem: unknown key",
        "proxy.listen: \"localhost\" is not an address:port",
        "proxy.trusted_proxies[0]: \"10.0.0.0/40\" is not a CIDR",
        "proxy.capture_statuses: 200 is not a redirect status",
        "proxy.upstream_ca: /nonexistent/ca.pem cannot be read",
        "enrich.poll_interval: \"5s\" is outside 1ms-1s",
        "geoip.database: /nonexistent/City.mmdb cannot be read",
        "queue.path: /proc is not writable",
        "queue.flush_interval: \"soon\" is not a duration",
        "delivery.nice: 20 is not a nice value from 0 to 19",
        "webhooks[0].url: has scheme \"ftp\"",
        "webhooks[0].format: \"bitly2\" is not a format",
    ];
    for cmd in [&["check"][..], &["run"][..]] {
        let (code, err) = clicktap(cmd, &path);
        assert_eq!(code, 2, "{cmd:?}: {err}");
        for e in expect {
            assert!(
                err.contains(&format!("{file}: {e}")),
                "{cmd:?} does not say {e:?}:\n{err}"
            );
        }
    }
}

#[test]
fn a_toml_syntax_error_points_at_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, "[proxy]\nlisten = \"127.0.0.1:1\n").unwrap();
    let (code, err) = clicktap(&["check"], &path);
    assert_eq!(code, 2);
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn the_example_and_demo_configs_pass() {
    for f in ["conf/clicktap.toml", "conf/demo.toml", "conf/relay.toml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(f);
        let (code, err) = clicktap(&["check"], &path);
        assert_eq!(code, 0, "{f}: {err}");
    }
}

/// Runs `clicktap check` on `text` from a fresh directory, so that the default
/// `queue.path` lands there; returns the exit code, stderr and the file's name.
fn check_text(text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clicktap.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(common::clicktap::bin())
        .current_dir(dir.path())
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path.display().to_string(),
    )
}

/// `check` exits 2 and names every one of `expect` (key: message prefix) at once.
fn refuses_all(text: &str, expect: &[&str]) -> String {
    let (code, err, file) = check_text(text);
    assert_eq!(code, 2, "{err}");
    for e in expect {
        assert!(
            err.contains(&format!("{file}: {e}")),
            "does not say {e:?}:\n{err}"
        );
    }
    err
}

fn accepts(text: &str) {
    let (code, err, _) = check_text(text);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn the_token_url_follows_the_webhook_url_rule() {
    let hook = |id: &str, token_url: &str| {
        format!(
            "[[webhooks]]\nid = \"{id}\"\nurl = \"https://hooks.example.com/\"\n\
             [webhooks.auth]\ntype = \"oauth2_client_credentials\"\ntoken_url = \"{token_url}\"\n\
             client_id = \"cid\"\nclient_secret = \"csecret\"\n"
        )
    };
    let text = [
        hook("plain", "http://auth.example.com/token"),
        hook("ftp", "ftp://auth.example.com/token"),
        hook("file", "file:///etc/token"),
        hook("good", "https://auth.example.com/token"),
    ]
    .concat();
    let err = refuses_all(
        &text,
        &[
            "webhooks[0].auth.token_url: is http, which would send in clear text; use https, or set delivery.allow_http = true",
            "webhooks[1].auth.token_url: has scheme \"ftp\"; use https",
            "webhooks[2].auth.token_url: has scheme \"file\"; use https",
        ],
    );
    assert!(!err.contains("webhooks[3]"), "{err}");
    assert!(!err.contains("csecret"), "{err}");
    // With http allowed, as for webhook URLs.
    accepts(&format!(
        "[delivery]\nallow_http = true\n{}",
        hook("plain", "http://auth.example.com/token")
    ));
}

#[test]
fn empty_or_short_secrets_are_refused_without_printing_them() {
    let text = r#"
[[webhooks]]
id = "empty-key"
url = "https://hooks.example.com/"
secret = "whsec_"

[[webhooks]]
id = "short-key"
url = "https://hooks.example.com/"
secret = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2hvcnQta2V5"]

[[webhooks]]
id = "tly-empty"
url = "https://hooks.example.com/"
format = "tly"
secret = ""

[[webhooks]]
id = "rebrandly-empty"
url = "https://hooks.example.com/"
format = "rebrandly"
secret = ""
"#;
    let err = refuses_all(
        text,
        &[
            "webhooks[0].secret: decodes to 0 bytes; a Standard Webhooks key needs at least 16",
            "webhooks[1].secret[1]: decodes to 9 bytes; a Standard Webhooks key needs at least 16",
            "webhooks[2].secret: is empty",
            "webhooks[3].secret: is empty",
        ],
    );
    assert!(
        !err.contains("c2hvcnQta2V5"),
        "a secret in the message:\n{err}"
    );
    assert!(!err.contains("secret[0]"), "{err}");
    // The keys the docs, the demo and the tests use (24 bytes, and the spec's own),
    // and plain-text vendor secrets, pass.
    accepts(
        r#"
[[webhooks]]
id = "readme"
url = "https://hooks.example.com/"
secret = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]

[[webhooks]]
id = "tly"
url = "https://hooks.example.com/"
format = "tly"
secret = "tly-secret-1"
"#,
    );
}

#[test]
fn request_limits_are_bounded_by_what_pingora_reads() {
    refuses_all(
        r#"
[proxy]
request_timeout = "0s"
max_request_head = "2MiB"
"#,
        &[
            "proxy.request_timeout: \"0s\" is outside 1ms-1h",
            "proxy.max_request_head: \"2MiB\" is over 1MiB, the most Pingora reads",
        ],
    );
    refuses_all(
        "[proxy]\nmax_request_head = \"512\"\n",
        &["proxy.max_request_head: \"512\" is below 1KiB"],
    );
    accepts("[proxy]\nrequest_timeout = \"10s\"\nmax_request_head = \"1MiB\"\n");
}

#[test]
fn zero_durations_that_make_no_sense_are_refused() {
    let text = r#"
[proxy]
upstream_connect_timeout = "0s"
upstream_read_timeout = "0ms"

[queue]
retention = "0s"

[delivery]
poll_interval = "0s"
log_retention = "0s"

[[webhooks]]
id = "a"
url = "https://hooks.example.com/"
timeout = "0s"
disable_after = "0s"
"#;
    refuses_all(
        text,
        &[
            "proxy.upstream_connect_timeout: \"0s\" is below 1ms",
            "proxy.upstream_read_timeout: \"0ms\" is below 1ms",
            "queue.retention: \"0s\" is below 1ms",
            "delivery.poll_interval: \"0s\" is below 1ms",
            "delivery.log_retention: \"0s\" is below 1ms",
            "webhooks[0].timeout: \"0s\" is below 1ms",
            "webhooks[0].disable_after: \"0s\" is below 1ms",
        ],
    );
    // Zero is a choice for these: no grace, no wind-down, no reuse, a flush per batch.
    accepts(
        r#"
[proxy]
grace_period = "0s"
shutdown_timeout = "0s"
upstream_idle_timeout = "0s"

[queue]
flush_interval = "0s"
"#,
    );
}

#[test]
fn listeners_that_collide_and_an_upstream_that_loops_are_refused() {
    let (a, b, c) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    refuses_all(
        &format!(
            "[proxy]\nlisten = \"127.0.0.1:{a}\"\nupstream = \"127.0.0.1:{a}\"\n\
             [admin]\nlisten = \"127.0.0.1:{a}\"\n"
        ),
        &[
            &format!(
                "admin.listen: \"127.0.0.1:{a}\" is proxy.listen's address too (\"127.0.0.1:{a}\")"
            ),
            &format!(
                "proxy.upstream: \"127.0.0.1:{a}\" is proxy.listen (\"127.0.0.1:{a}\"): clicktap would proxy to itself"
            ),
        ],
    );
    // The unspecified address takes the port on every address of its family: [::]
    // (dual-stack) on both.
    refuses_all(
        &format!(
            "[proxy]\nlisten = \"0.0.0.0:{b}\"\nupstream = \"127.0.0.1:{b}\"\n\
             [admin]\nlisten = \"127.0.0.1:{b}\"\n"
        ),
        &[
            &format!(
                "admin.listen: \"127.0.0.1:{b}\" is proxy.listen's address too (\"0.0.0.0:{b}\")"
            ),
            &format!("proxy.upstream: \"127.0.0.1:{b}\" is proxy.listen"),
        ],
    );
    refuses_all(
        &format!("[proxy]\nlisten = \"127.0.0.1:{c}\"\n[admin]\nlisten = \"[::]:{c}\"\n"),
        &[&format!(
            "admin.listen: \"[::]:{c}\" is proxy.listen's address too (\"127.0.0.1:{c}\")"
        )],
    );
    // Another host on the same port is no loop, and other addresses do not collide.
    accepts(&format!(
        "[proxy]\nlisten = \"0.0.0.0:{a}\"\nupstream = \"192.0.2.10:{a}\"\n\
         [admin]\nlisten = \"127.0.0.1:{b}\"\n"
    ));
    accepts(&format!(
        "[proxy]\nlisten = \"127.0.0.1:{c}\"\n[admin]\nlisten = \"[::1]:{c}\"\n"
    ));
}

#[test]
fn headers_clicktap_sets_itself_are_refused() {
    let text = r#"
[[webhooks]]
id = "native"
url = "https://hooks.example.com/"
[webhooks.headers]
"content-type" = "text/plain"
"Content-Length" = "1"
"HOST" = "evil.example"
"Transfer-Encoding" = "chunked"
"Connection" = "close"
"Authorization" = "Bearer x"
"Idempotency-Key" = "k"
"Webhook-Signature" = "v1,forged"
"webhook-anything" = "x"
"User-Agent" = "acme-clicks/2"
"X-Team" = "growth"

[[webhooks]]
id = "tly"
url = "https://hooks.example.com/"
format = "tly"
headers = { "X-Tly-Key" = "k", "x-tly-event" = "e", "X-Tly-Delivery" = "d", "X-Tly-Timestamp" = "1" }

[[webhooks]]
id = "rebrandly"
url = "https://hooks.example.com/"
format = "rebrandly"
headers = { "X-Rebrandly-Secret" = "s", "APIKEY" = "k" }
"#;
    let err = refuses_all(
        text,
        &[
            "webhooks[0].headers.content-type: is set by clicktap itself",
            "webhooks[0].headers.Content-Length: is set by clicktap itself",
            "webhooks[0].headers.HOST: is set by clicktap itself",
            "webhooks[0].headers.Transfer-Encoding: is set by clicktap itself",
            "webhooks[0].headers.Connection: is set by clicktap itself",
            "webhooks[0].headers.Authorization: is set by clicktap itself",
            "webhooks[0].headers.Idempotency-Key: is set by clicktap itself",
            "webhooks[0].headers.Webhook-Signature: is set by clicktap itself",
            "webhooks[0].headers.webhook-anything: is set by clicktap itself",
            "webhooks[1].headers.X-Tly-Key: is set by the tly format itself",
            "webhooks[1].headers.x-tly-event: is set by the tly format itself",
            "webhooks[1].headers.X-Tly-Delivery: is set by the tly format itself",
            "webhooks[1].headers.X-Tly-Timestamp: is set by the tly format itself",
            "webhooks[2].headers.X-Rebrandly-Secret: is set by the rebrandly format itself",
            "webhooks[2].headers.APIKEY: is set by the rebrandly format itself",
        ],
    );
    assert!(!err.contains("User-Agent"), "{err}");
    assert!(!err.contains("X-Team"), "{err}");
}

#[test]
fn rate_limits_outside_a_thousandth_to_a_million_per_second_are_refused() {
    let hook = |id: &str, rate: &str| {
        format!(
            "[[webhooks]]\nid = \"{id}\"\nurl = \"https://hooks.example.com/\"\nrate_limit = {rate}\n"
        )
    };
    let text = [
        hook("tiny", "1e-20"),
        hook("zero", "0.0"),
        hook("huge", "2e6"),
        hook("nan", "nan"),
        hook("low", "0.001"),
        hook("high", "1000000.0"),
    ]
    .concat();
    let err = refuses_all(
        &text,
        &[
            "webhooks[0].rate_limit: 1e-20 is outside 0.001-1000000 requests per second",
            "webhooks[1].rate_limit: 0.0 is outside 0.001-1000000 requests per second",
            "webhooks[2].rate_limit: 2000000.0 is outside 0.001-1000000 requests per second",
            "webhooks[3].rate_limit: NaN is outside 0.001-1000000 requests per second",
        ],
    );
    assert!(
        !err.contains("webhooks[4]") && !err.contains("webhooks[5]"),
        "{err}"
    );
}

#[test]
fn counts_and_delays_beyond_what_an_operator_means_are_refused() {
    let text = r#"
[proxy]
threads = 257
listener_tasks = 65
forwarding = "fast"

[enrich]
channel_capacity = 2000000
workers = 65
batch_size = 100000

[delivery]
threads = 65
log_body_bytes = 2000000

[[webhooks]]
id = "a"
url = "https://hooks.example.com/"
concurrency = 1025
[webhooks.retry]
max_attempts = 101
schedule = ["5s", "8d"]
[webhooks.batch]
max_events = 10001

[[webhooks]]
id = "b"
url = "https://hooks.example.com/"
concurrency = 0
[webhooks.retry]
max_attempts = 0
base = "0s"
max = "30d"

[[webhooks]]
id = "c"
url = "https://hooks.example.com/"
[webhooks.retry]
base = "1h"
max = "1m"
"#;
    refuses_all(
        text,
        &[
            "proxy.threads: 257 is outside 1-256",
            "proxy.listener_tasks: 65 is outside 1-64",
            "proxy.forwarding: \"fast\" is not a forwarding path; allowed: \"lean\", \"full\"",
            "enrich.channel_capacity: 2000000 is outside 1-1048576",
            "enrich.workers: 65 is outside 1-64",
            "enrich.batch_size: 100000 is outside 1-65536",
            "delivery.threads: 65 is outside 1-64",
            "delivery.log_body_bytes: 2000000 is outside 0-1048576",
            "webhooks[0].concurrency: 1025 is outside 1-1024",
            "webhooks[0].retry.max_attempts: 101 is outside 1-100",
            "webhooks[0].retry.schedule[1]: \"8d\" is outside 0s-7days",
            "webhooks[0].batch.max_events: 10001 is outside 0-10000",
            "webhooks[1].concurrency: 0 is outside 1-1024",
            "webhooks[1].retry.max_attempts: 0 is outside 1-100",
            "webhooks[1].retry.base: \"0s\" is outside 1ms-7days",
            "webhooks[1].retry.max: \"30d\" is outside 1ms-7days",
            "webhooks[2].retry.max: \"1m\" is below retry.base (\"1h\")",
        ],
    );
}

#[test]
fn queue_and_delivery_keys_for_disk_space_stop_and_log_size() {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("queue").display().to_string();
    let path = std::path::Path::new("t.toml");
    let defaults = clicktap::config::from_str(&format!("[queue]\npath = {q:?}\n"), path).unwrap();
    assert_eq!(defaults.queue.min_free_bytes, 64 << 20);
    assert_eq!(
        defaults.delivery.stop_timeout,
        std::time::Duration::from_secs(5)
    );
    assert_eq!(defaults.delivery.log_max_bytes, 256 << 20);
    assert_eq!(defaults.delivery.state_max_bytes, 64 << 20);
    let set = clicktap::config::from_str(
        &format!(
            "[queue]\npath = {q:?}\nmin_free_bytes = \"0\"\n\
             [delivery]\nstop_timeout = \"250ms\"\nlog_max_bytes = \"1MiB\"\n\
             state_max_bytes = \"64KiB\"\n"
        ),
        path,
    )
    .unwrap();
    assert_eq!(set.queue.min_free_bytes, 0);
    assert_eq!(
        set.delivery.stop_timeout,
        std::time::Duration::from_millis(250)
    );
    assert_eq!(set.delivery.log_max_bytes, 1 << 20);
    assert_eq!(set.delivery.state_max_bytes, 64 << 10);
    refuses_all(
        "[queue]\nmin_free_bytes = \"lots\"\n[delivery]\nstop_timeout = \"11m\"\nlog_max_bytes = \"512KiB\"\nstate_max_bytes = \"1KiB\"\n",
        &[
            "queue.min_free_bytes: \"lots\" is not a size",
            "delivery.stop_timeout: \"11m\" is outside 1ms-10m",
            "delivery.log_max_bytes: \"512KiB\" is below 1MiB",
            "delivery.state_max_bytes: \"1KiB\" is below 64KiB",
        ],
    );
    refuses_all(
        "[delivery]\nstop_timeout = \"0s\"\n",
        &["delivery.stop_timeout: \"0s\" is outside 1ms-10m"],
    );
}

#[test]
fn basic_credentials_in_the_url_are_percent_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("queue").display().to_string();
    let cfg = clicktap::config::from_str(
        &format!(
            "[queue]\npath = {q:?}\n[[webhooks]]\nid = \"a\"\n\
             url = \"https://us%40er:p%3Ass%20w%C3%B6rd@hooks.example.com/\"\n\
             [webhooks.auth]\ntype = \"basic\"\n"
        ),
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    match &cfg.webhooks[0].auth {
        clicktap::config::Auth::Basic { username, password } => {
            assert_eq!(username, "us@er");
            assert_eq!(password.expose(), "p:ss wörd");
        }
        other => panic!("{other:?}"),
    }
    // A colon cannot be told apart from the separator in Basic auth; bytes that are
    // not UTF-8 are no text.
    refuses_all(
        "[[webhooks]]\nid = \"colon\"\nurl = \"https://us%3Aer:pw@hooks.example.com/\"\n\
         [webhooks.auth]\ntype = \"basic\"\n\
         [[webhooks]]\nid = \"latin1\"\nurl = \"https://user:p%E9@hooks.example.com/\"\n\
         [webhooks.auth]\ntype = \"basic\"\n",
        &[
            "webhooks[0].auth.username: may not hold \":\"",
            "webhooks[1].url: the password in the URL is not UTF-8 once percent-decoded",
        ],
    );
}

#[test]
fn a_syntax_error_on_a_secrets_line_does_not_print_the_secret() {
    let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let text = format!(
        "[[webhooks]]\nid = \"w\"\nurl = \"https://hooks.example/\"\nsecret = \"{secret}\n"
    );
    let (code, err, _) = check_text(&text);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 4"), "{err}");
    assert!(
        !err.contains(&secret[6..20]),
        "the secret is printed: {err}"
    );
}

#[test]
fn files_that_are_not_regular_files_are_refused_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo (coreutils) is needed");
    for path in ["/dev/zero".to_string(), fifo.display().to_string()] {
        let err = refuses_all(
            &format!("[proxy]\nupstream_ca = \"{path}\"\n[geoip]\ndatabase = \"{path}\"\n"),
            &["proxy.upstream_ca: ", "geoip.database: "],
        );
        assert!(err.contains("is not a regular file"), "{err}");
    }
}

#[test]
fn unique_click_keys_are_bounded_and_a_unique_filter_needs_a_window() {
    refuses_all(
        r#"
[enrich]
unique_window = "31d"
unique_max_bytes = "32KiB"
"#,
        &[
            "enrich.unique_window: \"31d\" is outside 0s-30days",
            "enrich.unique_max_bytes: \"32KiB\" is below 64KiB",
        ],
    );
    refuses_all(
        r#"
[enrich]
unique_window = "soon"
unique_max_bytes = "17GiB"
"#,
        &[
            "enrich.unique_window: \"soon\" is not a duration",
            "enrich.unique_max_bytes: \"17GiB\" is over 16GiB",
        ],
    );
    let hooks = r#"
[[webhooks]]
id = "counted"
url = "https://hooks.example.com/"
[webhooks.filter]
unique = true
"#;
    let err = refuses_all(
        &format!("[enrich]\nunique_window = \"0s\"\n{hooks}"),
        &["webhooks[0].filter.unique: is true, but enrich.unique_window is \"0s\""],
    );
    assert!(err.contains("1 problem found"), "{err}");
    // A window that is itself wrong is reported once, not again at the filter.
    let err = refuses_all(
        &format!("[enrich]\nunique_window = \"never\"\n{hooks}"),
        &["enrich.unique_window: \"never\" is not a duration"],
    );
    assert!(!err.contains("filter.unique"), "{err}");
    accepts(&format!(
        "[enrich]\nunique_window = \"2s\"\nunique_max_bytes = \"64KiB\"\n{hooks}"
    ));
    accepts("[enrich]\nunique_window = \"0s\"\n");
}

const RELAY: &str = r#"
[relay]
urls = ["nats://127.0.0.1:4222"]
stream = "CLICKS"
"#;

const HOOK: &str = r#"
[[webhooks]]
id = "all"
url = "https://hooks.example.com/clicks"
"#;

#[test]
fn a_relay_file_is_accepted_with_its_webhooks() {
    accepts(&format!("{RELAY}{HOOK}"));
    accepts(&format!(
        "{RELAY}ack_wait = \"10s\"\ndeliver = \"new\"\ndead_letter_stream = \"LOST\"\nuser = \"u\"\npassword = \"p\"\n[admin]\nlisten = \"127.0.0.1:9999\"\n[delivery]\nallow_http = true\n{HOOK}"
    ));
}

#[test]
fn a_relay_without_webhooks_or_with_sidecar_settings_is_refused_naming_each() {
    refuses_all(RELAY, &["webhooks: is missing: a relay delivers"]);
    let err = refuses_all(
        &format!(
            "{RELAY}\n[proxy]\nlisten = \"127.0.0.1:8080\"\n[queue]\npath = \"q\"\n[geoip]\n[delivery]\nstate_max_bytes = \"1MiB\"\nlog_retention = \"1d\"\n\
             [[sinks]]\nid = \"s\"\ntype = \"nats\"\n{HOOK}batch.max_events = 10\ndisable_after = \"1h\"\n"
        ),
        &[
            "proxy: is not for a relay",
            "queue: is not for a relay ([relay] is set): a relay keeps no local queue",
            "geoip: is not for a relay",
            "sinks: is not for a relay",
            "delivery.state_max_bytes: is not for a relay",
            "delivery.log_retention: is not for a relay",
            "webhooks[0].batch: is not for a relay",
            "webhooks[0].disable_after: is not for a relay",
        ],
    );
    assert!(!err.contains("webhooks: is missing"), "{err}");
}

#[test]
fn bad_relay_keys_are_each_named_with_their_value() {
    refuses_all(
        &format!(
            "[relay]\nurls = [\"http://x:4222\", \"nats://u:secretpw@x:4222\"]\nack_wait = \"0s\"\ndeliver = \"later\"\n\
             dead_letter_stream = \"a.b\"\ntoken = \"t\"\nnkey_seed = \"SUxx\"\nbogus = 1\n{HOOK}"
        ),
        &[
            "relay.urls[0]: \"http://x:4222\": write nats://host:port or tls://host:port",
            "relay.urls[1]: holds credentials",
            "relay.stream: is missing",
            "relay.ack_wait: \"0s\" is below 1ms",
            "relay.deliver: \"later\" is not one of",
            "relay.dead_letter_stream: \"a.b\" may not hold",
            "relay: sets token and nkey_seed: give one way to log in",
            "relay.bogus: unknown key",
        ],
    );
    let (_, err, _) = check_text(&format!(
        "[relay]\nurls = [\"nats://u:secretpw@x:4222\"]\nstream = \"S\"\n{HOOK}"
    ));
    assert!(!err.contains("secretpw"), "{err}");
    // An attempt that can outlast ack_wait would be sent by two relays at once.
    refuses_all(
        &format!("{RELAY}ack_wait = \"5s\"\n{HOOK}timeout = \"5s\"\n"),
        &["relay.ack_wait: 5s is not longer than the timeout of webhook \"all\" (5s)"],
    );
}

#[test]
fn run_refuses_a_relay_file_and_relay_refuses_a_sidecar_file() {
    let dir = tempfile::tempdir().unwrap();
    let relay = dir.path().join("relay.toml");
    std::fs::write(&relay, format!("{RELAY}{HOOK}")).unwrap();
    let (code, err) = clicktap(&["run"], &relay);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("relay: is set: this file configures a relay"),
        "{err}"
    );
    let sidecar = dir.path().join("sidecar.toml");
    std::fs::write(
        &sidecar,
        format!(
            "[queue]\npath = \"{}\"\n{HOOK}",
            dir.path().join("q").display()
        ),
    )
    .unwrap();
    let (code, err) = clicktap(&["relay"], &sidecar);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("relay: is missing"), "{err}");
}

#[test]
fn an_unknown_key_in_an_optional_table_is_named_as_written() {
    refuses_all(
        "[admin]\nlisten = \"127.0.0.1:9999\"\nlisten_port = 1\n",
        &["admin.listen_port: unknown key"],
    );
}
