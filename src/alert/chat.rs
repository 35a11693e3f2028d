//! Alerts by chat: a Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat,
//! Discord's `/slack` endpoint, Google Chat), `POST {"text": ...}`.
//!
//! The request goes through delivery's client and SSRF guard (`delivery.
//! allow_private_targets` lifts it), with the alert's `timeout`; at most
//! [`MAX_ANSWER`] bytes of the answer are read, and only a 2xx is a success.

use reqwest::Url;

use super::message::Message;

/// The most of an answer read: a chat answers `ok`.
const MAX_ANSWER: usize = 64 << 10;

pub async fn send(
    client: &reqwest::Client,
    url: &Url,
    allow_private: bool,
    m: &Message,
    timeout: std::time::Duration,
) -> Result<(), String> {
    crate::deliver::guard::check_url(url, allow_private).map_err(|e| e.to_string())?;
    let body = serde_json::json!({ "text": m.text() });
    let mut resp = client
        .post(url.clone())
        .timeout(timeout)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("chat: {}", e.without_url()))?;
    let status = resp.status();
    let mut read = 0usize;
    while let Ok(Some(chunk)) = resp.chunk().await {
        read += chunk.len();
        if read > MAX_ANSWER {
            break;
        }
    }
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("chat: answered {status}"))
    }
}
