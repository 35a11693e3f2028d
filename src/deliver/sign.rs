//! Standard Webhooks signing: the `webhook-signature` header that receivers verify with
//! the public reference libraries.
//!
//! The signed content is `{msg_id}.{timestamp}.{body}`. Symmetric signatures (`v1,`,
//! HMAC-SHA256) are keyed with the bytes after `whsec_`, already decoded by `config`;
//! asymmetric ones (`v1a,`, ed25519) are made with a `whsk_` secret key and verified
//! with its `whpk_` public key, so that a receiver holds nothing that can sign. During
//! a key rotation a webhook has several keys and the header carries one signature per
//! key, space-separated (every `v1` first, then every `v1a`), so that receivers
//! holding either the old or the new key accept the request. Nothing here
//! touches the network or the clock: delivery chooses the id and the timestamp, and
//! signs the exact bytes it sends.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::{SecretKey, SigningKey};

/// The `webhook-signature` header value: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`
/// for each of `keys`, then `v1a,<base64 ed25519 signature of id.timestamp.body>` for
/// each of `secret_keys`, space-separated. No keys: an empty string.
pub fn signature(
    keys: &[SigningKey],
    secret_keys: &[SecretKey],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let timestamp = timestamp.to_string();
    let mut out = String::with_capacity(keys.len() * 48 + secret_keys.len() * 92);
    for key in keys {
        // HMAC takes keys of any length, so this never fails; a key it refused would
        // be left out rather than sign with something else.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key.0) else {
            continue;
        };
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str("v1,");
        STANDARD.encode_string(mac.finalize().into_bytes(), &mut out);
    }
    if !secret_keys.is_empty() {
        let mut content = Vec::with_capacity(msg_id.len() + timestamp.len() + body.len() + 2);
        content.extend_from_slice(msg_id.as_bytes());
        content.push(b'.');
        content.extend_from_slice(timestamp.as_bytes());
        content.push(b'.');
        content.extend_from_slice(body);
        for key in secret_keys {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str("v1a,");
            STANDARD.encode_string(key.sign(&content), &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(whsec: &str) -> SigningKey {
        let b64 = whsec.strip_prefix("whsec_").expect("a whsec_ test key");
        SigningKey(STANDARD.decode(b64).expect("base64 test key"))
    }

    const SPEC_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const SPEC_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const SPEC_TIMESTAMP: i64 = 1649367553;
    const SPEC_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SPEC_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        let sig = signature(&[key(SPEC_SECRET)], &[], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY);
        assert_eq!(sig, SPEC_SIGNATURE);
    }

    #[test]
    fn two_keys_give_two_signatures_in_key_order() {
        let other = SigningKey(b"a second key, during rotation".to_vec());
        let sig = signature(
            &[key(SPEC_SECRET), other.clone()],
            &[],
            SPEC_ID,
            SPEC_TIMESTAMP,
            SPEC_BODY,
        );
        let parts: Vec<&str> = sig.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], SPEC_SIGNATURE);
        assert!(parts[1].starts_with("v1,"));
        assert_ne!(parts[1], SPEC_SIGNATURE);
        assert_eq!(
            parts[1],
            signature(&[other], &[], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
        );
    }

    #[test]
    fn every_part_of_the_signed_content_counts() {
        let k = [key(SPEC_SECRET)];
        assert_ne!(
            signature(&k, &[], "msg_other", SPEC_TIMESTAMP, SPEC_BODY),
            SPEC_SIGNATURE
        );
        assert_ne!(
            signature(&k, &[], SPEC_ID, SPEC_TIMESTAMP + 1, SPEC_BODY),
            SPEC_SIGNATURE
        );
        assert_ne!(
            signature(&k, &[], SPEC_ID, SPEC_TIMESTAMP, b"{}"),
            SPEC_SIGNATURE
        );
    }

    #[test]
    fn a_v1a_signature_follows_the_v1_ones_and_verifies_with_the_public_key() {
        use ed25519_dalek::Verifier;
        let sk = SecretKey::generate();
        let sig = signature(
            &[key(SPEC_SECRET)],
            std::slice::from_ref(&sk),
            SPEC_ID,
            SPEC_TIMESTAMP,
            SPEC_BODY,
        );
        let (v1, v1a) = sig.split_once(' ').unwrap();
        assert_eq!(v1, SPEC_SIGNATURE);
        let raw = STANDARD.decode(v1a.strip_prefix("v1a,").unwrap()).unwrap();
        let public: [u8; 32] = STANDARD
            .decode(sk.public_key().strip_prefix("whpk_").unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let public = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
        let signed = format!(
            "{SPEC_ID}.{SPEC_TIMESTAMP}.{}",
            std::str::from_utf8(SPEC_BODY).unwrap()
        );
        let s = ed25519_dalek::Signature::from_slice(&raw).unwrap();
        assert!(public.verify(signed.as_bytes(), &s).is_ok());
        assert!(public.verify(b"other", &s).is_err());
    }

    #[test]
    fn no_keys_no_signature() {
        assert_eq!(signature(&[], &[], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY), "");
    }
}
