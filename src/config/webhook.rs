//! Validated `[[webhooks]]` and `[[links]]`.
//!
//! Secrets are wrapped in [`Secret`], whose `Debug` and `Display` print a mask, so a
//! configuration can be logged whole without leaking one.

use base64::Engine;
use globset::{Glob, GlobMatcher};
use http::{HeaderName, HeaderValue};
use reqwest::Url;
use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use super::DeliveryConfig;
use super::parse;
use super::problems::Problems;
use super::values::OneOrMany;
use super::webhook_file::{AuthFile, BatchFile, FilterFile, LinkFile, RetryFile, WebhookFile};
use crate::click::ClickKind;

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A Standard Webhooks signing key: the bytes after `whsec_`, base64-decoded.
#[derive(Clone)]
pub struct SigningKey(pub Vec<u8>);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Native,
    Bitly,
    Linkly,
    Tly,
    Rebrandly,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "native" => Format::Native,
            "bitly" => Format::Bitly,
            "linkly" => Format::Linkly,
            "tly" => Format::Tly,
            "rebrandly" => Format::Rebrandly,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::Bitly => "bitly",
            Format::Linkly => "linkly",
            Format::Tly => "tly",
            Format::Rebrandly => "rebrandly",
        }
    }

    /// Whether one request carries several events.
    pub fn batches(self) -> bool {
        matches!(self, Format::Rebrandly | Format::Native)
    }
}

#[derive(Debug, Clone)]
pub enum Auth {
    None,
    /// An API key appended to the URL's query.
    Query {
        param: String,
        value: Secret,
    },
    Basic {
        username: String,
        password: Secret,
    },
    Bearer {
        token: Secret,
    },
    OAuth2 {
        token_url: Url,
        client_id: String,
        client_secret: Secret,
        scope: Option<String>,
    },
}

/// Which events a webhook receives. Empty lists match everything.
#[derive(Debug, Clone)]
pub struct Filter {
    pub hosts: Vec<String>,
    pub paths: Vec<GlobMatcher>,
    pub tags: Vec<String>,
    pub kinds: HashSet<ClickKind>,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay before retry n (index n-1); the last entry repeats.
    pub schedule: Vec<Duration>,
    pub jitter: f64,
}

#[derive(Debug, Clone)]
pub struct BatchPolicy {
    pub max_events: usize,
    pub max_wait: Duration,
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub id: String,
    pub url: Url,
    pub format: Format,
    pub enabled: bool,
    pub secrets: Vec<SigningKey>,
    /// `format = "tly"` and `rebrandly` send the first secret as written in a header.
    pub raw_secret: Option<Secret>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub timeout: Duration,
    pub disable_after: Duration,
    pub rate_limit: Option<f64>,
    pub concurrency: usize,
    pub fetch_tags: bool,
    pub guid: String,
    pub filter: Filter,
    pub auth: Auth,
    pub retry: RetryPolicy,
    pub batch: BatchPolicy,
}

/// Metadata for the links matching `host` and `path`, used to fill vendor fields.
#[derive(Debug, Clone, Default)]
pub struct LinkMeta {
    pub host: Option<String>,
    pub path: Option<GlobMatcher>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub tags: Vec<String>,
    pub workspace_id: Option<String>,
    pub group_guid: Option<String>,
    pub organization_guid: Option<String>,
    pub created_at: Option<String>,
}

impl LinkMeta {
    pub fn matches(&self, host: &str, path: &str) -> bool {
        self.host
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case(host))
            && self.path.as_ref().is_none_or(|g| g.is_match(path))
    }
}

pub(super) fn links(files: Vec<LinkFile>, p: &mut Problems) -> Vec<LinkMeta> {
    let mut out = Vec::new();
    for (i, f) in files.into_iter().enumerate() {
        let path = f
            .path
            .as_deref()
            .and_then(|g| p.check(&format!("links[{i}].path"), glob(g)));
        out.push(LinkMeta {
            host: f.host,
            path,
            id: f.id,
            name: f.name,
            tags: f.tags,
            workspace_id: f.workspace_id,
            group_guid: f.group_guid,
            organization_guid: f.organization_guid,
            created_at: f.created_at,
        });
    }
    out
}

pub(super) fn webhooks(
    files: Vec<WebhookFile>,
    delivery: &DeliveryConfig,
    p: &mut Problems,
) -> Vec<WebhookConfig> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, f) in files.into_iter().enumerate() {
        let key = format!("webhooks[{i}]");
        if f.id.is_empty() {
            p.push(format!("{key}.id"), "is missing");
        } else if !f
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            p.push(
                format!("{key}.id"),
                format!("{:?} may hold only letters, digits, - and _", f.id),
            );
        } else if !seen.insert(f.id.clone()) {
            p.push(format!("{key}.id"), format!("{:?} is used twice", f.id));
        }
        if let Some(w) = webhook(f, &key, delivery, p) {
            out.push(w);
        }
    }
    out
}

