//! The CloudEvents format: each event as a CloudEvents 1.0 event in the structured JSON
//! mode, for receivers behind Knative, AWS EventBridge, Azure Event Grid and other
//! CloudEvents routers.
//!
//! One event per request is sent as `application/cloudevents+json`; a webhook that
//! batches (`batch.max_events > 1`) always gets CloudEvents' JSON batch format, an
//! array of events sent as `application/cloudevents-batch+json`, even for one event, so
//! that its receiver parses one shape.
//!
//! The attributes: `id` is the message id of a request carrying this event alone, so it
//! is the request's `webhook-id` for one event and stays the same for an event across
//! attempts and batches (CloudEvents receivers drop repeats by `source` and `id`);
//! `source` is the webhook's `source`, else the short link's origin; `type` is
//! `com.clicktap.` and the event type; `subject` the link's path; `time` when the click
//! happened; `data` the native event, as a native webhook gets it.

use serde::Serialize;
use serde_json::value::RawValue;

use super::native::{self, StoredItem};
use super::{Envelope, Item, Rendered, click_time, iso_millis, json, message_id};
use crate::config::Format;

/// One event, batched or not.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";
/// An array of events.
pub const BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";

/// Every `type` is this and the event type: `com.clicktap.link.clicked`.
pub const TYPE_PREFIX: &str = "com.clicktap.";

/// The `source` of an event whose link named no valid host, when the webhook sets none.
pub const NO_HOST_SOURCE: &str = "urn:clicktap";

#[derive(Serialize)]
struct CloudEvent<'a> {
    specversion: &'static str,
    id: String,
    source: String,
    #[serde(rename = "type")]
    event_type: String,
    subject: &'a str,
    time: String,
    datacontenttype: &'static str,
    data: Box<RawValue>,
}

