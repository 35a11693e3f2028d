//! The native format: clicktap's own event, as the queue stores it.
//!
//! Every field of [`ClickEvent`] is sent under its stored name, so the event reference
//! (docs/events.md) is also this payload's, and a receiver can replay a stored event through
//! the same code. Two keys are added: `webhook_id`, so that one receiver can serve
//! several webhooks, and `link_meta` when a `[[links]]` entry matched, so that the
//! operator's names for the link travel with the click.
//!
//! Delivery sends the stored JSON as it is, with the two keys written in before its
//! closing brace: nothing is read back or written again (see `deliver::member`).
//!
//! A webhook that batches (`batch.max_events > 1`) always gets
//! `{"webhook_id", "events": [...]}`, even for one event, so that its receiver parses
//! one shape; each element is the very object a single-event webhook would get.

use serde::Serialize;

use super::{Envelope, Item, JSON, Rendered, json};
#[cfg(doc)]
use crate::click::ClickEvent;
use crate::config::{Format, LinkMeta};

/// One event as the queue stores it (a JSON object), to send as it is.
pub struct StoredItem<'a> {
    pub json: &'a [u8],
    /// The first `[[links]]` entry matching the event's host and path.
    pub link: Option<&'a LinkMeta>,
}

/// The operator's metadata for the link; `host`, `path` and `created_at` are left
/// out: the first two only say which links the entry applies to.
#[derive(Serialize)]
struct Meta<'a> {
    id: Option<&'a str>,
    name: Option<&'a str>,
    tags: &'a [String],
    workspace_id: Option<&'a str>,
    group_guid: Option<&'a str>,
    organization_guid: Option<&'a str>,
}

fn meta(l: &LinkMeta) -> Meta<'_> {
    Meta {
        id: l.id.as_deref(),
        name: l.name.as_deref(),
        tags: &l.tags,
        workspace_id: l.workspace_id.as_deref(),
        group_guid: l.group_guid.as_deref(),
        organization_guid: l.organization_guid.as_deref(),
    }
}

