//! What sinks and relays share of a NATS connection: the server URLs, the one way of
//! logging in, TLS, and the connect timeout, validated the same way for both
//! (`[[sinks]]` and `[relay]` take the same keys).
//!
//! Credentials are [`Secret`]s (a password, a token, an nkey seed) or a path (a creds
//! file), and at most one way to log in is accepted, so that it is never a guess which
//! one the server saw.

use std::path::PathBuf;
use std::time::Duration;

use super::problems::Problems;
use super::secret::Secret;
use super::sink_file::SinkTlsFile;

/// The servers and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsServers {
    pub urls: Vec<String>,
    pub credentials: Credentials,
    pub tls: SinkTls,
    pub connect_timeout: Duration,
    /// The deadline of each request to JetStream (an acknowledgement, a stream or
    /// consumer request).
    pub request_timeout: Duration,
}

/// How the client logs in (`Debug` prints no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    UserPassword { user: String, password: Secret },
    Token(Secret),
    NkeySeed(Secret),
    CredsFile(PathBuf),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkTls {
    pub required: bool,
    pub ca: Option<PathBuf>,
    pub client: Option<(PathBuf, PathBuf)>,
}

/// The login keys of a table, as written.
pub(super) struct Login<'a> {
    pub user: &'a Option<String>,
    pub password: &'a Option<String>,
    pub token: &'a Option<String>,
    pub nkey_seed: &'a Option<String>,
    pub creds_file: &'a Option<String>,
}

/// `urls` of the table at `key`: present, each one a NATS URL without credentials.
pub(super) fn urls(urls: &[String], key: &str, p: &mut Problems) {
    if urls.is_empty() {
        p.push(
            format!("{key}.urls"),
            "is missing (e.g. [\"nats://127.0.0.1:4222\"])",
        );
    }
    for (n, u) in urls.iter().enumerate() {
        p.check(&format!("{key}.urls[{n}]"), nats_url(u));
    }
}

pub(super) fn nats_url(u: &str) -> Result<(), String> {
    let parsed = url::Url::parse(u).map_err(|e| format!("{u:?} is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "nats" | "tls") {
        return Err(format!("{u:?}: write nats://host:port or tls://host:port"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{u:?} has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // The URL is logged and shown in status; credentials have keys of their own.
        return Err("holds credentials; use user and password (or token) instead".into());
    }
    Ok(())
}

pub(super) fn credentials(f: &Login<'_>, key: &str, p: &mut Problems) -> Credentials {
    let given: Vec<&str> = [
        (f.user.is_some() || f.password.is_some(), "user/password"),
        (f.token.is_some(), "token"),
        (f.nkey_seed.is_some(), "nkey_seed"),
        (f.creds_file.is_some(), "creds_file"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    if given.len() > 1 {
        p.push(
            key.to_string(),
            format!("sets {}: give one way to log in", given.join(" and ")),
        );
        return Credentials::None;
    }
    match (&f.user, &f.password) {
        (Some(user), Some(password)) => {
            return Credentials::UserPassword {
                user: user.clone(),
                password: Secret::new(password.clone()),
            };
        }
        (Some(_), None) => p.push(format!("{key}.password"), "is missing (user is set)"),
        (None, Some(_)) => p.push(format!("{key}.user"), "is missing (password is set)"),
        (None, None) => {}
    }
    if let Some(t) = &f.token {
        if t.is_empty() {
            p.push(format!("{key}.token"), "is empty");
        }
        return Credentials::Token(Secret::new(t.clone()));
    }
    if let Some(s) = &f.nkey_seed {
        // The seed's value is never quoted: it is the key itself.
        if !s.starts_with("SU") || s.len() < 16 {
            p.push(
                format!("{key}.nkey_seed"),
                "is not a user nkey seed (it starts with SU)",
            );
        }
        return Credentials::NkeySeed(Secret::new(s.clone()));
    }
    if let Some(path) = &f.creds_file {
        let path = PathBuf::from(path);
        if let Err(e) = super::validate::regular_file(&path) {
            p.push(format!("{key}.creds_file"), e);
        }
        return Credentials::CredsFile(path);
    }
    Credentials::None
}

pub(super) fn tls(f: &SinkTlsFile, key: &str, p: &mut Problems) -> SinkTls {
    let mut file = |name: &str, v: &Option<String>| {
        let path = PathBuf::from(v.as_ref()?);
        if let Err(e) = super::validate::regular_file(&path) {
            p.push(format!("{key}.tls.{name}"), e);
        }
        Some(path)
    };
    let ca = file("ca", &f.ca);
    let cert = file("cert", &f.cert);
    let key_file = file("key", &f.key);
    let client = match (cert, key_file) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => {
            p.push(format!("{key}.tls.key"), "is missing (tls.cert is set)");
            None
        }
        (None, Some(_)) => {
            p.push(format!("{key}.tls.cert"), "is missing (tls.key is set)");
            None
        }
    };
    SinkTls {
        required: f.required,
        ca,
        client,
    }
}
