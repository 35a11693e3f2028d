//! Secrets: wrapped so that they never print, and webhook signing keys checked for
//! strength.
//!
//! [`Secret`]'s `Debug` and `Display` print a mask, so a configuration can be logged
//! whole without leaking one, and no problem message quotes a secret's value: it names
//! the key and says what is wrong.

use base64::Engine;
use http::HeaderValue;
use std::fmt;

use super::problems::Problems;
use super::values::OneOrMany;
use super::webhook::Format;

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A Standard Webhooks signing key: the bytes after `whsec_`, base64-decoded.
#[derive(Clone)]
pub struct SigningKey(pub Vec<u8>);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

/// The shortest key accepted. An HMAC is only as strong as its key: `whsec_` alone
/// decodes to nothing, and anyone can sign with an empty key. The Standard Webhooks
/// libraries make 24-byte keys; 16 (128 bits) is the floor of what resists guessing.
const MIN_KEY_BYTES: usize = 16;

/// A webhook's `secret`: its signing keys, and the first secret as written, which `tly`
/// and `rebrandly` also send in a header.
pub(super) fn secrets(
    secret: Option<OneOrMany>,
    format: Option<Format>,
    key: &str,
    p: &mut Problems,
) -> (Vec<SigningKey>, Option<Secret>) {
    let raw = secret.map(OneOrMany::into_vec).unwrap_or_default();
    if format.is_some_and(Format::sends_secret)
        && let Some(first) = raw.first()
        && HeaderValue::try_from(first.as_str()).is_err()
    {
        p.push(
            format!("{key}.secret"),
            "is sent as a header by this format and must be visible ASCII",
        );
    }
    let mut keys = Vec::new();
    for (n, s) in raw.iter().enumerate() {
        let k = if raw.len() == 1 {
            format!("{key}.secret")
        } else {
            format!("{key}.secret[{n}]")
        };
        if let Some(b) = p.check(&k, signing_key(s, format)) {
            keys.push(b);
        }
    }
    (keys, raw.into_iter().next().map(Secret::new))
}

fn signing_key(s: &str, format: Option<Format>) -> Result<SigningKey, String> {
    if s.is_empty() {
        return Err("is empty; leave secret out for unsigned requests".into());
    }
    // tly and rebrandly send the secret itself in a header; any text will do there,
    // and it signs as its own bytes when it is not a whsec_ key.
    match s.strip_prefix("whsec_") {
        Some(b64) => {
            let key = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| "is not whsec_ followed by base64".to_string())?;
            if key.len() < MIN_KEY_BYTES {
                return Err(format!(
                    "decodes to {} bytes; a Standard Webhooks key needs at least \
                     {MIN_KEY_BYTES}, or anyone could forge its signatures (make one with \
                     `openssl rand -base64 24` after whsec_)",
                    key.len()
                ));
            }
            Ok(SigningKey(key))
        }
        None if format.is_some_and(Format::sends_secret) => Ok(SigningKey(s.as_bytes().to_vec())),
        None => Err("must start with whsec_ (a Standard Webhooks secret: whsec_ + base64)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_key_passes_and_short_keys_do_not() {
        // The Standard Webhooks specification's own test key: 24 bytes.
        let spec = signing_key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", None).unwrap();
        assert_eq!(spec.0.len(), 24);
        let sixteen = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode([7u8; 16])
        );
        assert!(signing_key(&sixteen, None).is_ok());
        let fifteen = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode([7u8; 15])
        );
        assert!(
            signing_key(&fifteen, None)
                .unwrap_err()
                .starts_with("decodes to 15 bytes")
        );
        assert!(
            signing_key("whsec_", None)
                .unwrap_err()
                .starts_with("decodes to 0 bytes")
        );
        assert!(
            signing_key("", Some(Format::Tly))
                .unwrap_err()
                .starts_with("is empty")
        );
        assert!(signing_key("plain", Some(Format::Rebrandly)).is_ok());
        assert!(signing_key("plain", Some(Format::Native)).is_err());
    }
}
