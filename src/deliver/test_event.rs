//! A test event, as T.LY's "Send Test" and Rebrandly's "send test event" do it: a
//! synthetic click in the webhook's real format, signed and authenticated as usual,
//! sent now, and the receiver's answer handed back to the operator.
//!
//! It is marked as a test everywhere it can be: `kind: "test"` in the native format, an
//! `X-Clicktap-Test: true` header in every format (none of the four vendors documents a
//! marker of its own), and a link on the reserved `clicktap.test` host. It never enters
//! the queue, the metrics or the webhook's health: it tells about the receiver without
//! changing what clicktap counts. The delivery log keeps it, marked `test` (with `seq`
//! 0, as it has none), so that what was sent and answered can be read again later.

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::SystemTime;

use super::attempt::message_id;
use super::log::{Request, Sending};
use super::member::Member;
use super::sent::Sent;
use super::webhook::Webhook;
use crate::click::{
    Agent, ClickEvent, ClickKind, Client, Destination, EventType, LinkRef, Referrer,
};
use crate::queue::Stored;

/// The header every test request carries.
pub const HEADER: &str = "x-clicktap-test";

/// What the receiver made of a test event.
#[derive(Debug, Serialize)]
pub struct TestAnswer {
    pub event_id: String,
    pub message_id: String,
    pub delivered: bool,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// The first `delivery.log_body_bytes` of the answer.
    pub response: String,
    /// What was sent, secrets redacted, as the delivery log keeps it.
    pub sent: Option<Sent>,
}

/// A click that never happened: a person on Chrome for Windows following
/// `https://clicktap.test/test` to `https://example.com/`.
pub fn synthetic(at: SystemTime) -> ClickEvent {
    let id = uuid::Uuid::now_v7();
    let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
    ClickEvent {
        id,
        timestamp: humantime::format_rfc3339_millis(at).to_string(),
        event_type: EventType::LinkClicked,
        kind: ClickKind::Test,
        method: "GET".into(),
        status: 302,
        link: LinkRef {
            url: "https://clicktap.test/test".into(),
            scheme: "https".into(),
            host: "clicktap.test".into(),
            path: "/test".into(),
            query: None,
        },
        params: BTreeMap::new(),
        destination: Some(Destination {
            url: "https://example.com/".into(),
            host: Some("example.com".into()),
        }),
        referrer: Referrer {
            url: None,
            host: "direct".into(),
        },
        client: Client {
            ip: None,
            ip_version: None,
            raw_ip: None,
            ip_source: "socket".into(),
            user_agent: Some(ua.into()),
            prefetch: false,
        },
        agent: Agent {
            browser: Some("Chrome".into()),
            browser_version: Some("126.0.0.0".into()),
            os: Some("Windows 10".into()),
            os_version: Some("NT 10.0".into()),
            category: Some("pc".into()),
            vendor: Some("Google".into()),
            device_type: "desktop".into(),
        },
        bot: None,
        geo: None,
        truncated: Vec::new(),
        unique: None,
    }
}

impl Webhook {
    /// Sends a test event now and returns the receiver's answer.
    pub async fn test(&self) -> TestAnswer {
        let event = synthetic(SystemTime::now());
        let json = serde_json::to_vec(&event).unwrap_or_default();
        let at_ms = crate::clock::now_ms();
        let member =
            match Member::read(Stored::detached(0, at_ms, &json), self.reads_whole_events()) {
                Ok(m) => m,
                Err(e) => {
                    return TestAnswer {
                        event_id: event.id.to_string(),
                        message_id: String::new(),
                        delivered: false,
                        status: None,
                        latency_ms: 0,
                        error: Some(format!("the test event does not read back: {e}")),
                        response: String::new(),
                        sent: None,
                    };
                }
            };
        let members = [member];
        let o = self.send(&members).await;
        let message = message_id(self.id(), &members);
        let request = Request {
            at_ms: crate::clock::now_ms(),
            answer: o.answer(),
            sending: Sending {
                message_id: Some(message.clone()),
                test: true,
                replay: false,
                replay_of: None,
                sent: o.sent.clone(),
            },
            events: vec![(0, 1, event.id.to_string())],
        };
        // Written at once: an operator who sent a test looks for it in the log next.
        if let Err(e) = self
            .recorder
            .record(request)
            .and_then(|()| self.recorder.flush())
        {
            tracing::error!(webhook = self.id(), error = %e, "cannot write the delivery log");
        }
        TestAnswer {
            event_id: event.id.to_string(),
            message_id: message,
            delivered: o.delivered(),
            status: o.status,
            latency_ms: o.latency.as_millis() as u64,
            error: o.error,
            response: o.response,
            sent: o.sent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synthetic_event_reads_as_a_stored_event_of_kind_test() {
        let e = synthetic(SystemTime::now());
        let json = serde_json::to_vec(&e).unwrap();
        let back: ClickEvent = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, e);
        assert!(
            String::from_utf8(json)
                .unwrap()
                .contains(r#""kind":"test""#)
        );
        let m = Member::read(
            Stored::detached(0, 0, &serde_json::to_vec(&e).unwrap()),
            true,
        );
        assert_eq!(m.unwrap().head.kind, ClickKind::Test);
    }
}