fn webhook(
    f: WebhookFile,
    key: &str,
    delivery: &DeliveryConfig,
    p: &mut Problems,
) -> Option<WebhookConfig> {
    let url = p.check(&format!("{key}.url"), target_url(&f.url, delivery));
    let format = Format::parse(&f.format);
    if format.is_none() {
        p.push(
            format!("{key}.format"),
            format!(
                "{:?} is not a format; use native, bitly, linkly, tly or rebrandly",
                f.format
            ),
        );
    }
    let raw_secrets = f.secret.map(OneOrMany::into_vec).unwrap_or_default();
    if matches!(format, Some(Format::Tly | Format::Rebrandly))
        && let Some(first) = raw_secrets.first()
        && HeaderValue::try_from(first.as_str()).is_err()
    {
        p.push(
            format!("{key}.secret"),
            "is sent as a header by this format and must be visible ASCII",
        );
    }
    let mut secrets = Vec::new();
    for (n, s) in raw_secrets.iter().enumerate() {
        let k = if raw_secrets.len() == 1 {
            format!("{key}.secret")
        } else {
            format!("{key}.secret[{n}]")
        };
        if let Some(b) = p.check(&k, signing_key(s, format)) {
            secrets.push(b);
        }
    }
    let mut headers = Vec::new();
    for (name, value) in &f.headers {
        let k = format!("{key}.headers.{name}");
        match (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            (Ok(n), Ok(v)) => headers.push((n, v)),
            (Err(_), _) => p.push(k, "is not a valid header name"),
            (_, Err(_)) => p.push(k, "has a value that is not a valid header value"),
        }
    }
    let timeout = p.check(&format!("{key}.timeout"), parse::duration(&f.timeout));
    let disable_after = p.check(
        &format!("{key}.disable_after"),
        parse::duration(&f.disable_after),
    );
    if let Some(r) = f.rate_limit
        && !(r > 0.0 && r.is_finite())
    {
        p.push(format!("{key}.rate_limit"), format!("{r} must be above 0"));
    }
    if f.concurrency == 0 {
        p.push(format!("{key}.concurrency"), "must be at least 1");
    }
    let filter = filter(f.filter, key, p);
    let auth = auth(f.auth, url.as_ref(), key, p);
    let retry = retry(f.retry, key, p);
    let batch = batch(f.batch, format, key, p);
    let guid = f.guid.unwrap_or_else(|| default_guid('W', &f.id));
    Some(WebhookConfig {
        url: url?,
        format: format?,
        enabled: f.enabled,
        raw_secret: raw_secrets.first().cloned().map(Secret::new),
        secrets,
        headers,
        timeout: timeout?,
        disable_after: disable_after?,
        rate_limit: f.rate_limit,
        concurrency: f.concurrency.max(1),
        fetch_tags: f.fetch_tags,
        guid,
        filter: filter?,
        auth: auth?,
        retry: retry?,
        batch: batch?,
        id: f.id,
    })
}

/// A Bitly-style guid (a letter and ten digits) derived from a name, stable across
/// restarts so that receivers can key on it.
pub fn default_guid(letter: char, name: &str) -> String {
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{letter}{:010}", h % 10_000_000_000)
}

fn target_url(s: &str, delivery: &DeliveryConfig) -> Result<Url, String> {
    if s.is_empty() {
        return Err("is missing".into());
    }
    let url = Url::parse(s).map_err(|e| format!("is not a URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if delivery.allow_http => {}
        "http" => {
            return Err("is http; webhooks need https unless delivery.allow_http = true".into());
        }
        other => return Err(format!("has scheme {other:?}; use https")),
    }
    if url.host().is_none() {
        return Err("has no host".into());
    }
    Ok(url)
}

fn signing_key(s: &str, format: Option<Format>) -> Result<SigningKey, String> {
    // tly and rebrandly send the secret itself in a header; any text will do there,
    // and it signs as its own bytes when it is not a whsec_ key.
    match s.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map(SigningKey)
            .map_err(|_| "is not whsec_ followed by base64".to_string()),
        None if matches!(format, Some(Format::Tly | Format::Rebrandly)) && !s.is_empty() => {
            Ok(SigningKey(s.as_bytes().to_vec()))
        }
        None => Err("must start with whsec_ (a Standard Webhooks secret: whsec_ + base64)".into()),
    }
}

