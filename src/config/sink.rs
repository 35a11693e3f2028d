//! `[[sinks]]` validated: where each event is published, how to log in, and the
//! JetStream stream the sink expects to find (or create).
//!
//! The servers, credentials and TLS are read as a relay's are (`super::nats`). The
//! stream's settings are compared with the server's when the sink connects
//! (`crate::sink::stream`); here they are only parsed.

use std::collections::HashSet;
use std::time::Duration;

use super::nats::{self, Login, NatsServers};
use super::parse;
use super::problems::Problems;
use super::sink_file::{SinkFile, StreamFile};
use super::subject::{SubjectTemplate, matches};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    pub id: String,
    pub enabled: bool,
    pub subject: SubjectTemplate,
    /// The servers; `request_timeout` is `publish_timeout`.
    pub nats: NatsServers,
    /// The deadline of each acknowledgement and each stream request.
    pub publish_timeout: Duration,
    pub max_in_flight: usize,
    pub max_in_flight_bytes: u64,
    pub max_backoff: Duration,
    pub stop_timeout: Duration,
    pub stream: StreamConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    Limits,
    Interest,
    WorkQueue,
}

impl Retention {
    pub fn name(self) -> &'static str {
        match self {
            Retention::Limits => "limits",
            Retention::Interest => "interest",
            Retention::WorkQueue => "workqueue",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    pub name: String,
    pub subjects: Vec<String>,
    pub replicas: usize,
    pub retention: Retention,
    /// Zero: no limit.
    pub max_age: Duration,
    pub duplicate_window: Duration,
}

pub(super) fn sinks(files: Vec<SinkFile>, p: &mut Problems) -> Vec<SinkConfig> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, f) in files.into_iter().enumerate() {
        let key = format!("sinks[{i}]");
        p.check_id(&key, &f.id, &mut seen);
        if let Some(s) = sink(f, &key, p) {
            out.push(s);
        }
    }
    out
}

fn sink(f: SinkFile, key: &str, p: &mut Problems) -> Option<SinkConfig> {
    let before = p.list.len();
    if f.kind != "nats" {
        p.push(
            format!("{key}.type"),
            format!(
                "{:?} is not a sink type; the one there is: \"nats\"",
                f.kind
            ),
        );
    }
    nats::urls(&f.urls, key, p);
    let subject = p.check(
        &format!("{key}.subject"),
        SubjectTemplate::parse(&f.subject),
    );
    let credentials = nats::credentials(
        &Login {
            user: &f.user,
            password: &f.password,
            token: &f.token,
            nkey_seed: &f.nkey_seed,
            creds_file: &f.creds_file,
        },
        key,
        p,
    );
    let tls = nats::tls(&f.tls, key, p);
    let mut duration = |name: &str, v: &str, nonzero: bool| {
        let k = format!("{key}.{name}");
        let d = p.check(&k, parse::duration(v))?;
        if nonzero && d.is_zero() {
            p.push(k, format!("{v:?} must be more than zero"));
            return None;
        }
        Some(d)
    };
    let connect_timeout = duration("connect_timeout", &f.connect_timeout, true);
    let publish_timeout = duration("publish_timeout", &f.publish_timeout, true);
    let max_backoff = duration("max_backoff", &f.max_backoff, true);
    let stop_timeout = duration("stop_timeout", &f.stop_timeout, false);
    if f.max_in_flight == 0 {
        p.push(format!("{key}.max_in_flight"), "must be at least 1");
    }
    let max_in_flight_bytes = p.check(
        &format!("{key}.max_in_flight_bytes"),
        parse::size(&f.max_in_flight_bytes),
    );
    if max_in_flight_bytes.is_some_and(|b| b < 64 << 10) {
        p.push(
            format!("{key}.max_in_flight_bytes"),
            format!(
                "{:?} is below 64KiB, less than one large event",
                f.max_in_flight_bytes
            ),
        );
    }
    let stream = match f.stream {
        Some(s) => stream(s, &format!("{key}.stream"), p),
        None => {
            p.push(
                format!("{key}.stream"),
                "is missing: [sinks.stream] with name and subjects",
            );
            None
        }
    };
    if let (Some(subject), Some(stream)) = (&subject, &stream) {
        let example = subject.example();
        if !stream.subjects.iter().any(|s| matches(s, &example)) {
            p.push(
                format!("{key}.subject"),
                format!(
                    "{:?} is not among the stream's subjects {:?}: its events would not be stored",
                    f.subject, stream.subjects
                ),
            );
        }
    }
    if p.list.len() > before {
        return None;
    }
    Some(SinkConfig {
        id: f.id,
        enabled: f.enabled,
        subject: subject?,
        nats: NatsServers {
            urls: f.urls,
            credentials,
            tls,
            connect_timeout: connect_timeout?,
            request_timeout: publish_timeout?,
        },
        publish_timeout: publish_timeout?,
        max_in_flight: f.max_in_flight,
        max_in_flight_bytes: max_in_flight_bytes?,
        max_backoff: max_backoff?,
        stop_timeout: stop_timeout?,
        stream: stream?,
    })
}

