//! A webhook's ed25519 secret keys (`secret_key = "whsk_..."`), for the Standard Webhooks
//! asymmetric signatures (`v1a`), which a receiver verifies with the public key alone.
//!
//! The layout is Svix's (svix-webhooks, `EndpointSecret::serialize_secret_key` and
//! `serialize_public_key`): `whsk_` and the standard base64 of the 64-byte ed25519 secret
//! key as libsodium and `ed25519-compact` write it, the 32-byte seed followed by the
//! 32-byte public key; `whpk_` and the standard base64 of the 32-byte public key. A
//! `whsk_` of the 32-byte seed alone (the form the Standard Webhooks Go library reads)
//! is accepted too. A 64-byte key whose public half is not its seed's is refused: it
//! would sign with one key and be shown with another.
//!
//! The secret never prints: [`SecretKey`]'s `Debug` shows the public key only.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer;
use std::fmt;

use super::problems::Problems;
use super::values::OneOrMany;

/// An ed25519 signing key.
#[derive(Clone)]
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    /// A new key from the operating system's random numbers.
    pub fn generate() -> SecretKey {
        SecretKey(ed25519_dalek::SigningKey::from_bytes(&rand::random()))
    }

    /// The ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// `whpk_` and the base64 of the public key: what the receiver verifies with.
    pub fn public_key(&self) -> String {
        format!(
            "whpk_{}",
            STANDARD.encode(self.0.verifying_key().to_bytes())
        )
    }

    /// `whsk_` and the base64 of seed and public key (Svix's layout): for the
    /// configuration file only.
    pub fn expose(&self) -> String {
        format!("whsk_{}", STANDARD.encode(self.0.to_keypair_bytes()))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(***, {})", self.public_key())
    }
}

/// A webhook's `secret_key`: one, or several while rotating (each signs; the header
/// carries a `v1a` signature per key).
pub(super) fn secret_keys(value: Option<OneOrMany>, key: &str, p: &mut Problems) -> Vec<SecretKey> {
    let raw = value.map(OneOrMany::into_vec).unwrap_or_default();
    let mut keys = Vec::new();
    for (n, s) in raw.iter().enumerate() {
        let k = if raw.len() == 1 {
            format!("{key}.secret_key")
        } else {
            format!("{key}.secret_key[{n}]")
        };
        if let Some(sk) = p.check(&k, parse(s)) {
            keys.push(sk);
        }
    }
    keys
}

/// A `whsk_` key; an error says what is wrong without quoting it.
pub fn parse(s: &str) -> Result<SecretKey, String> {
    if s.starts_with("whpk_") {
        return Err(
            "is a public key (whpk_): give the secret key (whsk_) here, and the \
                    public key to the receiver"
                .into(),
        );
    }
    let Some(b64) = s.strip_prefix("whsk_") else {
        return Err(
            "must start with whsk_ (an ed25519 secret key: whsk_ + base64; \
                    `clicktap webhooks keygen` makes one)"
                .into(),
        );
    };
    let bytes = STANDARD
        .decode(b64)
        .map_err(|_| "is not whsk_ followed by base64".to_string())?;
    match bytes.len() {
        64 => {
            let pair: [u8; 64] = bytes
                .try_into()
                .map_err(|_| "is not 64 bytes".to_string())?;
            ed25519_dalek::SigningKey::from_keypair_bytes(&pair)
                .map(SecretKey)
                .map_err(|_| {
                    "its last 32 bytes are not the public key of its first 32 (the seed)"
                        .to_string()
                })
        }
        32 => {
            let seed: [u8; 32] = bytes
                .try_into()
                .map_err(|_| "is not 32 bytes".to_string())?;
            Ok(SecretKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
        }
        n => Err(format!(
            "decodes to {n} bytes; an ed25519 secret key is 64 (seed and public key) or 32 \
             (the seed)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032, section 7.1, test 1: the seed, its public key, and the signature of
    /// the empty message.
    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const SIGNATURE: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_svix_layout_and_the_seed_alone_read_as_the_same_key() {
        let mut pair = hex(SEED);
        pair.extend(hex(PUBLIC));
        let svix = parse(&format!("whsk_{}", STANDARD.encode(&pair))).unwrap();
        let seed = parse(&format!("whsk_{}", STANDARD.encode(hex(SEED)))).unwrap();
        let public = format!("whpk_{}", STANDARD.encode(hex(PUBLIC)));
        assert_eq!(svix.public_key(), public);
        assert_eq!(seed.public_key(), public);
        assert_eq!(svix.sign(b"").to_vec(), hex(SIGNATURE));
        assert_eq!(svix.expose(), format!("whsk_{}", STANDARD.encode(&pair)));
        assert!(!format!("{svix:?}").contains(&svix.expose()[5..]));
    }

    #[test]
    fn bad_keys_are_refused_without_being_quoted() {
        let mut pair = hex(SEED);
        pair.extend([7u8; 32]);
        let mismatched = format!("whsk_{}", STANDARD.encode(&pair));
        let short = format!("whsk_{}", STANDARD.encode([1u8; 16]));
        for (key, why) in [
            (mismatched.as_str(), "not the public key"),
            (short.as_str(), "decodes to 16 bytes"),
            ("whsk_***", "not whsk_ followed by base64"),
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "must start with whsk_",
            ),
            (
                "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
                "is a public key",
            ),
        ] {
            let e = parse(key).unwrap_err();
            assert!(e.contains(why), "{key}: {e}");
            assert!(!e.contains(&key[5..]), "{e}");
        }
    }

    #[test]
    fn a_generated_key_reads_back() {
        let k = SecretKey::generate();
        let again = parse(&k.expose()).unwrap();
        assert_eq!(again.public_key(), k.public_key());
        assert_ne!(SecretKey::generate().public_key(), k.public_key());
    }
}
