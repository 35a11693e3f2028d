//! `[[alerts]]`: where a person is told that a webhook turned alerting, was disabled or
//! recovered, and that clicks are being dropped, by email (SMTP) or by a chat webhook
//! (a Slack-compatible incoming webhook), each within its own rate limit.
//!
//! The file's shape is [`AlertFile`]; the rest of clicktap reads [`AlertConfig`].

use lettre::message::Mailbox;
use reqwest::Url;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use super::DeliveryConfig;
use super::bounds::{self, MILLI};
use super::problems::Problems;
use super::secret::Secret;

/// `[[alerts]]` as operators write it.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct AlertFile {
    pub id: String,
    /// `email` or `chat`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What it is told: `alerting`, `disabled`, `recovered`, `dropping` (default: all).
    pub events: Option<Vec<String>>,
    /// The webhooks it is told about (default: all).
    pub webhooks: Vec<String>,
    /// At most this many messages per `per`; what is over is counted and summed up in
    /// the next message sent.
    pub max_messages: u32,
    pub per: String,
    /// The deadline of one message (connect, TLS, SMTP dialogue or HTTP request).
    pub timeout: String,
    // email
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    /// `starttls`, `tls` (implicit, port 465) or `none` (closed networks, no auth).
    pub tls: String,
    /// PEM certificates trusted for the SMTP server besides the system's.
    pub ca: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: Option<String>,
    pub to: Vec<String>,
    // chat
    pub url: Option<String>,
}

impl Default for AlertFile {
    fn default() -> Self {
        AlertFile {
            id: String::new(),
            kind: String::new(),
            events: None,
            webhooks: Vec::new(),
            max_messages: 10,
            per: "1h".into(),
            timeout: "10s".into(),
            smtp_host: None,
            smtp_port: None,
            tls: "starttls".into(),
            ca: None,
            username: None,
            password: None,
            from: None,
            to: Vec::new(),
            url: None,
        }
    }
}

/// What an alert tells about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertEvent {
    /// A webhook's first failure since its last success.
    Alerting,
    /// A webhook disabled (a 410, or failing for `disable_after`).
    Disabled,
    /// A webhook healthy again (delivered again, or reactivated).
    Recovered,
    /// Clicks dropped (capture channel full, queue full, disk floor, spool full), and
    /// when that stops.
    Dropping,
}

impl AlertEvent {
    pub const ALL: [AlertEvent; 4] = [
        AlertEvent::Alerting,
        AlertEvent::Disabled,
        AlertEvent::Recovered,
        AlertEvent::Dropping,
    ];