/// Renders events read back as [`ClickEvent`]s: each is written as the queue would
/// store it, then sent as stored.
pub(super) fn render(items: &[Item<'_>], env: &Envelope<'_>) -> Rendered {
    let stored: Vec<Vec<u8>> = items
        .iter()
        .map(|i| json(Format::Native, i.event))
        .collect();
    let items: Vec<StoredItem<'_>> = stored
        .iter()
        .zip(items)
        .map(|(json, i)| StoredItem { json, link: i.link })
        .collect();
    render_stored(&items, env)
}

/// Renders stored events as they are.
pub fn render_stored(items: &[StoredItem<'_>], env: &Envelope<'_>) -> Rendered {
    let webhook_id = env.webhook.id.as_str();
    let room: usize = items.iter().map(|i| i.json.len() + 64).sum();
    let mut body = Vec::with_capacity(room + 64);
    // More items than a single-event webhook takes cannot happen (delivery batches up
    // to max_events); should it, the batch shape carries them all rather than drop any.
    if env.webhook.batch.max_events > 1 || items.len() > 1 {
        body.extend_from_slice(b"{\"webhook_id\":");
        write(&mut body, &webhook_id);
        body.extend_from_slice(b",\"events\":[");
        for (n, item) in items.iter().enumerate() {
            if n > 0 {
                body.push(b',');
            }
            event(&mut body, item, webhook_id);
        }
        body.extend_from_slice(b"]}");
    } else {
        match items.first() {
            Some(item) => event(&mut body, item, webhook_id),
            None => body.extend_from_slice(b"{}"),
        }
    }
    Rendered {
        body,
        content_type: JSON,
        headers: Vec::new(),
    }
}

/// The stored object with `webhook_id` and `link_meta` added before its closing brace:
/// one event of this format, and the `data` of a CloudEvent.
pub(super) fn event(out: &mut Vec<u8>, item: &StoredItem<'_>, webhook_id: &str) {
    let json = item.json.trim_ascii();
    let Some(fields) = json.strip_prefix(b"{").and_then(|j| j.strip_suffix(b"}")) else {
        // Delivery reads every event as an object before it gets here.
        tracing::error!(
            webhook = webhook_id,
            "a stored event is not a JSON object; sent with webhook_id only"
        );
        out.extend_from_slice(b"{\"webhook_id\":");
        write(out, &webhook_id);
        out.push(b'}');
        return;
    };
    out.push(b'{');
    let fields = fields.trim_ascii();
    if !fields.is_empty() {
        out.extend_from_slice(fields);
        out.push(b',');
    }
    out.extend_from_slice(b"\"webhook_id\":");
    write(out, &webhook_id);
    if let Some(link) = item.link {
        out.extend_from_slice(b",\"link_meta\":");
        write(out, &meta(link));
    }
    out.push(b'}');
}

/// Appends `value` as JSON. The values here are strings and plain structs, which
/// serde_json always writes; should that fail, the failure is logged and `null`
/// written, so that the body stays JSON.
fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let start = out.len();
    if let Err(e) = serde_json::to_writer(&mut *out, value) {
        tracing::error!(error = %e, "native payload part did not serialise");
        out.truncate(start);
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{self, *};
    use super::super::render;
    use crate::config::Format;
    use serde_json::{Value, json};

    /// The stored event as JSON: what the queue holds.
    fn stored(e: &crate::click::ClickEvent) -> Value {
        serde_json::to_value(e).expect("an event serialises")
    }

    #[test]
    fn a_single_event_is_the_stored_event_plus_webhook_id_and_link_meta() {
        let webhook = webhook(Format::Native);
        let event = chrome_mac_london();
        let link = launch_link();
        let (body, out) = render_one(Format::Native, &webhook, &event, Some(&link));

        let mut expected = stored(&event);
        let obj = expected.as_object_mut().expect("object");
        obj.insert("webhook_id".into(), json!("crm"));
        obj.insert(
            "link_meta".into(),
            json!({
                "id": "12345",
                "name": "Spring launch",
                "tags": ["launch", "email"],
                "workspace_id": "7",
                "group_guid": "B0000000042",
                "organization_guid": "O0000000007",
            }),
        );
        assert_eq!(body, expected);
        assert!(out.headers.is_empty());
    }

    #[test]
    fn without_a_matching_link_there_is_no_link_meta() {
        let webhook = webhook(Format::Native);
        for event in [slackbot(), bare()] {
            let (body, _) = render_one(Format::Native, &webhook, &event, None);
            let mut expected = stored(&event);
            expected
                .as_object_mut()
                .expect("object")
                .insert("webhook_id".into(), json!("crm"));
            assert_eq!(body, expected);
        }
    }

    #[test]
    fn a_batching_webhook_gets_an_events_array_even_for_one_event() {
        let mut webhook = webhook(Format::Native);
        webhook.batch.max_events = 50;
        let env = envelope(&webhook);
        let (london, slack) = (chrome_mac_london(), slackbot());
        let link = launch_link();

        let one = render(Format::Native, &[item(&london, Some(&link))], &env);
        let one: Value = serde_json::from_slice(&one.body).expect("json");
        assert_eq!(keys(&one), ["events", "webhook_id"]);
        assert_eq!(one["webhook_id"], "crm");
        let single = fixtures::render_one(
            Format::Native,
            &fixtures::webhook(Format::Native),
            &london,
            Some(&link),
        )
        .0;
        assert_eq!(one["events"], json!([single]));

        let two = render(
            Format::Native,
            &[item(&london, Some(&link)), item(&slack, None)],
            &env,
        );
        let two: Value = serde_json::from_slice(&two.body).expect("json");
        let events = two["events"].as_array().expect("array");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["id"], london.id.to_string());
        assert_eq!(events[1]["id"], slack.id.to_string());
        assert_eq!(events[1]["bot"]["name"], "Slackbot");
        assert!(events[1].get("link_meta").is_none());
    }

    #[test]
    fn several_items_for_a_single_event_webhook_are_all_sent_not_dropped() {
        let webhook = webhook(Format::Native);
        let (a, b) = (chrome_mac_london(), bare());
        let out = render(
            Format::Native,
            &[item(&a, None), item(&b, None)],
            &envelope(&webhook),
        );
        let body: Value = serde_json::from_slice(&out.body).expect("json");
        assert_eq!(body["events"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn a_stored_event_is_sent_byte_for_byte_with_the_keys_added_at_its_end() {
        let webhook = webhook(Format::Native);
        let link = launch_link();
        // As stored, with a field this version does not know (from a later one).
        let stored = br#"{"id":"019ac3f0-5b1b-7c3e-9a4d-2f6e8b1c0d3e","kind":"human","later":[1,{"a":"}"}]} "#;
        let item = super::StoredItem {
            json: stored,
            link: Some(&link),
        };
        let out = super::render_stored(&[item], &envelope(&webhook));
        let body = String::from_utf8(out.body).expect("utf-8");
        assert!(
            body.starts_with(r#"{"id":"019ac3f0-5b1b-7c3e-9a4d-2f6e8b1c0d3e","kind":"human","later":[1,{"a":"}"}],"webhook_id":"crm","link_meta":{"id":"12345","#),
            "{body}"
        );
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["later"], json!([1, {"a": "}"}]));

        let empty = super::StoredItem {
            json: b"{ }",
            link: None,
        };
        let out = super::render_stored(&[empty], &envelope(&webhook));
        assert_eq!(out.body, br#"{"webhook_id":"crm"}"#);
    }
}
