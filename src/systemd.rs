//! Telling systemd about the process, when it runs clicktap as a `Type=notify`
//! service: `READY=1` once clicktap serves, and `MAINPID=` from the new process of a
//! binary upgrade, so that systemd follows the service to it rather than taking the old
//! process's exit for the service's. Nothing is sent without `NOTIFY_SOCKET`.

/// Sends `state` (`READY=1`, `MAINPID=...`) to systemd, if it asked for it.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = (|| -> std::io::Result<()> {
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        let socket = UnixDatagram::unbound()?;
        let bytes = path.as_encoded_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => {
                #[cfg(target_os = "linux")]
                {
                    use std::os::linux::net::SocketAddrExt;
                    SocketAddr::from_abstract_name(name)?
                }
                #[cfg(not(target_os = "linux"))]
                {
                    let _ = name;
                    return Ok(());
                }
            }
            None => SocketAddr::from_pathname(std::path::Path::new(&path))?,
        };
        socket.send_to_addr(state.as_bytes(), &addr)?;
        Ok(())
    })();
    if let Err(e) = sent {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}