    fn parse(s: &str) -> Option<AlertEvent> {
        Some(match s {
            "alerting" => AlertEvent::Alerting,
            "disabled" => AlertEvent::Disabled,
            "recovered" => AlertEvent::Recovered,
            "dropping" => AlertEvent::Dropping,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587); refused if the server does
    /// not offer it.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: loopback or closed networks only, and never with credentials.
    None,
}

#[derive(Debug, Clone)]
pub struct Email {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub ca: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
}

#[derive(Debug, Clone)]
pub enum Channel {
    Email(Email),
    /// A Slack-compatible incoming webhook: `POST {"text": ...}`.
    Chat(ChatUrl),
}

/// A chat's incoming webhook URL. Its path is its secret (Slack's
/// `/services/T.../B.../...`), so it prints as its host only.
#[derive(Clone)]
pub struct ChatUrl(pub Url);

impl std::fmt::Debug for ChatUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChatUrl({}/***)", self.0.host_str().unwrap_or(""))
    }
}

#[derive(Debug, Clone)]
pub struct AlertConfig {
    pub id: String,
    pub channel: Channel,
    pub events: HashSet<AlertEvent>,
    /// Empty: every webhook.
    pub webhooks: Vec<String>,
    pub max_messages: u32,
    pub per: Duration,
    pub timeout: Duration,
}

impl AlertConfig {
    /// Whether this alert is told about `event` (of webhook `webhook`, if any).
    pub fn wants(&self, event: AlertEvent, webhook: Option<&str>) -> bool {
        self.events.contains(&event)
            && webhook
                .is_none_or(|w| self.webhooks.is_empty() || self.webhooks.iter().any(|x| x == w))
    }
}

/// The longest `timeout` of one message: a stop waits for none of them, but a message
/// stuck for longer than this tells nobody anything.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) fn alerts(
    files: Vec<AlertFile>,
    delivery: &DeliveryConfig,
    webhook_ids: &[String],
    p: &mut Problems,
) -> Vec<AlertConfig> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, f) in files.into_iter().enumerate() {
        let key = format!("alerts[{i}]");
        p.check_id(&key, &f.id, &mut seen);
        if let Some(a) = alert(f, &key, delivery, webhook_ids, p) {
            out.push(a);
        }
    }
    out
}

fn alert(
    f: AlertFile,
    key: &str,
    delivery: &DeliveryConfig,
    webhook_ids: &[String],
    p: &mut Problems,
) -> Option<AlertConfig> {
    let events = match &f.events {
        None => Some(AlertEvent::ALL.into_iter().collect()),
        Some(list) => {
            let mut set = HashSet::new();
            let mut ok = true;
            for (n, e) in list.iter().enumerate() {
                match AlertEvent::parse(e) {
                    Some(ev) => {
                        set.insert(ev);
                    }
                    None => {
                        ok = false;
                        p.push(
                            format!("{key}.events[{n}]"),
                            format!("{e:?} is not an event; use alerting, disabled, recovered or dropping"),
                        );
                    }
                }
            }
            ok.then_some(set)
        }
    };
    for (n, w) in f.webhooks.iter().enumerate() {
        if !webhook_ids.contains(w) {
            p.push(
                format!("{key}.webhooks[{n}]"),
                format!("{w:?} is not the id of a [[webhooks]] entry"),
            );
        }
    }
    bounds::count(p, &format!("{key}.max_messages"), f.max_messages, 1..=1000);
    let per = bounds::duration(
        p,
        &format!("{key}.per"),
        &f.per,
        Duration::from_secs(1),
        Some(Duration::from_secs(7 * 86_400)),
    );
    let timeout = bounds::duration(
        p,
        &format!("{key}.timeout"),
        &f.timeout,
        MILLI,
        Some(MAX_TIMEOUT),
    );
    let channel = match f.kind.as_str() {
        "email" => email(&f, key, p).map(Channel::Email),
        "chat" => match f.url.as_deref() {
            None => {
                p.push(
                    format!("{key}.url"),
                    "is missing (the chat's incoming webhook URL)",
                );
                None
            }
            Some(u) => p
                .check(&format!("{key}.url"), super::url::outbound(u, delivery))
                .map(|u| Channel::Chat(ChatUrl(u))),
        },
        other => {
            p.push(
                format!("{key}.type"),
                format!("{other:?} is not an alert type; use email or chat"),
            );
            None
        }
    };
    Some(AlertConfig {
        id: f.id,
        channel: channel?,
        events: events?,
        webhooks: f.webhooks,
        max_messages: f.max_messages,
        per: per?,
        timeout: timeout?,
    })
}

fn email(f: &AlertFile, key: &str, p: &mut Problems) -> Option<Email> {
    let tls = match f.tls.as_str() {
        "starttls" => Some(SmtpTls::StartTls),
        "tls" => Some(SmtpTls::Tls),
        "none" => Some(SmtpTls::None),
        other => {
            p.push(
                format!("{key}.tls"),
                format!("{other:?} is not a TLS mode; use starttls, tls or none"),
            );
            None
        }
    };
    if tls == Some(SmtpTls::None) && (f.username.is_some() || f.password.is_some()) {
        p.push(
            format!("{key}.tls"),
            "is none, which would send the username and password in clear text; use starttls or tls",
        );
    }
    if f.username.is_some() != f.password.is_some() {
        p.push(
            format!("{key}.username"),
            "and password go together: give both, or neither",
        );
    }
    let host = match f.smtp_host.as_deref() {
        None | Some("") => {
            p.push(format!("{key}.smtp_host"), "is missing");
            None
        }
        Some(h) => Some(h.to_string()),
    };
    let port = f.smtp_port.unwrap_or(match tls {
        Some(SmtpTls::Tls) => 465,
        Some(SmtpTls::None) => 25,
        _ => 587,
    });
    let ca = f.ca.as_ref().map(PathBuf::from);
    if let Some(path) = &ca
        && let Err(e) = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|pem| {
                lettre::transport::smtp::client::Certificate::from_pem(pem.as_bytes())
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
    {
        p.push(
            format!("{key}.ca"),
            format!("{} is not a PEM certificate file: {e}", path.display()),
        );
    }
    let mailbox = |field: &str, text: &str, p: &mut Problems| -> Option<Mailbox> {
        p.check(
            field,
            text.parse::<Mailbox>()
                .map_err(|e| format!("{text:?} is not a mail address ({e})")),
        )
    };
    let from = match f.from.as_deref() {
        None => {
            p.push(format!("{key}.from"), "is missing");
            None
        }
        Some(t) => mailbox(&format!("{key}.from"), t, p),
    };
    if f.to.is_empty() {
        p.push(format!("{key}.to"), "is missing: give one address or more");
    }
    let mut to = Vec::new();
    for (n, t) in f.to.iter().enumerate() {
        if let Some(m) = mailbox(&format!("{key}.to[{n}]"), t, p) {
            to.push(m);
        }
    }
    if to.len() != f.to.len() {
        return None;
    }
    Some(Email {
        host: host?,
        port,
        tls: tls?,
        ca,
        username: f.username.clone(),
        password: f.password.clone().map(Secret::new),
        from: from?,
        to,
    })
}