fn filter(f: FilterFile, key: &str, p: &mut Problems) -> Option<Filter> {
    let mut ok = true;
    let mut paths = Vec::new();
    for (i, g) in f.paths.iter().enumerate() {
        match p.check(&format!("{key}.filter.paths[{i}]"), glob(g)) {
            Some(m) => paths.push(m),
            None => ok = false,
        }
    }
    let kinds = match f.kinds {
        None => ClickKind::ALL.into_iter().collect(),
        Some(list) => {
            let mut set = HashSet::new();
            for (i, k) in list.iter().enumerate() {
                match ClickKind::parse(k) {
                    Some(kind) => {
                        set.insert(kind);
                    }
                    None => {
                        ok = false;
                        p.push(
                            format!("{key}.filter.kinds[{i}]"),
                            format!("{k:?} is not a kind; use human, bot, preview, head, prefetch"),
                        );
                    }
                }
            }
            set
        }
    };
    ok.then(|| Filter {
        hosts: f.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
        paths,
        tags: f.tags,
        kinds,
    })
}

fn auth(f: AuthFile, url: Option<&Url>, key: &str, p: &mut Problems) -> Option<Auth> {
    let k = |field: &str| format!("{key}.auth.{field}");
    let need = |field: &str, v: Option<String>, p: &mut Problems| -> Option<String> {
        if v.as_deref().is_none_or(str::is_empty) {
            p.push(k(field), format!("is required for auth type {:?}", f.kind));
            None
        } else {
            v
        }
    };
    match f.kind.as_str() {
        "none" => Some(Auth::None),
        "query" => {
            let value = need("value", f.value, p)?;
            Some(Auth::Query {
                param: f.param,
                value: Secret::new(value),
            })
        }
        "basic" => {
            let user = f.username.or_else(|| {
                url.map(|u| u.username().to_string())
                    .filter(|u| !u.is_empty())
            });
            let pass = f
                .password
                .or_else(|| url.and_then(|u| u.password().map(str::to_string)));
            let username = need("username", user, p)?;
            Some(Auth::Basic {
                username,
                password: Secret::new(pass.unwrap_or_default()),
            })
        }
        "bearer" => Some(Auth::Bearer {
            token: Secret::new(need("token", f.token, p)?),
        }),
        "oauth2_client_credentials" => {
            let token_url = need("token_url", f.token_url, p);
            let client_id = need("client_id", f.client_id, p);
            let secret = need("client_secret", f.client_secret, p);
            let token_url = token_url
                .and_then(|u| p.check(&k("token_url"), Url::parse(&u).map_err(|e| e.to_string())));
            Some(Auth::OAuth2 {
                token_url: token_url?,
                client_id: client_id?,
                client_secret: Secret::new(secret?),
                scope: f.scope,
            })
        }
        other => {
            p.push(
                k("type"),
                format!(
                    "{other:?} is not an auth type; use none, query, basic, bearer or \
                     oauth2_client_credentials"
                ),
            );
            None
        }
    }
}

fn retry(f: RetryFile, key: &str, p: &mut Problems) -> Option<RetryPolicy> {
    if f.max_attempts == 0 {
        p.push(format!("{key}.retry.max_attempts"), "must be at least 1");
    }
    if !(0.0..=1.0).contains(&f.jitter) {
        p.push(
            format!("{key}.retry.jitter"),
            format!("{} must be between 0 and 1", f.jitter),
        );
    }
    let schedule = if f.schedule.is_empty() {
        let base = p.check(&format!("{key}.retry.base"), parse::duration(&f.base))?;
        let max = p.check(&format!("{key}.retry.max"), parse::duration(&f.max))?;
        // Exponential: base, base*6, base*36, ... capped at max; a factor of six
        // spreads five attempts over about two hours from a 5 s base, as the
        // platforms operators know do.
        let mut d = base;
        (1..f.max_attempts.max(1))
            .map(|_| {
                let cur = d.min(max);
                d = d.saturating_mul(6);
                cur
            })
            .collect()
    } else {
        let mut out = Vec::new();
        for (i, s) in f.schedule.iter().enumerate() {
            out.push(p.check(&format!("{key}.retry.schedule[{i}]"), parse::duration(s))?);
        }
        out
    };
    Some(RetryPolicy {
        max_attempts: f.max_attempts.max(1),
        schedule,
        jitter: f.jitter,
    })
}

fn batch(f: BatchFile, format: Option<Format>, key: &str, p: &mut Problems) -> Option<BatchPolicy> {
    let batches = format.is_some_and(Format::batches);
    if f.max_events > 1 && !batches {
        p.push(
            format!("{key}.batch.max_events"),
            "only the native and rebrandly formats carry several events per request",
        );
    }
    let default_events = if format == Some(Format::Rebrandly) {
        100
    } else {
        1
    };
    let default_wait = if format == Some(Format::Rebrandly) {
        "5s"
    } else {
        "1s"
    };
    let wait = f.max_wait.as_deref().unwrap_or(default_wait);
    let max_wait = p.check(&format!("{key}.batch.max_wait"), parse::duration(wait))?;
    Some(BatchPolicy {
        max_events: if f.max_events == 0 {
            default_events
        } else {
            f.max_events
        },
        max_wait,
    })
}

fn glob(g: &str) -> Result<GlobMatcher, String> {
    Glob::new(g)
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("{g:?} is not a glob ({e})"))
}
