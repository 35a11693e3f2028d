//! An event on its way to one webhook: what delivery reads of the stored event, and
//! the stored event itself.
//!
//! Reading a stored event back into a [`ClickEvent`] (a string per field, each checked
//! as UTF-8) was half of what delivery spent per event in batches. Delivery itself needs
//! only a few fields (the id, the time, the type, the kind, the link's host and path: for
//! message ids, filters, `[[links]]` entries and batch ages), so it reads only those; the full
//! event is read only for the vendor formats, which rebuild it field by field. The
//! native format sends the stored JSON as it is.

use serde::Deserialize;
use std::time::Duration;
use uuid::Uuid;

use crate::click::{ClickEvent, ClickKind, EventType};
use crate::queue::Stored;

/// The fields of a stored event that delivery itself reads; serde skips the rest.
#[derive(Debug, Deserialize)]
pub struct Head {
    pub id: Uuid,
    pub timestamp: String,
    /// `None` for an event stored before event types existed: a link click.
    #[serde(rename = "type", default)]
    pub event_type: Option<EventType>,
    pub kind: ClickKind,
    pub link: HeadLink,
    /// Absent in events stored unmarked.
    #[serde(default)]
    pub unique: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct HeadLink {
    pub host: String,
    pub path: String,
}

impl Head {
    pub fn event_type(&self) -> EventType {
        self.event_type.unwrap_or_default()
    }

    pub fn of(e: &ClickEvent) -> Head {
        Head {
            id: e.id,
            timestamp: e.timestamp.clone(),
            event_type: Some(e.event_type),
            kind: e.kind,
            link: HeadLink {
                host: e.link.host.clone(),
                path: e.link.path.clone(),
            },
            unique: e.unique,
        }
    }
}

pub struct Member {
    pub seq: u64,
    pub head: Head,
    /// The event as the queue stores it (shared with the queue's read, not copied).
    pub stored: Stored,
    /// The whole event, read only for formats that rebuild it (every one but native).
    pub event: Option<ClickEvent>,
    pub attempts_before: u32,
    /// When it is a retry: the time its retry record was due, cleared on success
    /// unless it changed meanwhile.
    pub due_at: Option<u64>,
    /// The message id of the request it last failed in, when it is a retry.
    pub message: Option<String>,
    /// Put in line by an operator's replay (its outcome is counted as the replay's).
    pub replay: bool,
}

impl Member {
    /// Reads `stored`, wholly when `whole`; an error names what is wrong with it.
    pub fn read(stored: Stored, whole: bool) -> Result<Member, serde_json::Error> {
        // serde_json checks UTF-8 only in the strings it keeps: damage in a field it
        // skips would pass, and the native format would send it on, no longer JSON.
        let text = std::str::from_utf8(stored.bytes())
            .map_err(|_| serde::de::Error::custom("a stored event is not UTF-8"))?;
        // The native format adds its keys inside the object; serde would also take a
        // JSON array for these structs, which clicktap never stores.
        if !text.trim_ascii_start().starts_with('{') {
            return Err(serde::de::Error::custom("a stored event is a JSON object"));
        }
        let (head, event) = if whole {
            let e: ClickEvent = serde_json::from_str(text)?;
            (Head::of(&e), Some(e))
        } else {
            (serde_json::from_str(text)?, None)
        };
        Ok(Member {
            seq: stored.seq,
            head,
            stored,
            event,
            attempts_before: 0,
            due_at: None,
            message: None,
            replay: false,
        })
    }

    /// How long ago it was stored, `now_ms` on the queue's clock: what a filling batch
    /// waits on (`batch.max_wait`), untouched by a step of the wall clock.
    pub fn age(&self, now_ms: u64) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(self.stored.stored_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::formats::fixtures;

    #[test]
    fn the_head_is_read_without_the_rest_and_the_whole_event_on_demand() {
        let event = fixtures::chrome_mac_london();
        let json = serde_json::to_vec(&event).unwrap();
        let m = Member::read(Stored::detached(7, 0, &json), false).unwrap();
        assert_eq!(m.seq, 7);
        assert_eq!(m.head.id, event.id);
        assert_eq!(m.head.kind, event.kind);
        assert_eq!(m.head.link.host, event.link.host);
        assert_eq!(m.head.link.path, event.link.path);
        assert!(m.event.is_none());
        assert_eq!(m.stored.bytes(), &json[..]);

        let whole = Member::read(Stored::detached(7, 0, &json), true).unwrap();
        assert_eq!(whole.event.as_ref(), Some(&event));
        assert_eq!(whole.head.timestamp, event.timestamp);
    }

    #[test]
    fn an_event_stored_without_a_type_is_a_link_click() {
        let mut event = serde_json::to_value(fixtures::chrome_mac_london()).unwrap();
        event.as_object_mut().unwrap().remove("type");
        let json = serde_json::to_vec(&event).unwrap();
        let m = Member::read(Stored::detached(1, 0, &json), false).unwrap();
        assert_eq!(m.head.event_type, None);
        assert_eq!(m.head.event_type(), EventType::LinkClicked);
        let whole = Member::read(Stored::detached(1, 0, &json), true).unwrap();
        assert_eq!(whole.event.unwrap().event_type, EventType::LinkClicked);
        assert_eq!(whole.head.event_type(), EventType::LinkClicked);
    }

    #[test]
    fn events_read_with_their_unique_flag_and_without_one_as_stored_before() {
        let old = fixtures::chrome_mac_london();
        assert_eq!(old.unique, None);
        let json = serde_json::to_vec(&old).unwrap();
        assert!(!String::from_utf8_lossy(&json).contains("unique"));
        for whole in [false, true] {
            let m = Member::read(Stored::detached(1, 0, &json), whole).unwrap();
            assert_eq!(m.head.unique, None);
        }
        let marked = ClickEvent {
            unique: Some(false),
            ..old
        };
        let json = serde_json::to_vec(&marked).unwrap();
        assert!(String::from_utf8_lossy(&json).ends_with(r#","unique":false}"#));
        for whole in [false, true] {
            let m = Member::read(Stored::detached(1, 0, &json), whole).unwrap();
            assert_eq!(m.head.unique, Some(false));
        }
    }

    #[test]
    fn what_is_not_an_event_object_is_an_error() {
        let event = serde_json::to_value(fixtures::chrome_mac_london()).unwrap();
        let fields: Vec<_> = event.as_object().unwrap().values().cloned().collect();
        let as_array = serde_json::to_vec(&fields).unwrap();
        for bad in [&as_array[..], b"not json", b"{}", b"{\"id\":\"x\"}", b""] {
            for whole in [false, true] {
                let e = Member::read(Stored::detached(1, 0, bad), whole).err();
                assert!(e.is_some(), "{} read", String::from_utf8_lossy(bad));
            }
        }
    }
}
