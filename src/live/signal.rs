//! SIGHUP, what `systemctl reload` and `kill -HUP` send: a reload, never a stop.
//!
//! The handler is installed before anything else starts, so that a SIGHUP arriving
//! while clicktap starts does not end it with the signal's default action (which kills
//! the process without a drain or a flush). A SIGHUP that comes before the stages are
//! running is logged and has no other effect.

use std::sync::Arc;

use super::Live;

/// Starts a thread that reloads `live` on every SIGHUP.
pub fn watch_hangup(live: Arc<Live>) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    // Registered here, before the thread starts, so that the signal's default action
    // is gone as soon as this returns.
    let mut hangup = rt.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    })?;
    std::thread::Builder::new()
        .name("clicktap-sighup".into())
        .spawn(move || {
            rt.block_on(async move {
                while hangup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the configuration");
                    let _ = live.reload();
                }
            })
        })?;
    Ok(())
}
