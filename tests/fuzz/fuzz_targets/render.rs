//! Every format's rendering: `render` for each `Format`, and `render_stored` for the
//! native format, on `ClickEvent`s built from arbitrary strings, times and numbers,
//! with arbitrary `[[links]]` metadata, webhook ids, secrets and message ids.
//!
//! What must hold: never a panic; every body is one JSON object; a native body is the
//! event's own JSON with `webhook_id` (and `link_meta`) added, and a batch carries
//! every event.

#![no_main]

mod common;

use arbitrary::Arbitrary;
use clicktap::click::{
    Bot, BotKind, ClickEvent, ClickKind, Client, Destination, EventType, Referrer,
};
use clicktap::config::{Format, LinkMeta};
use clicktap::deliver::formats::{Envelope, Item, StoredItem, render, render_stored};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};
use uuid::Uuid;

#[derive(Arbitrary, Debug)]
enum Timestamp {
    /// Seconds and milliseconds since the epoch, written as enrichment writes them.
    At(u64, u16),
    /// Whatever a stored event may hold.
    Text(String),
}

#[derive(Arbitrary, Debug)]
struct Event {
    id: u128,
    timestamp: Timestamp,
    kind: u8,
    method: String,
    status: u16,
    scheme: String,
    host: String,
    path: String,
    query: Option<String>,
    params: BTreeMap<String, String>,
    destination: Option<(String, Option<String>)>,
    referrer: (Option<String>, String),
    ip: Option<String>,
    ip_version: Option<u8>,
    raw_ip: Option<String>,
    ip_source: String,
    user_agent: Option<String>,
    prefetch: bool,
    agent: [Option<String>; 6],
    device_type: String,
    bot: Option<(String, u8)>,
    geo: Option<Place>,
}

/// Country code and name, region and its code, city, postal code, time zone.
#[derive(Arbitrary, Debug)]
struct Place {
    names: [Option<String>; 7],
    is_eu: Option<bool>,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

#[derive(Arbitrary, Debug)]
struct Meta {
    id: Option<String>,
    name: Option<String>,
    tags: Vec<String>,
    workspace_id: Option<String>,
    group_guid: Option<String>,
    organization_guid: Option<String>,
    created_at: Option<String>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    events: Vec<Event>,
    meta: Option<Meta>,
    webhook_id: String,
    guid: String,
    raw_secret: Option<String>,
    max_events: u8,
    message_id: String,
    sent_at: (bool, u64),
}

const KINDS: [BotKind; 4] = [
    BotKind::Crawler,
    BotKind::Preview,
    BotKind::Scanner,
    BotKind::Tool,
];

fn event(e: Event) -> ClickEvent {
    let timestamp = match e.timestamp {
        Timestamp::At(secs, millis) => {
            // humantime writes up to the year 9999.
            let t = UNIX_EPOCH
                + Duration::from_secs(secs % 253_402_300_800)
                + Duration::from_millis(u64::from(millis % 1000));
            humantime::format_rfc3339_millis(t).to_string()
        }
        Timestamp::Text(s) => s,
    };
    ClickEvent {
        id: Uuid::from_u128(e.id),
        timestamp,
        event_type: EventType::ALL[usize::from(e.kind >> 4) % EventType::ALL.len()],
        kind: ClickKind::ALL[usize::from(e.kind) % ClickKind::ALL.len()],
        method: e.method,
        status: e.status,
        link: common::link(e.scheme, e.host, e.path, e.query),
        params: e.params,
        destination: e.destination.map(|(url, host)| Destination { url, host }),
        referrer: Referrer {
            url: e.referrer.0,
            host: e.referrer.1,
        },
        client: Client {
            ip: e.ip,
            ip_version: e.ip_version,
            raw_ip: e.raw_ip,
            ip_source: e.ip_source,
            user_agent: e.user_agent,
            prefetch: e.prefetch,
        },
        agent: common::agent(e.agent, e.device_type),
        bot: e.bot.map(|(name, kind)| Bot {
            name,
            kind: KINDS[usize::from(kind) % KINDS.len()],
        }),
        geo: e
            .geo
            .map(|p| common::geo(p.names, p.is_eu, p.latitude, p.longitude)),
        truncated: Vec::new(),
        unique: None,
    }
}

fuzz_target!(|input: Input| {
    let events: Vec<ClickEvent> = input.events.into_iter().take(8).map(event).collect();
    let meta = input.meta.map(|m| LinkMeta {
        host: None,
        path: None,
        id: m.id,
        name: m.name,
        tags: m.tags,
        workspace_id: m.workspace_id,
        group_guid: m.group_guid,
        organization_guid: m.organization_guid,
        created_at: m.created_at,
        qr: false,
        qr_params: Vec::new(),
    });
    let sent_at = common::time(input.sent_at.0, Duration::from_secs(input.sent_at.1));
    for format in common::FORMATS {
        let webhook = common::webhook(
            format,
            &input.webhook_id,
            &input.guid,
            input.raw_secret.as_deref(),
            usize::from(input.max_events),
        );
        let env = Envelope {
            webhook: &webhook,
            message_id: &input.message_id,
            sent_at,
        };
        let take = if format.batches() {
            events.len().min(webhook.batch.max_events)
        } else {
            events.len().min(1)
        };
        let items: Vec<Item<'_>> = events[..take]
            .iter()
            .map(|event| Item {
                event,
                link: meta.as_ref(),
            })
            .collect();
        let out = render(format, &items, &env);
        let body = common::json_object(format, &out.body);
        if format != Format::Native {
            continue;
        }
        let stored: Vec<Vec<u8>> = events[..take]
            .iter()
            .map(|e| serde_json::to_vec(e).expect("an event serialises"))
            .collect();
        let stored_items: Vec<StoredItem<'_>> = stored
            .iter()
            .map(|json| StoredItem {
                json,
                link: meta.as_ref(),
            })
            .collect();
        let from_stored = render_stored(&stored_items, &env);
        assert_eq!(out.body, from_stored.body, "native sends the stored event");
        let id = serde_json::Value::from(input.webhook_id.as_str());
        if webhook.batch.max_events > 1 {
            assert_eq!(body.get("webhook_id"), Some(&id));
            let list = body["events"].as_array().expect("a batch carries events");
            assert_eq!(list.len(), take, "a batch carries every event");
        } else if let Some(event) = events[..take].first() {
            let mut sent = body;
            assert_eq!(sent.remove("webhook_id"), Some(id));
            assert_eq!(sent.remove("link_meta").is_some(), meta.is_some());
            // Both sides parsed from text: serde_json's parser may read the last digit
            // of a float differently from the f64 it was written from.
            let stored: serde_json::Value =
                serde_json::from_slice(&serde_json::to_vec(event).expect("an event is JSON"))
                    .expect("and reads back");
            assert_eq!(
                serde_json::Value::Object(sent),
                stored,
                "the event as stored"
            );
        }
    }
});