pub(super) fn render(items: &[Item<'_>], env: &Envelope<'_>) -> Rendered {
    let batch = env.webhook.batch.max_events > 1 || items.len() > 1;
    let events: Vec<CloudEvent<'_>> = items
        .iter()
        .map(|item| cloud_event(item, env, batch))
        .collect();
    if batch {
        return Rendered {
            body: json(Format::CloudEvents, &events),
            content_type: BATCH_CONTENT_TYPE,
            headers: Vec::new(),
        };
    }
    Rendered {
        body: match events.first() {
            Some(e) => json(Format::CloudEvents, e),
            None => b"{}".to_vec(),
        },
        content_type: CONTENT_TYPE,
        headers: Vec::new(),
    }
}

fn cloud_event<'a>(item: &Item<'a>, env: &Envelope<'_>, batch: bool) -> CloudEvent<'a> {
    let e = item.event;
    let id = if batch {
        message_id(&env.webhook.id, [&e.id])
    } else {
        env.message_id.to_string()
    };
    let source = match &env.webhook.source {
        Some(s) => s.clone(),
        None if e.link.host.is_empty() => NO_HOST_SOURCE.to_string(),
        None => format!("{}://{}", e.link.scheme, e.link.host),
    };
    CloudEvent {
        specversion: "1.0",
        id,
        source,
        event_type: format!("{TYPE_PREFIX}{}", e.event_type.as_str()),
        subject: &e.link.path,
        time: iso_millis(click_time(e, env.sent_at)),
        datacontenttype: "application/json",
        data: data(item, &env.webhook.id),
    }
}

/// The native event: the event as stored, with `webhook_id` and `link_meta`.
fn data(item: &Item<'_>, webhook_id: &str) -> Box<RawValue> {
    let stored = json(Format::Native, item.event);
    let mut out = Vec::with_capacity(stored.len() + 64);
    let one = StoredItem {
        json: &stored,
        link: item.link,
    };
    native::event(&mut out, &one, webhook_id);
    let raw = String::from_utf8(out)
        .map_err(|e| e.to_string())
        .and_then(|s| RawValue::from_string(s).map_err(|e| e.to_string()));
    raw.unwrap_or_else(|e| {
        // serde_json wrote it; should it not read back, the event goes without data.
        tracing::error!(error = %e, "a CloudEvent's data is not JSON; sent as null");
        RawValue::from_string("null".into()).expect("null is JSON")
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::render;
    use super::*;
    use crate::click::EventType;
    use serde_json::{Value, json};

    /// The attributes CloudEvents 1.0 requires, and those this format always sends.
    const ATTRIBUTES: [&str; 8] = [
        "data",
        "datacontenttype",
        "id",
        "source",
        "specversion",
        "subject",
        "time",
        "type",
    ];

    #[test]
    fn one_event_is_a_structured_cloud_event_with_the_native_event_as_data() {
        let hook = webhook(Format::CloudEvents);
        let event = chrome_mac_london();
        let link = launch_link();
        let (body, out) = render_one(Format::CloudEvents, &hook, &event, Some(&link));
        assert_eq!(out.content_type, "application/cloudevents+json");
        assert_eq!(keys(&body), ATTRIBUTES);
        assert_eq!(body["specversion"], "1.0");
        assert_eq!(body["id"], MESSAGE_ID);
        assert_eq!(body["source"], "https://brand.link");
        assert_eq!(body["type"], "com.clicktap.link.clicked");
        assert_eq!(body["subject"], "/launch");
        assert_eq!(body["time"], "2026-11-27T03:25:52.123Z");
        assert_eq!(body["datacontenttype"], "application/json");
        let (native, _) = render_one(
            Format::Native,
            &webhook(Format::Native),
            &event,
            Some(&link),
        );
        assert_eq!(
            body["data"], native,
            "the native event, as a native webhook gets it"
        );
        assert!(out.headers.is_empty());
    }

    #[test]
    fn a_batching_webhook_gets_the_json_batch_format_with_an_id_per_event() {
        let mut hook = webhook(Format::CloudEvents);
        hook.batch.max_events = 10;
        let env = envelope(&hook);
        let (a, b) = (chrome_mac_london(), slackbot());
        let out = render(Format::CloudEvents, &[item(&a, None), item(&b, None)], &env);
        assert_eq!(out.content_type, "application/cloudevents-batch+json");
        let body: Value = serde_json::from_slice(&out.body).expect("json");
        let events = body.as_array().expect("an array");
        assert_eq!(events.len(), 2);
        for (e, event) in events.iter().zip([&a, &b]) {
            assert_eq!(keys(e), ATTRIBUTES);
            assert_eq!(e["data"]["id"], event.id.to_string());
            assert_eq!(
                e["id"],
                message_id("crm", [&event.id]),
                "this event's own message id"
            );
        }
        assert_ne!(events[0]["id"], events[1]["id"]);

        let one = render(Format::CloudEvents, &[item(&a, None)], &env);
        assert_eq!(one.content_type, "application/cloudevents-batch+json");
        let one: Value = serde_json::from_slice(&one.body).expect("json");
        assert_eq!(
            one.as_array().map(Vec::len),
            Some(1),
            "an array even for one event"
        );
    }

    #[test]
    fn the_type_names_the_event_type() {
        for t in EventType::ALL {
            let mut event = chrome_mac_london();
            event.event_type = t;
            let (body, _) = render_one(
                Format::CloudEvents,
                &webhook(Format::CloudEvents),
                &event,
                None,
            );
            assert_eq!(body["type"], format!("com.clicktap.{}", t.as_str()));
            assert_eq!(body["data"]["type"], t.as_str());
        }
    }

    #[test]
    fn the_source_is_the_webhooks_else_the_links_origin() {
        let mut hook = webhook(Format::CloudEvents);
        let mut event = bare();
        event.link.host = "sho.rt:8080".into();
        let (body, _) = render_one(Format::CloudEvents, &hook, &event, None);
        assert_eq!(
            body["source"],
            format!("{}://sho.rt:8080", event.link.scheme)
        );
        event.link.host.clear();
        let (body, _) = render_one(Format::CloudEvents, &hook, &event, None);
        assert_eq!(body["source"], "urn:clicktap");
        hook.source = Some("urn:clicktap:eu-1".into());
        let (body, _) = render_one(Format::CloudEvents, &hook, &event, None);
        assert_eq!(body["source"], "urn:clicktap:eu-1");
        assert_eq!(body["data"]["webhook_id"], json!("crm"));
    }
}
