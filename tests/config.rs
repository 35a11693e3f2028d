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
        "geoip.database: /nonexistent/City.mmdb cannot be opened",
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
    for f in ["conf/clicktap.toml", "conf/demo.toml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(f);
        let (code, err) = clicktap(&["check"], &path);
        assert_eq!(code, 0, "{f}: {err}");
    }
}
