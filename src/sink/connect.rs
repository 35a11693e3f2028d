//! From a sink's or a relay's config to a connected NATS client: the servers, the one
//! way of logging in, TLS, and a deadline on the connect itself.
//!
//! The client's own reconnecting is limited to trying each server once, at once: when
//! the connection fails, the sink (or relay) drops the client and connects again
//! itself, with its back-off, so that there is one place that decides when NATS is
//! tried again and the health says what happens.

use async_nats::{Client, ConnectOptions, ServerAddr};

use super::SinkError;
use crate::config::{Credentials, NatsServers};

/// Connects to `cfg`'s servers as `name` (what the server's monitoring shows).
pub async fn connect(cfg: &NatsServers, name: String) -> Result<Client, SinkError> {
    let mut servers = Vec::new();
    for u in &cfg.urls {
        let addr: ServerAddr = u
            .parse()
            .map_err(|e| SinkError::Connect(format!("{u}: {e}")))?;
        servers.push(addr);
    }
    let mut options = ConnectOptions::new()
        .name(name)
        .connection_timeout(cfg.connect_timeout)
        .request_timeout(Some(cfg.request_timeout))
        // Each server once per connect, with no delay of the client's own (0 would mean
        // "for ever"): after a connection is lost, the client's next attempt is past
        // this and the client closes.
        .max_reconnects(Some(servers.len()))
        .reconnect_delay_callback(|_| std::time::Duration::ZERO)
        .require_tls(cfg.tls.required);
    if let Some(ca) = &cfg.tls.ca {
        options = options.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &cfg.tls.client {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    options = match &cfg.credentials {
        Credentials::None => options,
        Credentials::UserPassword { user, password } => {
            options.user_and_password(user.clone(), password.expose().to_string())
        }
        Credentials::Token(t) => options.token(t.expose().to_string()),
        Credentials::NkeySeed(s) => options.nkey(s.expose().to_string()),
        Credentials::CredsFile(path) => options.credentials_file(path).await.map_err(|e| {
            // io errors name the path, never the file's content.
            SinkError::Connect(format!("cannot read creds_file {}: {e}", path.display()))
        })?,
    };
    // Bounded twice: the connect timeout per server, and the whole list once more.
    let bound = cfg.connect_timeout * (servers.len() as u32 + 1);
    match tokio::time::timeout(bound, options.connect(servers)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(SinkError::Connect(e.to_string())),
        Err(_) => Err(SinkError::Connect(format!(
            "no server answered within {bound:?}"
        ))),
    }
}
