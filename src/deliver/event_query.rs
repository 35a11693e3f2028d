//! What an operator asks of events: captured in a time range, of a link, of an event
//! type, of a kind. One reading for `clicktap events`, `GET /api/v1/events` and the
//! messages of a webhook (`messages.rs`), so that `--type` or `since` mean the same
//! thing everywhere.

use crate::click::{ClickKind, EventType};

use super::member::Head;

/// Events that match every part given (an absent part matches all).
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Captured at or after (ms since the Unix epoch).
    pub since_ms: Option<u64>,
    /// Captured at or before.
    pub until_ms: Option<u64>,
    /// The link as `host/path` or `/path`; a trailing `*` matches what starts so.
    pub link: Option<String>,
    pub event_type: Option<EventType>,
    pub kind: Option<ClickKind>,
}

impl EventQuery {
    /// Reads an event type (`link.clicked`, ...) or says which there are.
    pub fn event_type(text: &str) -> Result<EventType, String> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| {
                let all: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                format!("type={text:?}: give one of {}", all.join(", "))
            })
    }

    /// Reads a kind (`human`, `bot`, ...) or says which there are.
    pub fn kind(text: &str) -> Result<ClickKind, String> {
        serde_json::from_value(serde_json::Value::String(text.to_string()))
            .map_err(|_| format!("kind={text:?}: give one of human, bot, preview, head, prefetch"))
    }

    pub fn is_empty(&self) -> bool {
        self.since_ms.is_none()
            && self.until_ms.is_none()
            && self.link.is_none()
            && self.event_type.is_none()
            && self.kind.is_none()
    }

    /// Whether an event captured at `at_ms` with `head` matches.
    pub fn matches(&self, head: &Head, at_ms: u64) -> bool {
        if self.since_ms.is_some_and(|s| at_ms < s) || self.until_ms.is_some_and(|u| at_ms > u) {
            return false;
        }
        if self.event_type.is_some_and(|t| head.event_type() != t) {
            return false;
        }
        if self.kind.is_some_and(|k| head.kind != k) {
            return false;
        }
        match &self.link {
            None => true,
            Some(want) => {
                let full = format!("{}{}", head.link.host, head.link.path);
                let is = |have: &str| match want.strip_suffix('*') {
                    Some(prefix) => have.starts_with(prefix),
                    None => have == want,
                };
                is(&full) || is(&head.link.path)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(host: &str, path: &str, t: EventType, kind: ClickKind) -> Head {
        serde_json::from_value(serde_json::json!({
            "id": "019ae5c4-7d2b-7c1e-9a3f-000000000001",
            "timestamp": "2026-12-07T00:00:00.000Z",
            "type": t,
            "kind": kind,
            "link": { "host": host, "path": path },
        }))
        .unwrap()
    }

    #[test]
    fn each_part_narrows_and_links_match_whole_or_by_prefix() {
        let h = head("sho.rt", "/abc", EventType::LinkScanned, ClickKind::Human);
        assert!(EventQuery::default().matches(&h, 5));
        let q = |f: fn(&mut EventQuery)| {
            let mut q = EventQuery::default();
            f(&mut q);
            q.matches(&h, 5)
        };
        assert!(q(|q| q.since_ms = Some(5)));
        assert!(!q(|q| q.since_ms = Some(6)));
        assert!(!q(|q| q.until_ms = Some(4)));
        assert!(q(|q| q.link = Some("sho.rt/abc".into())));
        assert!(q(|q| q.link = Some("/abc".into())));
        assert!(q(|q| q.link = Some("sho.rt/a*".into())));
        assert!(!q(|q| q.link = Some("sho.rt/ab".into())));
        assert!(q(|q| q.event_type = Some(EventType::LinkScanned)));
        assert!(!q(|q| q.event_type = Some(EventType::LinkClicked)));
        assert!(!q(|q| q.kind = Some(ClickKind::Bot)));
        assert_eq!(
            EventQuery::event_type("page.viewed"),
            Ok(EventType::PageViewed)
        );
        assert!(EventQuery::event_type("nope").is_err());
        assert_eq!(EventQuery::kind("bot"), Ok(ClickKind::Bot));
    }
}
