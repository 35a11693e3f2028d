//! SIGHUP and SIGUSR2, the signals an operator (or systemd) sends a running clicktap
//! to change it in place:
//! - SIGHUP (`systemctl reload`, `kill -HUP`): the configuration is reloaded; never a
//!   stop. The handler is installed before anything else starts, so that a SIGHUP
//!   arriving while clicktap starts does not end it with the signal's default action
//!   (which kills the process without a drain or a flush).
//! - SIGUSR2 (`systemctl kill -s USR2`, `kill -USR2`): a binary upgrade in place, as
//!   nginx does it: the executable clicktap was started from (a new binary installed
//!   over it) is started with the same arguments and `--upgrade`, and takes the
//!   listening sockets over ([`crate::upgrade`]). It is this process's child, so it
//!   stays in the service's cgroup, and tells systemd it is the main process now.

use std::path::PathBuf;
use std::sync::Arc;

use super::Live;

/// Starts a thread that reloads `live` on every SIGHUP and starts an upgrade on every
/// SIGUSR2. `exe` and `args` are how this process was started.
pub fn watch_signals(live: Arc<Live>, exe: PathBuf, args: Vec<String>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    // Registered here, before the thread starts, so that the signals' default actions
    // are gone as soon as this returns.
    let (mut hangup, mut usr2) = rt.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::hangup())?,
            signal(SignalKind::user_defined2())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("clicktap-signals".into())
        .spawn(move || {
            rt.block_on(async move {
                loop {
                    tokio::select! {
                        Some(()) = hangup.recv() => {
                            tracing::info!("SIGHUP: reloading the configuration");
                            let _ = live.reload();
                        }
                        Some(()) = usr2.recv() => upgrade(&exe, &args),
                        else => break,
                    }
                }
            })
        })?;
    Ok(())
}

/// Starts the new process of an upgrade.
fn upgrade(exe: &PathBuf, args: &[String]) {
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    if !args.contains(&"--upgrade") {
        args.push("--upgrade");
    }
    match std::process::Command::new(exe).args(&args).spawn() {
        Ok(child) => tracing::info!(
            exe = %exe.display(),
            pid = child.id(),
            "SIGUSR2: started the new process of a binary upgrade; it takes the listening sockets over"
        ),
        Err(e) => {
            tracing::error!(exe = %exe.display(), error = %e, "SIGUSR2: cannot start the new process; this one goes on")
        }
    }
}
