//! Asymmetric Standard Webhooks signatures (`v1a`, ed25519), through the real binary:
//! a key pair made by `clicktap webhooks keygen`, a webhook signing with it beside a
//! `whsec_` secret, and the signature verified by an independent ed25519 implementation
//! (Python's `cryptography`) with nothing but the public key that `clicktap webhooks
//! list` and the admin API show. The secret key is shown nowhere.
//! Without `cryptography` the test fails and says what to install.

mod common;

use common::{Clicktap, Options, receiver, upstream};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Checks with Python's `cryptography`: that `whsk` is Svix's layout (seed, then the
/// public key it derives, base64 after `whsk_`) for `whpk`, and that one of the `v1a`
/// signatures of `header` verifies over `id.timestamp.body` with `whpk` alone.
fn verify_v1a(
    whsk: Option<&str>,
    whpk: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
) {
    common::need_python(
        "cryptography",
        "Python's cryptography is needed to verify v1a signatures",
    );
    let script = r#"
import sys, json, base64
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
d = json.load(sys.stdin)
public = base64.b64decode(d["whpk"][len("whpk_"):])
if d["whsk"] is not None:
    raw = base64.b64decode(d["whsk"][len("whsk_"):])
    assert len(raw) == 64, len(raw)
    derived = Ed25519PrivateKey.from_private_bytes(raw[:32]).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert derived == raw[32:] == public, "not seed + public key"
key = Ed25519PublicKey.from_public_bytes(public)
signed = (d["id"] + "." + d["timestamp"] + ".").encode() + base64.b64decode(d["body"])
ok = 0
for part in d["header"].split(" "):
    version, sig = part.split(",", 1)
    if version == "v1a":
        key.verify(base64.b64decode(sig), signed)
        ok += 1
assert ok >= 1, "no v1a signature"
print("verified", ok)
"#;
    use base64_for_tests::encode;
    let input = serde_json::json!({
        "whsk": whsk, "whpk": whpk, "id": id, "timestamp": timestamp,
        "body": encode(body), "header": header,
    });
    let out = common::python(script, &input);
    assert!(
        out.status.success(),
        "the v1a signature did not verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Standard base64, written out so that the check does not lean on clicktap's crates.
mod base64_for_tests {
    pub fn encode(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

/// Runs `clicktap webhooks keygen`: the secret key and the public key it prints.
fn keygen() -> (String, String) {
    let out = Command::new(common::clicktap::bin())
        .args(["webhooks", "keygen"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let whsk = text
        .split('"')
        .find(|p| p.starts_with("whsk_"))
        .unwrap_or_else(|| panic!("no whsk_ in {text}"))
        .to_string();
    let whpk = text
        .split_whitespace()
        .find(|p| p.starts_with("whpk_"))
        .unwrap_or_else(|| panic!("no whpk_ in {text}"))
        .to_string();
    (whsk, whpk)
}

#[test]
fn a_v1a_signature_verifies_with_an_independent_ed25519_implementation() {
    let (whsk, whpk) = keygen();
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&format!(
        "[[webhooks]]\nid = \"signed\"\nurl = \"{}\"\nsecret = \"{WHSEC}\"\nsecret_key = \"{whsk}\"\n",
        rx.url("/")
    ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);

    // The public key, shown by the command line and the API; the secret key nowhere.
    let (code, listed, err) = ct.cli(&["webhooks", "list"]);
    assert_eq!(code, 0, "{listed}{err}");
    assert!(listed.contains(&whpk), "{listed}");
    let api: Value = serde_json::from_str(&ct.admin_get("/api/v1/webhooks/signed")).unwrap();
    assert_eq!(api["public_keys"], serde_json::json!([whpk]), "{api}");
    let secret_b64 = &whsk["whsk_".len()..];
    let status = ct.admin_get("/api/v1/status");
    for shown in [
        listed.as_str(),
        &api.to_string(),
        &status,
        &ct.admin_get("/metrics"),
    ] {
        assert!(
            !shown.contains(secret_b64),
            "the secret key is shown: {shown}"
        );
    }

    assert_eq!(ct.click("/r/signed", ""), 302);
    let seen = rx.wait_for(1, Duration::from_secs(10));
    let s = &seen[0];
    let header = s.headers["webhook-signature"].to_str().unwrap();
    let parts: Vec<&str> = header.split(' ').collect();
    assert_eq!(parts.len(), 2, "{header}");
    assert!(
        parts[0].starts_with("v1,") && parts[1].starts_with("v1a,"),
        "{header}"
    );
    // The v1 signature beside it still verifies with the reference library.
    common::verify_standard_webhooks(WHSEC, s);
    verify_v1a(
        Some(&whsk),
        &whpk,
        s.headers["webhook-id"].to_str().unwrap(),
        s.headers["webhook-timestamp"].to_str().unwrap(),
        &s.body,
        header,
    );
    assert!(
        !ct.log_text().contains(secret_b64),
        "the secret key is logged"
    );
}

#[test]
fn a_webhook_may_sign_with_a_secret_key_alone_and_a_bad_one_is_refused_by_check() {
    let (whsk, whpk) = keygen();
    let up = upstream::start();
    let rx = receiver::ok();
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().tail(&format!(
        "[[webhooks]]\nid = \"asym\"\nurl = \"{}\"\nformat = \"tly\"\nsecret_key = \"{whsk}\"\n",
        rx.url("/")
    ));
    let ct = Clicktap::start(dir.path(), up.addr, &o);
    assert_eq!(ct.click("/r/asym", ""), 302);
    let seen = rx.wait_for(1, Duration::from_secs(10));
    let s = &seen[0];
    let header = s.headers["webhook-signature"].to_str().unwrap();
    assert!(
        header.starts_with("v1a,") && !header.contains(' '),
        "{header}"
    );
    assert!(
        !s.headers.contains_key("x-tly-key"),
        "no shared secret to send"
    );
    verify_v1a(
        None,
        &whpk,
        s.headers["webhook-id"].to_str().unwrap(),
        s.headers["webhook-timestamp"].to_str().unwrap(),
        &s.body,
        header,
    );

    // A key whose public half is not its seed's, and a public key given as the secret:
    // exit 2, each named by its key, neither quoted.
    let mut raw = whsk.clone();
    raw.replace_range(raw.len() - 8..raw.len() - 4, "AAAA");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "[[webhooks]]\nid = \"a\"\nurl = \"https://example.com/\"\nsecret_key = \"{raw}\"\n\
             [[webhooks]]\nid = \"b\"\nurl = \"https://example.com/\"\nsecret_key = [\"{whsk}\", \"{whpk}\"]\n"
        ),
    )
    .unwrap();
    let out = Command::new(common::clicktap::bin())
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("webhooks[0].secret_key"), "{text}");
    assert!(text.contains("webhooks[1].secret_key[1]"), "{text}");
    assert!(text.contains("is a public key"), "{text}");
    assert!(
        !text.contains(&raw[5..]) && !text.contains(&whpk[5..]),
        "{text}"
    );
}
