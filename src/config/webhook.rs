//! Validated `[[webhooks]]` and `[[links]]`.
//!
//! A webhook's parts with rules of their own live beside this file: its secrets
//! (`secret`), its extra headers (`headers`), its authentication (`auth`) and the rule
//! its URL shares with OAuth token URLs (`url`).

use globset::{Glob, GlobMatcher};
use http::{HeaderName, HeaderValue};
use reqwest::Url;
use std::collections::HashSet;
use std::time::Duration;

use super::DeliveryConfig;
use super::auth::{self, Auth};
use super::bounds::{self, MILLI};
use super::parse;
use super::problems::Problems;
use super::secret::{self, Secret, SigningKey};
use super::secret_key::SecretKey;
use super::webhook_file::{BatchFile, FilterFile, LinkFile, RetryFile, WebhookFile};
use super::{event_types, headers, url};
use crate::click::{ClickKind, EventType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Native,
    Bitly,
    Linkly,
    Tly,
    Rebrandly,
    CloudEvents,
}

impl Format {
    /// Every format, in the order docs/webhooks.md ("Formats") lists them.
    pub const ALL: [Format; 6] = [
        Format::Native,
        Format::Bitly,
        Format::Linkly,
        Format::Tly,
        Format::Rebrandly,
        Format::CloudEvents,
    ];

    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "native" => Format::Native,
            "bitly" => Format::Bitly,
            "linkly" => Format::Linkly,
            "tly" => Format::Tly,
            "rebrandly" => Format::Rebrandly,
            "cloudevents" => Format::CloudEvents,
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
            Format::CloudEvents => "cloudevents",
        }
    }

    /// Whether one request carries several events.
    pub fn batches(self) -> bool {
        matches!(
            self,
            Format::Rebrandly | Format::Native | Format::CloudEvents
        )
    }

    /// Whether the format sends the first secret itself, as written, in a header.
    pub fn sends_secret(self) -> bool {
        matches!(self, Format::Tly | Format::Rebrandly)
    }

    /// The headers the format sets itself (deliver/formats/*.rs), lower case: the
    /// vendor's own, which a webhook's `headers` may not repeat.
    pub fn own_headers(self) -> &'static [&'static str] {
        match self {
            Format::Native | Format::Bitly | Format::Linkly | Format::CloudEvents => &[],
            Format::Tly => &[
                "x-tly-key",
                "x-tly-event",
                "x-tly-delivery",
                "x-tly-timestamp",
            ],
            Format::Rebrandly => &["x-rebrandly-secret", "apikey"],
        }
    }
}

