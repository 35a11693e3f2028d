//! The event as the queue stores it, written straight from the click's parts.
//!
//! Its JSON is exactly [`ClickEvent`]'s (the same fields in the same order; a test
//! holds the two together), but it borrows what it can from the click and takes the
//! link's and the user agent's parts already serialised from the per-thread memos, so
//! that writing an event allocates little and escapes only what changes per click.

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use std::fmt::Display;
use std::net::IpAddr;
use uuid::Uuid;

use super::request::Referrer;
#[cfg(doc)]
use crate::click::ClickEvent;
use crate::click::{ClickKind, Cut, EventType, Geo};

#[derive(Serialize)]
pub struct Stored<'a> {
    pub id: Uuid,
    #[serde(serialize_with = "display")]
    pub timestamp: humantime::Rfc3339Timestamp,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub kind: ClickKind,
    pub method: &'a str,
    pub status: u16,
    pub link: &'a RawValue,
    pub params: &'a RawValue,
    pub destination: &'a RawValue,
    pub referrer: Referrer<'a>,
    pub client: Client<'a>,
    pub agent: &'a RawValue,
    pub bot: &'a RawValue,
    pub geo: Option<Geo>,
    #[serde(skip_serializing_if = "Truncated::is_empty")]
    pub truncated: Truncated,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique: Option<bool>,
}

/// The event's `truncated`: the names of the fields that were cut, written straight from
/// the click's flags.
pub struct Truncated(pub Cut);

impl Truncated {
    /// Nothing named: a cut that is no event field (the forwarding chain's head) is not
    /// listed either, so the field is absent just as [`ClickEvent`] leaves it.
    fn is_empty(&self) -> bool {
        self.0.fields().next().is_none()
    }
}

impl Serialize for Truncated {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.fields())
    }
}

/// The shape of [`crate::click::Client`].
#[derive(Serialize)]
pub struct Client<'a> {
    #[serde(serialize_with = "display_opt")]
    pub ip: Option<IpAddr>,
    pub ip_version: Option<u8>,
    #[serde(serialize_with = "display_opt")]
    pub raw_ip: Option<IpAddr>,
    pub ip_source: &'static str,
    pub user_agent: Option<&'a str>,
    pub prefetch: bool,
}

fn display<S: Serializer>(v: &impl Display, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn display_opt<S: Serializer>(v: &Option<impl Display>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}
