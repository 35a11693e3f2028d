//! `[[sinks]]` as operators write them, with their defaults: where every event is
//! published besides (or instead of) the webhooks. Only `type = "nats"` exists.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct SinkFile {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub enabled: bool,
    pub urls: Vec<String>,
    /// A template over the event: `clicks.{link.host}`.
    pub subject: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// An nkey seed (`SU...`), as written.
    pub nkey_seed: Option<String>,
    /// A `.creds` file (JWT and nkey seed), as `nsc` writes it.
    pub creds_file: Option<String>,
    pub tls: SinkTlsFile,
    pub connect_timeout: String,
    pub publish_timeout: String,
    pub max_in_flight: usize,
    pub max_in_flight_bytes: String,
    pub max_backoff: String,
    pub stop_timeout: String,
    pub stream: Option<StreamFile>,
}

impl Default for SinkFile {
    fn default() -> Self {
        SinkFile {
            id: String::new(),
            kind: String::new(),
            enabled: true,
            urls: Vec::new(),
            subject: String::new(),
            user: None,
            password: None,
            token: None,
            nkey_seed: None,
            creds_file: None,
            tls: SinkTlsFile::default(),
            connect_timeout: "5s".into(),
            publish_timeout: "5s".into(),
            max_in_flight: 1024,
            max_in_flight_bytes: "16MiB".into(),
            max_backoff: "10s".into(),
            stop_timeout: "5s".into(),
            stream: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SinkTlsFile {
    /// Refuse a server that does not offer TLS (`tls://` URLs require it too).
    pub required: bool,
    /// PEM file of the CA certificates the server's certificate is checked against.
    pub ca: Option<String>,
    /// PEM client certificate and key, for servers that verify clients.
    pub cert: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct StreamFile {
    pub name: String,
    pub subjects: Vec<String>,
    pub replicas: usize,
    pub retention: String,
    pub max_age: String,
    pub duplicate_window: String,
}

impl Default for StreamFile {
    fn default() -> Self {
        StreamFile {
            name: String::new(),
            subjects: Vec::new(),
            replicas: 1,
            retention: "limits".into(),
            max_age: "0s".into(),
            duplicate_window: "2m".into(),
        }
    }
}
