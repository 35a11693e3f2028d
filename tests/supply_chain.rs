//! The supply chain as `cargo test` sees it: `cargo deny check` over Cargo.lock with
//! deny.toml (advisories from the snapshot in .ci/advisory-db, licenses, bans,
//! sources), through `.ci/deny`. A finding fails the test with cargo-deny's report; a
//! missing cargo-deny fails it and says how to install it.

use std::path::Path;
use std::process::Command;

#[test]
fn cargo_deny_finds_nothing_outside_deny_toml() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join(".ci/deny"))
        .current_dir(root)
        .output()
        .expect("bash runs .ci/deny");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "cargo deny check failed (exit {:?}); fix the finding or, if it cannot reach \
         clicktap, list it in deny.toml with its reason:\n{report}",
        out.status.code(),
    );
    assert!(
        report.contains("advisories ok, bans ok, licenses ok, sources ok"),
        "cargo deny did not report all four checks:\n{report}"
    );
}
