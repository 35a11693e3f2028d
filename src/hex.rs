//! Bytes as lower-case hex: session ids, the configuration's SHA-256, a sent body's.

/// `[0xab, 0x01]` as `"ab01"`.
pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of `bytes`, as hex.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    encode(&sha2::Sha256::digest(bytes))
}
