//! The few fields of a stored event the rollup counts, read without building the whole
//! `ClickEvent` (borrowed where the JSON has no escapes).

use serde::Deserialize;
use std::borrow::Cow;

use super::minute::Click;
use crate::click::ClickKind;

#[derive(Deserialize)]
struct Event<'a> {
    kind: ClickKind,
    #[serde(borrow)]
    link: Link<'a>,
    #[serde(borrow)]
    destination: Option<Host<'a>>,
    #[serde(borrow)]
    referrer: Referrer<'a>,
    #[serde(borrow)]
    agent: Agent<'a>,
    #[serde(borrow)]
    geo: Option<Geo<'a>>,
}

#[derive(Deserialize)]
struct Link<'a> {
    #[serde(borrow)]
    path: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Host<'a> {
    #[serde(borrow)]
    host: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Referrer<'a> {
    #[serde(borrow)]
    host: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Agent<'a> {
    #[serde(borrow)]
    browser: Option<Cow<'a, str>>,
    #[serde(borrow)]
    os: Option<Cow<'a, str>>,
    #[serde(borrow)]
    device_type: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Geo<'a> {
    #[serde(borrow)]
    country_code: Option<Cow<'a, str>>,
}

/// The keys of one click, borrowed from the event's bytes where the JSON allows (a
/// counter copies a key only when it first sees it).
pub struct Keys<'a> {
    kind: usize,
    keys: [Cow<'a, str>; 6],
}

impl Keys<'_> {
    pub fn click(&self) -> Click<'_> {
        Click {
            kind: self.kind,
            keys: [
                &self.keys[0],
                &self.keys[1],
                &self.keys[2],
                &self.keys[3],
                &self.keys[4],
                &self.keys[5],
            ],
        }
    }
}

/// What an unknown value reads as, in every dimension.
const UNKNOWN: &str = "unknown";

fn or_unknown(v: Option<Cow<'_, str>>) -> Cow<'_, str> {
    v.unwrap_or(Cow::Borrowed(UNKNOWN))
}

/// The keys a stored event counts under; `None` for bytes that are not an event of a
/// stored kind (a test event never is stored; nothing else writes the queue).
pub fn keys(json: &[u8]) -> Option<Keys<'_>> {
    let e: Event = serde_json::from_slice(json).ok()?;
    let kind = ClickKind::ALL.iter().position(|k| *k == e.kind)?;
    // "device" as the event has it: its category, and the system when known.
    let device = match e.agent.os {
        Some(os) => Cow::Owned(format!("{}/{os}", e.agent.device_type)),
        None => e.agent.device_type,
    };
    Some(Keys {
        kind,
        keys: [
            e.link.path,
            // A relative destination stays on the short link's host.
            match e.destination {
                Some(d) => d.host.unwrap_or(Cow::Borrowed("relative")),
                None => Cow::Borrowed("none"),
            },
            or_unknown(e.geo.and_then(|g| g.country_code)),
            device,
            or_unknown(e.agent.browser),
            e.referrer.host,
        ],
    })
}
