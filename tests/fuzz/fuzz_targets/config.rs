//! Config parsing: `clicktap::config::from_str` on arbitrary text, as `clicktap check`
//! and `clicktap run` read a file.
//!
//! What must hold: never a panic; a refusal lists at least one problem, and every line
//! of its message names the file, as `clicktap check` prints it (exit 2). Seeds: the
//! repository's conf/*.toml; `config.dict` gives libFuzzer the file's keys and values.
//! Texts whose upstream would be looked up in DNS are skipped: fuzzing stays off the
//! network.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if common::upstream_needs_dns(&text) {
        return;
    }
    match clicktap::config::from_str(&text, Path::new("fuzz.toml")) {
        Ok(cfg) => {
            assert!(cfg.proxy.threads > 0 && cfg.enrich.workers > 0);
        }
        Err(problems) => {
            assert!(!problems.list.is_empty(), "a refusal lists its problems");
            let shown = problems.to_string();
            assert!(
                shown
                    .lines()
                    .filter(|l| !l.starts_with("    "))
                    .all(|l| l.starts_with("fuzz.toml: ")),
                "every problem names the file: {shown}"
            );
        }
    }
});
