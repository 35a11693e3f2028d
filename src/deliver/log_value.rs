//! How the delivery log stores a value: its requests as JSON, LZ4-compressed.
//!
//! A busy webhook writes an attempt per click, and the JSON of attempts repeats itself
//! (the same keys, answer and event id prefixes), so compressed it takes a fraction of
//! the bytes sled has to write, keep and clean up. A value is `COMPRESSED`, the plain
//! length (u32, big-endian) and the LZ4 block; values written before compression (plain
//! JSON, starting with `[`) still read.

use super::log::Request;

/// The first byte of a compressed value; plain JSON starts with `[`.
const COMPRESSED: u8 = 1;
const HEAD: usize = 5;

/// The stored form of `requests`.
pub fn encode(requests: &[Request]) -> Vec<u8> {
    let json = serde_json::to_vec(requests).unwrap_or_default();
    let mut out = vec![0; HEAD + lz4_flex::block::get_maximum_output_size(json.len())];
    out[0] = COMPRESSED;
    out[1..HEAD].copy_from_slice(&(json.len() as u32).to_be_bytes());
    match lz4_flex::block::compress_into(&json, &mut out[HEAD..]) {
        Ok(n) => {
            out.truncate(HEAD + n);
            out
        }
        Err(_) => json,
    }
}

/// The requests of a stored value of either form; `None` if it is damaged.
pub fn decode(value: &[u8]) -> Option<Vec<Request>> {
    if value.first() != Some(&COMPRESSED) {
        return serde_json::from_slice(value).ok();
    }
    let len = u32::from_be_bytes(value.get(1..HEAD)?.try_into().ok()?) as usize;
    let mut json = Vec::new();
    crate::queue::unpack_lz4(&value[HEAD..], len, &mut json)?;
    serde_json::from_slice(&json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::log::Answer;

    fn requests(n: u64) -> Vec<Request> {
        (0..n)
            .map(|i| Request {
                at_ms: 1_796_400_000_000 + i,
                answer: Answer {
                    at: "2026-12-05T08:00:00.000Z".into(),
                    outcome: None,
                    status: Some(204),
                    latency_ms: 1,
                    error: None,
                    response: String::new(),
                },
                sending: Default::default(),
                events: vec![(i, 1, format!("01JFAKE0000000000000000{i:03}"))],
            })
            .collect()
    }

    #[test]
    fn a_value_reads_back_as_written_and_takes_a_fraction_of_its_json() {
        let r = requests(40);
        let v = encode(&r);
        assert_eq!(decode(&v).unwrap(), r);
        let json = serde_json::to_vec(&r).unwrap();
        assert!(
            v.len() * 3 < json.len(),
            "{} of {} bytes",
            v.len(),
            json.len()
        );
    }

    #[test]
    fn values_written_as_plain_json_still_read() {
        let r = requests(3);
        assert_eq!(decode(&serde_json::to_vec(&r).unwrap()).unwrap(), r);
    }

    #[test]
    fn a_damaged_value_is_none_never_a_panic_or_a_huge_allocation() {
        let v = encode(&requests(10));
        for cut in 0..v.len() {
            let _ = decode(&v[..cut]);
        }
        let mut lying = v.clone();
        lying[1..HEAD].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&lying).is_none());
        let mut flipped = v;
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        let _ = decode(&flipped);
        assert!(decode(&[COMPRESSED]).is_none());
    }
}
