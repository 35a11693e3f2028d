//! Alerts through the real binary: a real SMTP server (Python's aiosmtpd, STARTTLS with
//! the test CA, AUTH required) and a chat receiver get a message when a webhook fails,
//! is disabled and recovers, and no more than each alert's rate limit when it flaps;
//! clicks dropped at a full queue are told too. The Prometheus rules in conf/ are checked
//! by promtool and fire on clicktap's own metric names.
//! Without aiosmtpd or promtool the tests fail and say what to install.

mod common;

use common::{Clicktap, Options, free_port, reply, upstream, wait_until};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// An SMTP server on loopback, started by the test: aiosmtpd with the test certificate
/// for 127.0.0.1, `mode` "starttls" (STARTTLS and AUTH required), "implicit" (TLS from
/// the first byte, AUTH required) or "plain" (neither offered); each login and each
/// mail written as a JSON line.
struct Smtp {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Smtp {
    fn start(dir: &Path, mode: &str) -> Smtp {
        common::need_python("aiosmtpd", "an SMTP server for the test is needed");
        let script = r#"
import sys, json, ssl, threading
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
port, log, cert, key, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
def write(d):
    with open(log, "a") as f:
        f.write(json.dumps(d) + "\n")
class Handler:
    async def handle_DATA(self, server, session, envelope):
        write({"mail": envelope.content.decode("utf8", "replace"), "from": envelope.mail_from,
               "to": envelope.rcpt_tos, "tls": server.transport.get_extra_info("ssl_object") is not None,
               "authenticated": session.authenticated})
        return "250 OK"
def auth(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == b"alerts" and data.password == b"s3cret-pass"
    write({"auth": mechanism, "ok": ok})
    return AuthResult(success=ok)
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
if mode == "plain":
    c = Controller(Handler(), hostname="127.0.0.1", port=port)
elif mode == "implicit":
    # TLS from the first byte: aiosmtpd does not count it as TLS for auth_require_tls.
    c = Controller(Handler(), hostname="127.0.0.1", port=port, ssl_context=ctx,
                   authenticator=auth, auth_require_tls=False)
else:
    c = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
                   authenticator=auth, auth_require_tls=True)
c.start()
print("ready", flush=True)
threading.Event().wait()
"#;
        let port = free_port();
        let log = dir.join("smtp.jsonl");
        let child = Command::new("python3")
            .args(["-c", script, &port.to_string()])
            .arg(&log)
            .arg(Path::new(DATA).join("upstream-cert.pem"))
            .arg(Path::new(DATA).join("upstream-key.pem"))
            .arg(mode)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let smtp = Smtp { child, port, log };
        wait_until("the SMTP server", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        smtp
    }

    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The mails received, as text (headers and body, quoted-printable lines joined).
    fn mails(&self) -> Vec<String> {
        self.lines()
            .iter()
            .filter_map(|l| l["mail"].as_str().map(|m| m.replace("=\r\n", "")))
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chat receiver: a Slack-compatible incoming webhook keeping each `text`.
fn chat() -> (common::TestServer, Arc<Mutex<Vec<String>>>) {
    let texts: Arc<Mutex<Vec<String>>> = Arc::default();
    let t = texts.clone();
    let rx = common::receiver::scripted(move |_, s| {
        let v: Value = serde_json::from_slice(&s.body).unwrap();
        t.lock()
            .unwrap()
            .push(v["text"].as_str().unwrap().to_string());
        async { reply(200, &[], "ok") }
    });
    (rx, texts)
}

/// The mail's Subject line.
fn subject(mail: &str) -> &str {
    mail.lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or("")
}

#[test]
fn a_person_is_told_by_mail_and_chat_when_a_webhook_fails_is_disabled_and_recovers_within_the_rate_limits()
 {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), "starttls");
    let (chat_rx, texts) = chat();
    // The receiver: fails (0), accepts (1), or fails every other request from the
    // first one in that mode on (2).
    let mode = Arc::new(AtomicUsize::new(0));
    let flaps = Arc::new(AtomicUsize::new(0));
    let (m, f) = (mode.clone(), flaps.clone());
    let rx = common::receiver::scripted(move |_, _| {
        let status = match m.load(Ordering::SeqCst) {
            0 => 500,
            1 => 200,
            _ if f.fetch_add(1, Ordering::SeqCst) % 2 == 0 => 500,
            _ => 200,
        };
        async move { reply(status, &[], "") }
    });
    let up = upstream::start();
    let hook = format!(
        "[[webhooks]]\nid = \"flaky\"\nurl = \"{}\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n\
         concurrency = 1\ndisable_after = \"1s\"\n\
         [webhooks.retry]\nmax_attempts = 100\nschedule = [\"100ms\"]\njitter = 0.0\n",
        rx.url("/")
    );
    let alerts = format!(
        "[[alerts]]\nid = \"mail\"\ntype = \"email\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\n\
         tls = \"starttls\"\nca = \"{DATA}/upstream-ca.pem\"\nusername = \"alerts\"\npassword = \"s3cret-pass\"\n\
         from = \"clicktap <clicktap@example.com>\"\nto = [\"ops@example.com\", \"oncall@example.com\"]\n\
         max_messages = 4\nper = \"1h\"\n\
         [[alerts]]\nid = \"chat\"\ntype = \"chat\"\nurl = \"{}\"\nmax_messages = 6\nper = \"1h\"\n",
        smtp.port,
        chat_rx.url("/services/T000/B000/secretpath")
    );
    let o = Options::default().tail(&hook).tail(&alerts);
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let sent = |alert: &str| {
        ct.metric(
            "clicktap_alerts_sent_total",
            &format!(r#"alert="{alert}",outcome="sent""#),
        )
    };

    // Fails: alerting, then disabled a second later.
    assert_eq!(ct.click("/r/a-0", ""), 302);
    wait_until(
        "two mails and two chat messages",
        Duration::from_secs(20),
        || sent("mail") >= 2.0 && sent("chat") >= 2.0,
    );
    // Recovers: the receiver is fixed and the webhook reactivated.
    mode.store(1, Ordering::SeqCst);
    let (code, out, err) = ct.cli(&["webhooks", "reactivate", "flaky"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_until("the recovery told", Duration::from_secs(20), || {
        sent("mail") >= 3.0 && sent("chat") >= 3.0
    });
    wait_until("the event delivered", Duration::from_secs(10), || {
        ct.metric("clicktap_delivery_delivered_total", "") == 1.0
    });
    let mails = smtp.mails();
    assert_eq!(mails.len(), 3, "{mails:#?}");
    assert_eq!(subject(&mails[0]), "clicktap: webhook flaky is failing");
    assert!(mails[0].contains("why: answered 500"), "{}", mails[0]);
    assert_eq!(subject(&mails[1]), "clicktap: webhook flaky is disabled");
    assert!(mails[1].contains("disable_after"), "{}", mails[1]);
    assert!(
        mails[1].contains("clicktap webhooks reactivate"),
        "{}",
        mails[1]
    );
    assert_eq!(subject(&mails[2]), "clicktap: webhook flaky recovered");
    assert!(
        mails[2].contains("reactivated by an operator"),
        "{}",
        mails[2]
    );
    for l in smtp.lines().iter().filter(|l| l["mail"].is_string()) {
        assert_eq!(l["tls"], true, "sent after STARTTLS: {l}");
        assert_eq!(l["authenticated"], true, "{l}");
        assert_eq!(l["from"], "clicktap@example.com", "{l}");
        assert_eq!(
            l["to"],
            serde_json::json!(["ops@example.com", "oncall@example.com"]),
            "{l}"
        );
    }
    let chats = texts.lock().unwrap().clone();
    assert_eq!(chats.len(), 3, "{chats:#?}");
    assert!(
        chats[0].starts_with("clicktap: webhook flaky is failing"),
        "{}",
        chats[0]
    );
    assert!(
        chats[1].starts_with("clicktap: webhook flaky is disabled"),
        "{}",
        chats[1]
    );
    assert!(
        chats[2].starts_with("clicktap: webhook flaky recovered"),
        "{}",
        chats[2]
    );

    // Flapping: each click fails once, then succeeds: two changes a click, 16 in all.
    // Mail sends one more (4 in the hour), chat three more (6); the other 15 and 13 are
    // counted, not sent.
    mode.store(2, Ordering::SeqCst);
    for i in 1..=8 {
        assert_eq!(ct.click(&format!("/r/a-{i}"), ""), 302);
        wait_until("the click delivered", Duration::from_secs(10), || {
            ct.metric("clicktap_delivery_delivered_total", "") == (i + 1) as f64
        });
    }
    let suppressed = |alert: &str| {
        ct.metric(
            "clicktap_alerts_suppressed_total",
            &format!(r#"alert="{alert}""#),
        )
    };
    wait_until("the rate limits reached", Duration::from_secs(10), || {
        sent("mail") == 4.0 && sent("chat") == 6.0 && suppressed("mail") == 15.0
    });
    assert_eq!(suppressed("chat"), 13.0);
    assert_eq!(smtp.mails().len(), 4);
    assert_eq!(texts.lock().unwrap().len(), 6);
    assert_eq!(ct.metric("clicktap_alerts_dropped_total", ""), 0.0);

    // Each mail's session logged in, after STARTTLS (aiosmtpd refuses AUTH before it).
    let lines = smtp.lines();
    let logins: Vec<&Value> = lines.iter().filter(|l| l["auth"].is_string()).collect();
    assert!(
        logins.len() >= 4 && logins.iter().all(|l| l["ok"] == true),
        "{logins:?}"
    );
    // No secret in any message or log line, the chat's URL path included.
    let everything = format!(
        "{:?}{:?}{}",
        smtp.lines(),
        texts.lock().unwrap(),
        ct.log_text()
    );
    for secret in [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "s3cret-pass",
        "secretpath",
    ] {
        assert!(!everything.contains(secret), "{secret} is shown");
    }
}

#[test]
fn clicks_dropped_at_a_full_queue_are_told_once_per_spell() {
    let dir = tempfile::tempdir().unwrap();
    let (chat_rx, texts) = chat();
    let up = upstream::start();
    let rx = common::receiver::ok();
    // A paused webhook keeps every event; the queue holds two.
    let o = Options::default()
        .queue("max_events = 2")
        .tail(&format!(
            "[[webhooks]]\nid = \"paused\"\nurl = \"{}\"\nenabled = false\n",
            rx.url("/")
        ))
        .tail(&format!(
            "[[alerts]]\nid = \"chat\"\ntype = \"chat\"\nurl = \"{}\"\nevents = [\"dropping\"]\n",
            chat_rx.url("/")
        ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    for i in 0..6 {
        assert_eq!(ct.click(&format!("/r/full-{i}"), ""), 302);
    }
    ct.wait_settled(6);
    assert_eq!(
        ct.metric("clicktap_queue_dropped_total", r#"reason="full""#),
        4.0
    );
    wait_until("the drops told", Duration::from_secs(10), || {
        !texts.lock().unwrap().is_empty()
    });
    let t = texts.lock().unwrap()[0].clone();
    assert!(t.starts_with("clicktap: clicks are being dropped"), "{t}");
    assert!(
        t.contains("queue full (queue.max_events or queue.max_bytes): "),
        "{t}"
    );
    // More drops in the same spell: no second message.
    assert_eq!(ct.click("/r/full-more", ""), 302);
    ct.wait_settled(7);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        texts.lock().unwrap().len(),
        1,
        "{:?}",
        texts.lock().unwrap()
    );
}

#[test]
fn the_prometheus_rules_pass_promtool_and_fire_on_clicktaps_metric_names() {
    let has = Command::new("promtool").arg("--version").output();
    assert!(
        has.is_ok_and(|o| o.status.success()),
        "promtool is needed: apt-get install prometheus (Debian's package ships it)"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = root.join("conf/clicktap-alerts.rules.yml");
    let check = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    let test = Command::new("promtool")
        .args(["test", "rules", "clicktap-alerts.test.yml"])
        .current_dir(root.join("tests/data"))
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    // Every metric the rules read is one clicktap exports: its name, as registered.
    let text = std::fs::read_to_string(&rules).unwrap();
    let metrics = std::fs::read_to_string(root.join("src/metrics.rs")).unwrap();
    let mut names: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("clicktap_"))
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() >= 6, "{names:?}");
    for n in names {
        assert!(
            metrics.contains(&format!("\"{n}\"")),
            "{n} is not a metric clicktap exports"
        );
    }
}

#[test]
fn check_lists_every_problem_of_the_alerts_without_quoting_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.toml");
    std::fs::write(
        &path,
        "[[webhooks]]\nid = \"crm\"\nurl = \"https://example.com/\"\n\
         [[alerts]]\nid = \"mail\"\ntype = \"email\"\nsmtp_host = \"smtp.example.com\"\ntls = \"none\"\n\
         username = \"u\"\npassword = \"hunter2-secret\"\nfrom = \"not an address\"\n\
         events = [\"alerting\", \"exploded\"]\nwebhooks = [\"crm\", \"nope\"]\nmax_messages = 0\n\
         [[alerts]]\nid = \"chat\"\ntype = \"chat\"\n\
         [[alerts]]\nid = \"pager\"\ntype = \"pager\"\n",
    )
    .unwrap();
    let out = Command::new(common::clicktap::bin())
        .current_dir(dir.path())
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{text}");
    for want in [
        "alerts[0].tls",
        "clear text",
        "alerts[0].from",
        "alerts[0].to",
        "alerts[0].events[1]",
        "alerts[0].webhooks[1]",
        "alerts[0].max_messages",
        "alerts[1].url",
        "alerts[2].type",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn alerts_added_by_a_reload_mail_over_tls_from_the_first_byte() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), "implicit");
    let up = upstream::start();
    let rx = common::receiver::always(500);
    let o = Options::default().tail(&format!(
        "[[webhooks]]\nid = \"w\"\nurl = \"{}\"\n[webhooks.retry]\nmax_attempts = 100\nschedule = [\"100ms\"]\n",
        rx.url("/")
    ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    let mut text = std::fs::read_to_string(&ct.config).unwrap();
    text.push_str(&format!(
        "\n[[alerts]]\nid = \"mail\"\ntype = \"email\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\n\
         tls = \"tls\"\nca = \"{DATA}/upstream-ca.pem\"\nusername = \"alerts\"\npassword = \"s3cret-pass\"\n\
         from = \"clicktap@example.com\"\nto = [\"ops@example.com\"]\nevents = [\"alerting\"]\n",
        smtp.port
    ));
    std::fs::write(&ct.config, text).unwrap();
    let (code, out, err) = ct.cli(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(ct.click("/r/tls", ""), 302);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while smtp.mails().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no mail: {:?}\n{}",
            smtp.lines(),
            ct.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mails = smtp.mails();
    assert_eq!(
        subject(&mails[0]),
        "clicktap: webhook w is failing",
        "{mails:?}"
    );
    let lines = smtp.lines();
    let mail = lines.iter().find(|l| l["mail"].is_string()).unwrap();
    assert_eq!(mail["tls"], true, "{mail}");
    assert_eq!(mail["authenticated"], true, "{mail}");
}

#[test]
fn starttls_is_required_and_none_is_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), "plain");
    let up = upstream::start();
    let rx = common::receiver::always(500);
    let mail = |id: &str, tls: &str| {
        format!(
            "[[alerts]]\nid = \"{id}\"\ntype = \"email\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\n\
             tls = \"{tls}\"\nfrom = \"clicktap@example.com\"\nto = [\"ops@example.com\"]\n",
            smtp.port
        )
    };
    let o = Options::default()
        .tail(&format!(
            "[[webhooks]]\nid = \"w\"\nurl = \"{}\"\n[webhooks.retry]\nmax_attempts = 1\n",
            rx.url("/")
        ))
        .tail(&mail("required", "starttls"))
        .tail(&mail("plain", "none"));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/plain", ""), 302);
    wait_until("both tried", Duration::from_secs(20), || {
        ct.metric(
            "clicktap_alerts_sent_total",
            r#"alert="plain",outcome="sent""#,
        ) == 1.0
            && ct.metric(
                "clicktap_alerts_sent_total",
                r#"alert="required",outcome="failed""#,
            ) == 1.0
    });
    // Only the plain-text alert's mail arrived; the other refused to go without STARTTLS.
    let lines = smtp.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["tls"], false);
    assert!(
        ct.log_text().contains("alert not sent alert=\"required\""),
        "{}",
        ct.log_text()
    );
}
