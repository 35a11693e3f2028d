//! The native format: clicktap's own event, as the queue stores it.
//!
//! Every field of [`ClickEvent`] is sent under its stored name, so the README's event
//! reference is also this payload's, and a receiver can replay a stored event through
//! the same code. Two keys are added: `webhook_id`, so that one receiver can serve
//! several webhooks, and `link_meta` when a `[[links]]` entry matched, so that the
//! operator's names for the link travel with the click.
//!
//! A webhook that batches (`batch.max_events > 1`) always gets
//! `{"webhook_id", "events": [...]}`, even for one event, so that its receiver parses
//! one shape; each element is the very object a single-event webhook would get.

use serde::Serialize;

use super::{Envelope, Item, Rendered, json};
use crate::click::ClickEvent;
use crate::config::{Format, LinkMeta};

#[derive(Serialize)]
struct Event<'a> {
    #[serde(flatten)]
    event: &'a ClickEvent,
    webhook_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    link_meta: Option<Meta<'a>>,
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

#[derive(Serialize)]
struct Batch<'a> {
    webhook_id: &'a str,
    events: Vec<Event<'a>>,
}

fn event<'a>(item: &Item<'a>, webhook_id: &'a str) -> Event<'a> {
    Event {
        event: item.event,
        webhook_id,
        link_meta: item.link.map(meta),
    }
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

pub(super) fn render(items: &[Item<'_>], env: &Envelope<'_>) -> Rendered {
    let webhook_id = env.webhook.id.as_str();
    // More items than a single-event webhook takes cannot happen (delivery batches up
    // to max_events); should it, the batch shape carries them all rather than drop any.
    let body = if env.webhook.batch.max_events > 1 || items.len() > 1 {
        json(
            Format::Native,
            &Batch {
                webhook_id,
                events: items.iter().map(|i| event(i, webhook_id)).collect(),
            },
        )
    } else {
        match items.first() {
            Some(item) => json(Format::Native, &event(item, webhook_id)),
            None => b"{}".to_vec(),
        }
    };
    Rendered {
        body,
        headers: Vec::new(),
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
}