/// Which events a webhook receives. Empty lists match everything.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The webhook's `events`: the event types it gets.
    pub events: HashSet<EventType>,
    pub hosts: Vec<String>,
    pub paths: Vec<GlobMatcher>,
    pub tags: Vec<String>,
    pub kinds: HashSet<ClickKind>,
    /// Only events marked `unique: true` (and those stored unmarked).
    pub unique: bool,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay before retry n (index n-1); the last entry repeats.
    pub schedule: Vec<Duration>,
    pub jitter: f64,
    /// The longest a back-off answer (429, 502, 503, 504) holds the webhook, whatever
    /// its `Retry-After` asks; also the cap on a failure's `Retry-After`.
    pub max_backoff: Duration,
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
    /// ed25519 keys: a `v1a` signature each.
    pub secret_keys: Vec<SecretKey>,
    /// `format = "tly"` and `rebrandly` send the first secret as written in a header.
    pub raw_secret: Option<Secret>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub timeout: Duration,
    pub disable_after: Duration,
    pub rate_limit: Option<f64>,
    pub concurrency: usize,
    pub fetch_tags: bool,
    pub guid: String,
    /// `cloudevents`: the events' `source`; `None`: the short link's origin.
    pub source: Option<String>,
    pub filter: Filter,
    pub auth: Auth,
    pub retry: RetryPolicy,
    pub batch: BatchPolicy,
    /// What a reload compares to tell whether this webhook changed: a hash of its
    /// table and the `[delivery]` table as written (never the text itself, which may
    /// hold secrets).
    pub fingerprint: String,
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
    /// Every redirect of these links is a QR scan.
    pub qr: bool,
    /// Query parameters whose presence marks a scan of these links.
    pub qr_params: Vec<String>,
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
            qr: f.qr,
            qr_params: event_types::params(f.qr_params, &format!("links[{i}].qr_params"), p),
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
        p.check_id(&key, &f.id, &mut seen);
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
    let url = p.check(&format!("{key}.url"), url::outbound(&f.url, delivery));
    let format = Format::parse(&f.format);
    if format.is_none() {
        p.push(
            format!("{key}.format"),
            format!(
                "{:?} is not a format; use native, bitly, linkly, tly, rebrandly or cloudevents",
                f.format
            ),
        );
    }
    let (secrets, raw_secret) = secret::secrets(f.secret, format, key, p);
    let secret_keys = super::secret_key::secret_keys(f.secret_key, key, p);
    let headers = headers::headers(&f.headers, format, key, p);
    let timeout = bounds::duration(p, &format!("{key}.timeout"), &f.timeout, MILLI, None);
    let disable_after = bounds::duration(
        p,
        &format!("{key}.disable_after"),
        &f.disable_after,
        MILLI,
        None,
    );
    if let Some(r) = f.rate_limit
        && !RATE_LIMIT.contains(&r)
    {
        p.push(
            format!("{key}.rate_limit"),
            format!(
                "{r:?} is outside {}-{} requests per second",
                RATE_LIMIT.start(),
                RATE_LIMIT.end()
            ),
        );
    }
    bounds::count(p, &format!("{key}.concurrency"), f.concurrency, 1..=1024);
    let filter = filter(f.filter, f.events, key, p);
    let source = source(f.source, format, key, p);
    let auth = auth::auth(f.auth, url.as_ref(), delivery, key, p);
    let retry = retry(f.retry, key, p);
    let batch = batch(f.batch, format, key, p);
    let guid = f.guid.unwrap_or_else(|| default_guid('W', &f.id));
    Some(WebhookConfig {
        url: url?,
        format: format?,
        enabled: f.enabled,
        raw_secret,
        secrets,
        secret_keys,
        headers,
        timeout: timeout?,
        disable_after: disable_after?,
        rate_limit: f.rate_limit,
        concurrency: f.concurrency,
        fetch_tags: f.fetch_tags,
        guid,
        source,
        filter: filter?,
        auth: auth?,
        retry: retry?,
        batch: batch?,
        fingerprint: String::new(),
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

fn filter(
    f: FilterFile,
    events: Option<Vec<String>>,
    key: &str,
    p: &mut Problems,
) -> Option<Filter> {
    let events = wanted_types(events, key, p);
    let mut ok = events.is_some();
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
        events: events.unwrap_or_default(),
        hosts: f.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
        paths,
        tags: f.tags,
        kinds,
        unique: f.unique,
    })
}

/// A webhook's `events`; absent: what webhooks got before event types existed.
fn wanted_types(
    names: Option<Vec<String>>,
    key: &str,
    p: &mut Problems,
) -> Option<HashSet<EventType>> {
    let Some(names) = names else {
        return Some(EventType::DEFAULT_WANTED.into_iter().collect());
    };
    if names.is_empty() {
        p.push(
            format!("{key}.events"),
            "is empty: the webhook would get no event (set enabled = false to pause it)",
        );
        return None;
    }
    let mut set = HashSet::new();
    let mut ok = true;
    for (i, name) in names.iter().enumerate() {
        match EventType::parse(name) {
            Some(t) => {
                set.insert(t);
            }
            None => {
                ok = false;
                let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                p.push(
                    format!("{key}.events[{i}]"),
                    format!("{name:?} is not an event type; use {}", known.join(", ")),
                );
            }
        }
    }
    ok.then_some(set)
}

