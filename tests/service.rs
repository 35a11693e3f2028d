//! `conf/clicktap.service` as README installs it: the unit, the binary and the
//! configuration put where the documented install puts them, in a scratch root with
//! this machine's systemd units, then `systemd-analyze verify` (clean) and
//! `systemd-analyze security` (an exposure of 3.0 or below) on it. Without
//! systemd-analyze the test fails and says what to install.

mod common;

use std::path::Path;
use std::process::Command;

const ROOT_DIR: &str = env!("CARGO_MANIFEST_DIR");

fn systemd_analyze(root: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .arg(format!("--root={}", root.display()))
        .arg("clicktap.service")
        .output()
        .expect("run systemd-analyze");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path()).unwrap();
            std::os::unix::fs::symlink(link, target).unwrap();
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A root laid out as README's install leaves the machine.
fn installed(root: &Path) {
    let put = |from: &Path, to: &str| {
        let to = root.join(to.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        if std::fs::hard_link(from, &to).is_err() {
            std::fs::copy(from, &to).unwrap();
        }
    };
    let repo = Path::new(ROOT_DIR);
    put(
        Path::new(common::clicktap::bin()),
        "/usr/local/bin/clicktap",
    );
    put(
        &repo.join("conf/clicktap.toml"),
        "/etc/clicktap/clicktap.toml",
    );
    put(
        &repo.join("conf/clicktap.service"),
        "/etc/systemd/system/clicktap.service",
    );
    // What the unit names of the system: its targets and units, and kill(1).
    let units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("sysinit.target").exists())
        .expect("the system's units (sysinit.target) are where systemd keeps them");
    copy_tree(units, &root.join("usr/lib/systemd/system"));
    put(Path::new("/bin/kill"), "/bin/kill");
}

#[test]
fn the_unit_installed_as_documented_verifies_clean_and_is_hardened() {
    let has = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        has.is_ok_and(|o| o.status.success()),
        "systemd-analyze is needed: apt-get install systemd"
    );
    // README documents the same install the test lays out.
    let readme = std::fs::read_to_string(Path::new(ROOT_DIR).join("README.md")).unwrap();
    for step in [
        "useradd --system --home-dir /var/lib/clicktap --shell /usr/sbin/nologin clicktap",
        "install -m 0755 target/release/clicktap /usr/local/bin/clicktap",
        "install -d -m 0750 -o root -g clicktap /etc/clicktap",
        "/etc/clicktap/clicktap.toml",
        "install -m 0644 conf/clicktap.service /etc/systemd/system/clicktap.service",
        "systemd-analyze verify /etc/systemd/system/clicktap.service",
    ] {
        assert!(readme.contains(step), "README's install lacks {step:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    installed(dir.path());

    let (ok, text) = systemd_analyze(dir.path(), &["verify"]);
    assert!(ok && text.trim().is_empty(), "verify:\n{text}");

    let (_, text) = systemd_analyze(dir.path(), &["security", "--offline=true"]);
    let exposure: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for clicktap.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(
        exposure <= 3.0,
        "exposure {exposure} (at most 3.0):\n{text}"
    );
}