fn stream(f: StreamFile, key: &str, p: &mut Problems) -> Option<StreamConfig> {
    let before = p.list.len();
    if f.name.is_empty() {
        p.push(format!("{key}.name"), "is missing");
    } else if f
        .name
        .chars()
        .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control())
    {
        p.push(
            format!("{key}.name"),
            format!("{:?} may not hold `.`, `*`, `>` or spaces", f.name),
        );
    }
    if f.subjects.is_empty() {
        p.push(
            format!("{key}.subjects"),
            "is missing (e.g. [\"clicks.>\"])",
        );
    }
    for (n, s) in f.subjects.iter().enumerate() {
        let tokens: Vec<&str> = s.split('.').collect();
        let bad = tokens.iter().enumerate().any(|(i, t)| {
            t.is_empty()
                || t.chars().any(|c| c.is_whitespace() || c.is_control())
                || (*t == ">" && i + 1 != tokens.len())
                || (t.len() > 1 && (t.contains('*') || t.contains('>')))
        });
        if bad {
            p.push(
                format!("{key}.subjects[{n}]"),
                format!("{s:?} is not a subject filter (e.g. \"clicks.>\")"),
            );
        }
    }
    if !(1..=5).contains(&f.replicas) {
        p.push(
            format!("{key}.replicas"),
            format!(
                "{} is not between 1 and 5, what JetStream allows",
                f.replicas
            ),
        );
    }
    let retention = match f.retention.as_str() {
        "limits" => Some(Retention::Limits),
        "interest" => Some(Retention::Interest),
        "workqueue" => Some(Retention::WorkQueue),
        other => {
            p.push(
                format!("{key}.retention"),
                format!("{other:?} is not one of \"limits\", \"interest\", \"workqueue\""),
            );
            None
        }
    };
    let max_age = p.check(&format!("{key}.max_age"), parse::duration(&f.max_age));
    let window = p.check(
        &format!("{key}.duplicate_window"),
        parse::duration(&f.duplicate_window),
    );
    if window.is_some_and(|w| w.is_zero()) {
        p.push(
            format!("{key}.duplicate_window"),
            "must be more than zero: it is what removes a restart's re-sent events",
        );
    }
    if let (Some(age), Some(w)) = (max_age, window)
        && !age.is_zero()
        && w > age
    {
        p.push(
            format!("{key}.duplicate_window"),
            format!(
                "{:?} is longer than max_age {:?}",
                f.duplicate_window, f.max_age
            ),
        );
    }
    if p.list.len() > before {
        return None;
    }
    Some(StreamConfig {
        name: f.name,
        subjects: f.subjects,
        replicas: f.replicas,
        retention: retention?,
        max_age: max_age?,
        duplicate_window: window?,
    })
}