/// `source`: a URI-reference, sent only by the cloudevents format.
fn source(
    source: Option<String>,
    format: Option<Format>,
    key: &str,
    p: &mut Problems,
) -> Option<String> {
    let s = source?;
    if format.is_some_and(|f| f != Format::CloudEvents) {
        p.push(
            format!("{key}.source"),
            "only the cloudevents format sends a source",
        );
    } else if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        p.push(
            format!("{key}.source"),
            format!("{s:?} is not a URI reference (no spaces; for example \"https://sho.rt\" or \"urn:clicktap:eu-1\")"),
        );
    }
    Some(s)
}

/// Requests per second a `rate_limit` may ask for. Delivery spaces requests 1/rate
/// apart: far below a thousandth that is no Duration (`rate_limit = 1e-20` panicked the
/// delivery task), and above a million a second the limit limits nothing.
const RATE_LIMIT: std::ops::RangeInclusive<f64> = 0.001..=1_000_000.0;

/// The longest wait before a retry: past a week, `queue.retention` (7 days by default)
/// has removed the event it would send.
const RETRY_DELAY_MAX: Duration = Duration::from_secs(7 * 86_400);

/// The longest `retry.max_backoff`: a day, as long as any `Retry-After` is honoured.
const MAX_BACKOFF: Duration = Duration::from_secs(86_400);

/// The shortest back-off, whatever `Retry-After` or the schedule say: a receiver that
/// answers `429` with `Retry-After: 0` is not sent a request in a tight loop.
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);

fn retry(f: RetryFile, key: &str, p: &mut Problems) -> Option<RetryPolicy> {
    let max_backoff = bounds::duration(
        p,
        &format!("{key}.retry.max_backoff"),
        &f.max_backoff,
        MIN_BACKOFF,
        Some(MAX_BACKOFF),
    );
    // Bounded also because the exponential schedule holds one delay per attempt.
    bounds::count(
        p,
        &format!("{key}.retry.max_attempts"),
        f.max_attempts,
        1..=100,
    );
    if !(0.0..=1.0).contains(&f.jitter) {
        p.push(
            format!("{key}.retry.jitter"),
            format!("{} must be between 0 and 1", f.jitter),
        );
    }
    let delay = |p: &mut Problems, field: String, text: &str, min: Duration| {
        bounds::duration(
            p,
            &format!("{key}.retry.{field}"),
            text,
            min,
            Some(RETRY_DELAY_MAX),
        )
    };
    let schedule = if f.schedule.is_empty() {
        // A zero base would make every retry of the schedule immediate; an immediate
        // first retry is written as schedule = ["0s", ...].
        let base = delay(p, "base".into(), &f.base, MILLI);
        let max = delay(p, "max".into(), &f.max, MILLI);
        let (base, max) = (base?, max?);
        if max < base {
            p.push(
                format!("{key}.retry.max"),
                format!("{:?} is below retry.base ({:?})", f.max, f.base),
            );
            return None;
        }
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
            out.push(delay(p, format!("schedule[{i}]"), s, Duration::ZERO));
        }
        out.into_iter().collect::<Option<Vec<_>>>()?
    };
    Some(RetryPolicy {
        max_attempts: f.max_attempts.max(1),
        schedule,
        jitter: f.jitter,
        max_backoff: max_backoff?,
    })
}

fn batch(f: BatchFile, format: Option<Format>, key: &str, p: &mut Problems) -> Option<BatchPolicy> {
    let batches = format.is_some_and(Format::batches);
    bounds::count(
        p,
        &format!("{key}.batch.max_events"),
        f.max_events,
        0..=10_000,
    );
    if f.max_events > 1 && !batches {
        p.push(
            format!("{key}.batch.max_events"),
            "only the native, rebrandly and cloudevents formats carry several events per request",
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

pub(super) fn glob(g: &str) -> Result<GlobMatcher, String> {
    Glob::new(g)
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("{g:?} is not a glob ({e})"))
}
