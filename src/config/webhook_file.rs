//! `[[webhooks]]`, `[[links]]`, `[[pages]]` and `[qr]` as operators write them, with
//! their defaults.

use serde::Deserialize;

use super::values::{Headers, OneOrMany};

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct WebhookFile {
    pub id: String,
    pub url: String,
    pub format: String,
    pub enabled: bool,
    /// One `whsec_` secret, or several while rotating.
    pub secret: Option<OneOrMany>,
    /// One ed25519 `whsk_` secret key (`v1a` signatures), or several while rotating.
    pub secret_key: Option<OneOrMany>,
    pub headers: Headers,
    pub timeout: String,
    pub disable_after: String,
    /// Requests per second; absent means unlimited.
    pub rate_limit: Option<f64>,
    pub concurrency: usize,
    /// Bitly: send the link's tags.
    pub fetch_tags: bool,
    /// Bitly `webhook_guid`; derived from the id when absent.
    pub guid: Option<String>,
    /// The event types the webhook gets; absent: every redirect (all but page views).
    pub events: Option<Vec<String>>,
    /// `cloudevents`: the events' `source`; absent: the short link's origin.
    pub source: Option<String>,
    pub filter: FilterFile,
    pub auth: AuthFile,
    pub retry: RetryFile,
    pub batch: BatchFile,
}

impl Default for WebhookFile {
    fn default() -> Self {
        WebhookFile {
            id: String::new(),
            url: String::new(),
            format: "native".into(),
            enabled: true,
            secret: None,
            secret_key: None,
            headers: Headers::new(),
            timeout: "5s".into(),
            disable_after: "24h".into(),
            rate_limit: None,
            concurrency: 4,
            fetch_tags: false,
            guid: None,
            events: None,
            source: None,
            filter: FilterFile::default(),
            auth: AuthFile::default(),
            retry: RetryFile::default(),
            batch: BatchFile::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FilterFile {
    pub hosts: Vec<String>,
    pub paths: Vec<String>,
    pub tags: Vec<String>,
    pub kinds: Option<Vec<String>>,
    pub unique: bool,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct AuthFile {
    #[serde(rename = "type")]
    pub kind: String,
    /// `query`: the parameter name and its value.
    pub param: String,
    pub value: Option<String>,
    /// `basic`: credentials; absent ones come from the URL's userinfo.
    pub username: Option<String>,
    pub password: Option<String>,
    /// `bearer`.
    pub token: Option<String>,
    /// `oauth2_client_credentials`.
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
}

impl Default for AuthFile {
    fn default() -> Self {
        AuthFile {
            kind: "none".into(),
            param: "api_key".into(),
            value: None,
            username: None,
            password: None,
            token: None,
            token_url: None,
            client_id: None,
            client_secret: None,
            scope: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RetryFile {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay before each retry; when empty, exponential from `base` up to `max`.
    pub schedule: Vec<String>,
    pub base: String,
    pub max: String,
    /// Each delay is moved by up to this fraction, at random, either way.
    pub jitter: f64,
    /// The longest a back-off answer (429, 502, 503, 504) holds the webhook.
    pub max_backoff: String,
}

impl Default for RetryFile {
    fn default() -> Self {
        RetryFile {
            max_attempts: 5,
            schedule: Vec::new(),
            base: "5s".into(),
            max: "10h".into(),
            jitter: 0.2,
            max_backoff: "1h".into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BatchFile {
    /// Events per request; 0 means the format's own default (rebrandly 100, others 1).
    pub max_events: usize,
    pub max_wait: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LinkFile {
    /// Host the metadata applies to; absent: every host.
    pub host: Option<String>,
    /// Path glob (`/promo*`); absent: every path.
    pub path: Option<String>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub tags: Vec<String>,
    pub workspace_id: Option<String>,
    pub group_guid: Option<String>,
    pub organization_guid: Option<String>,
    pub created_at: Option<String>,
    /// Every redirect of these links is a QR scan (links printed only as codes).
    pub qr: bool,
    /// Query parameters whose presence marks a scan of these links, beside `[qr]`'s.
    pub qr_params: Vec<String>,
}

/// `[qr]`: what marks a redirect as a QR scan, for every link.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct QrFile {
    /// Query parameter names whose presence marks a scan (`qr`, `src`).
    pub params: Vec<String>,
    /// Path globs of links that are only ever scanned (`/q/*`).
    pub paths: Vec<String>,
}

/// `[[pages]]`: a bio page whose 200 answers are page views.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct PageFile {
    /// The page's path: exact (`/alice`), or a prefix ending in `*` (`/@*`).
    pub path: String,
    /// Only on this host; absent: every host.
    pub host: Option<String>,
    /// A redirect whose path is under the page's is a click on the page's links.
    pub under: bool,
    /// A redirect whose `Referer` is the page is a click on the page's links.
    pub referer: bool,
}

impl Default for PageFile {
    fn default() -> Self {
        PageFile {
            path: String::new(),
            host: None,
            under: true,
            referer: true,
        }
    }
}
