//! The stream a sink publishes into: created when absent, compared when present.
//!
//! An existing stream whose settings differ from `[sinks.stream]` is refused rather
//! than changed: another sidecar or an operator made it so, and a sidecar that rewrote
//! subjects, replicas or retention behind everyone's back would change what every relay
//! and every other sidecar sees. The refusal names each setting that differs, with both
//! values, and the sink tries again after its back-off (an operator may fix the stream
//! or the file meanwhile); events wait in the queue.

use async_nats::jetstream::{self, stream};

use super::SinkError;
use crate::config::{Retention, StreamConfig};

fn retention(r: Retention) -> stream::RetentionPolicy {
    match r {
        Retention::Limits => stream::RetentionPolicy::Limits,
        Retention::Interest => stream::RetentionPolicy::Interest,
        Retention::WorkQueue => stream::RetentionPolicy::WorkQueue,
    }
}

fn retention_name(r: stream::RetentionPolicy) -> &'static str {
    match r {
        stream::RetentionPolicy::Limits => "limits",
        stream::RetentionPolicy::Interest => "interest",
        stream::RetentionPolicy::WorkQueue => "workqueue",
    }
}

/// Makes sure the stream exists as configured. `key` is the config key of the
/// `[sinks.stream]` table, for messages.
pub async fn ensure(
    js: &jetstream::Context,
    want: &StreamConfig,
    key: &str,
) -> Result<(), SinkError> {
    match js.get_stream(&want.name).await {
        Ok(mut s) => {
            let info = s
                .info()
                .await
                .map_err(|e| SinkError::Stream(e.to_string()))?;
            let diffs = differences(want, &info.config, key);
            if diffs.is_empty() {
                Ok(())
            } else {
                Err(SinkError::Refused(format!(
                    "stream {:?} on the server does not match the config: {}; change the stream or the config",
                    want.name,
                    diffs.join("; ")
                )))
            }
        }
        Err(e) if is_not_found(&e) => {
            let config = stream::Config {
                name: want.name.clone(),
                subjects: want.subjects.clone(),
                num_replicas: want.replicas,
                retention: retention(want.retention),
                max_age: want.max_age,
                duplicate_window: want.duplicate_window,
                storage: stream::StorageType::File,
                ..Default::default()
            };
            match js.create_stream(config).await {
                Ok(_) => {
                    tracing::info!(stream = want.name, "created the stream");
                    Ok(())
                }
                Err(e) => Err(SinkError::Stream(format!(
                    "cannot create the stream {:?}: {e}",
                    want.name
                ))),
            }
        }
        Err(e) => Err(SinkError::Stream(e.to_string())),
    }
}

/// Whether the server answered that the stream does not exist.
pub fn is_not_found(e: &jetstream::context::GetStreamError) -> bool {
    matches!(
        e.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(j)
            if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

/// Every setting of `want` the server's stream has otherwise, as `key: server has X,
/// the config says Y`.
fn differences(want: &StreamConfig, have: &stream::Config, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut want_subjects = want.subjects.clone();
    let mut have_subjects = have.subjects.clone();
    want_subjects.sort();
    have_subjects.sort();
    if want_subjects != have_subjects {
        out.push(format!(
            "{key}.subjects: the server has {have_subjects:?}, the config says {want_subjects:?}"
        ));
    }
    if have.num_replicas.max(1) != want.replicas {
        out.push(format!(
            "{key}.replicas: the server has {}, the config says {}",
            have.num_replicas.max(1),
            want.replicas
        ));
    }
    if have.retention != retention(want.retention) {
        out.push(format!(
            "{key}.retention: the server has {:?}, the config says {:?}",
            retention_name(have.retention),
            want.retention.name()
        ));
    }
    if have.max_age != want.max_age {
        out.push(format!(
            "{key}.max_age: the server has {:?}, the config says {:?}",
            humantime::format_duration(have.max_age).to_string(),
            humantime::format_duration(want.max_age).to_string()
        ));
    }
    if have.duplicate_window != want.duplicate_window {
        out.push(format!(
            "{key}.duplicate_window: the server has {:?}, the config says {:?}",
            humantime::format_duration(have.duplicate_window).to_string(),
            humantime::format_duration(want.duplicate_window).to_string()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn want() -> StreamConfig {
        StreamConfig {
            name: "CLICKS".into(),
            subjects: vec!["clicks.>".into()],
            replicas: 3,
            retention: Retention::Limits,
            max_age: Duration::from_secs(7 * 86_400),
            duplicate_window: Duration::from_secs(120),
        }
    }

    fn have() -> stream::Config {
        stream::Config {
            name: "CLICKS".into(),
            subjects: vec!["clicks.>".into()],
            num_replicas: 3,
            max_age: Duration::from_secs(7 * 86_400),
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        }
    }

    #[test]
    fn a_matching_stream_has_no_differences() {
        assert!(differences(&want(), &have(), "sinks[0].stream").is_empty());
    }

    #[test]
    fn each_difference_names_its_key_and_both_values() {
        let mut h = have();
        h.num_replicas = 1;
        h.retention = stream::RetentionPolicy::WorkQueue;
        h.subjects = vec!["views.>".into()];
        let d = differences(&want(), &h, "sinks[0].stream");
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].starts_with("sinks[0].stream.subjects") && d[0].contains("views.>"));
        assert!(d[1].starts_with("sinks[0].stream.replicas") && d[1].contains("has 1"));
        assert!(d[2].starts_with("sinks[0].stream.retention") && d[2].contains("workqueue"));
    }
}
