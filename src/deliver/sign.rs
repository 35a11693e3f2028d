//! Standard Webhooks signing. (contract; being written)

use crate::config::SigningKey;

/// The `webhook-signature` header value: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`
/// for each key, space-separated.
pub fn signature(keys: &[SigningKey], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let _ = (keys, msg_id, timestamp, body);
    String::new()
}
