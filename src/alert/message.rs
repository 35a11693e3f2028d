//! What an alert says: a subject and a few lines of text, the same for mail and chat
//! (chat gets them as one `text`). Each names the clicktap (host and proxy address),
//! the webhook, what happened, why, and what a person can do about it.

use crate::clock::rfc3339_ms;
use crate::config::AlertEvent;
use crate::notice::{Change, Notice};

/// The longest text sent: a last error quoting a receiver's answer stays short.
const MAX_BODY: usize = 4096;

#[derive(Debug, Clone)]
pub struct Message {
    pub event: AlertEvent,
    /// The webhook it is about, if it is about one.
    pub webhook: Option<String>,
    pub subject: String,
    pub body: String,
}

impl Message {
    /// The message for a webhook's change.
    pub fn webhook(n: &Notice, origin: &str) -> Message {
        let (event, subject, advice) = match n.change {
            Change::Alerting => (
                AlertEvent::Alerting,
                format!("clicktap: webhook {} is failing", n.webhook),
                "Its events are retried on its retry schedule; if it fails without a success \
                 for disable_after, it is disabled.",
            ),
            Change::Disabled => (
                AlertEvent::Disabled,
                format!("clicktap: webhook {} is disabled", n.webhook),
                "Nothing more is sent to it; its events are kept in the queue (within \
                 queue.retention) until it is reactivated: clicktap webhooks reactivate <id>, \
                 or POST /api/v1/webhooks/<id>/reactivate.",
            ),
            Change::Recovered => (
                AlertEvent::Recovered,
                format!("clicktap: webhook {} recovered", n.webhook),
                "Its events are delivered again.",
            ),
        };
        let body = format!(
            "{subject}\n\nwebhook: {} ({})\nwhen: {}\nwhy: {}\n\n{advice}\n\n{origin}",
            n.webhook,
            n.url,
            rfc3339_ms(n.at_ms),
            n.reason,
        );
        Message {
            event,
            webhook: Some(n.webhook.clone()),
            subject,
            body: cap(body),
        }
    }

    /// Clicks dropped since the last look, by reason (`(reason, count)`).
    pub fn dropping(counts: &[(&str, u64)], origin: &str) -> Message {
        let total: u64 = counts.iter().map(|c| c.1).sum();
        let lines: Vec<String> = counts
            .iter()
            .filter(|c| c.1 > 0)
            .map(|(why, n)| format!("{why}: {n}"))
            .collect();
        let subject = format!("clicktap: clicks are being dropped ({total} so far)");
        let body = format!(
            "{subject}\n\n{}\n\nVisitors are still redirected; these clicks are not stored \
             and no webhook will get them. See clicktap_capture_dropped_total and \
             clicktap_queue_dropped_total, the queue's bounds (queue.max_bytes, \
             queue.max_events) and the disk's free space (queue.min_free_bytes).\n\n{origin}",
            lines.join("\n")
        );
        Message {
            event: AlertEvent::Dropping,
            webhook: None,
            subject,
            body: cap(body),
        }
    }

    /// Drops have stopped, after `total` in the spell.
    pub fn no_longer_dropping(total: u64, origin: &str) -> Message {
        let subject = format!("clicktap: clicks are no longer dropped ({total} were)");
        Message {
            event: AlertEvent::Dropping,
            webhook: None,
            body: format!("{subject}\n\n{origin}"),
            subject,
        }
    }

    /// Adds how many messages the rate limit held back before this one.
    pub fn with_suppressed(mut self, n: u64, max: u32, per: std::time::Duration) -> Message {
        if n > 0 {
            self.body.push_str(&format!(
                "\n\n({n} earlier alerts were not sent: this alert sends at most {max} per {})",
                humantime::format_duration(per)
            ));
        }
        self
    }

    /// The chat text: the subject, then the body's lines after it.
    pub fn text(&self) -> String {
        self.body.clone()
    }
}

fn cap(mut s: String) -> String {
    if s.len() > MAX_BODY {
        let mut end = MAX_BODY;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Which clicktap speaks: the host's name and the proxy's address.
pub fn origin(listen: std::net::SocketAddr) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer it is given.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let host = if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "unknown host".into()
    };
    format!("-- clicktap on {host}, proxy {listen}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_message_says_what_why_and_what_to_do() {
        let n = Notice {
            webhook: "crm".into(),
            url: "https://hooks.example.com/clicks".into(),
            change: Change::Disabled,
            reason: "answered 410 Gone".into(),
            at_ms: 0,
        };
        let m = Message::webhook(&n, "-- clicktap on h").with_suppressed(
            3,
            5,
            std::time::Duration::from_secs(3600),
        );
        assert_eq!(m.subject, "clicktap: webhook crm is disabled");
        assert!(m.body.contains("why: answered 410 Gone"), "{}", m.body);
        assert!(m.body.contains("reactivate"), "{}", m.body);
        assert!(
            m.body.contains("3 earlier alerts were not sent"),
            "{}",
            m.body
        );
        let long = Notice {
            reason: "x".repeat(10_000),
            ..n
        };
        assert!(Message::webhook(&long, "").body.len() <= MAX_BODY + 3);
    }
}
