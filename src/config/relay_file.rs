//! `[relay]` as operators write it, with its defaults: where `clicktap relay` finds the
//! stream the sidecars publish into, and how it consumes it.

use serde::Deserialize;

use super::sink_file::SinkTlsFile;

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RelayFile {
    pub urls: Vec<String>,
    /// The stream the sidecars' `[[sinks]]` publish into.
    pub stream: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub nkey_seed: Option<String>,
    pub creds_file: Option<String>,
    pub tls: SinkTlsFile,
    pub connect_timeout: String,
    pub request_timeout: String,
    pub ack_wait: String,
    /// Default: the stream's name with `_DEAD`.
    pub dead_letter_stream: Option<String>,
    pub dead_letter_replicas: usize,
    /// Where a webhook's consumer starts when it is created: "all" or "new".
    pub deliver: String,
    pub max_backoff: String,
    pub stop_timeout: String,
}

impl Default for RelayFile {
    fn default() -> Self {
        RelayFile {
            urls: Vec::new(),
            stream: String::new(),
            user: None,
            password: None,
            token: None,
            nkey_seed: None,
            creds_file: None,
            tls: SinkTlsFile::default(),
            connect_timeout: "5s".into(),
            request_timeout: "5s".into(),
            ack_wait: "30s".into(),
            dead_letter_stream: None,
            dead_letter_replicas: 1,
            deliver: "all".into(),
            max_backoff: "10s".into(),
            stop_timeout: "5s".into(),
        }
    }
}
