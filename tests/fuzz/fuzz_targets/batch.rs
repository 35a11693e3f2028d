//! Stored-batch decoding: `clicktap::queue::decode_batch`, what every read of the queue
//! does with a sled value, on values the queue never wrote.
//!
//! Inputs are raw bytes, or values built in either layout of src/queue/batch.rs (plain,
//! or LZ4 with its head) from arbitrary entries, so that the fuzzer reaches past the
//! head checks; the built ones may lie in their counts and lengths. What must hold:
//! never a panic and no allocation the value's size does not justify (run it under an
//! address-space limit, `ulimit -v`, to catch one: jemalloc reserves without
//! committing); a value shorter than its count is corrupt; a value that decodes yields
//! events that lie inside it, numbered from the key on; a value built honestly decodes
//! to exactly its entries.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

/// The first byte of a compressed value (src/queue/batch.rs).
const LZ4: u8 = 0xC4;

#[derive(Arbitrary, Debug)]
enum Value {
    Raw(Vec<u8>),
    Plain {
        entries: Vec<(u64, Vec<u8>)>,
        /// Replaces the true count when set.
        count: Option<u32>,
        trailing: Vec<u8>,
    },
    Compressed {
        entries: Vec<(u64, Vec<u8>)>,
        count: Option<u32>,
        /// Replaces the true plain length when set.
        plain_len: Option<u32>,
        /// Bytes cut from the end of the compressed block.
        cut: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Sequence numbers a queue can reach (2^48 events), not the whole u64 range.
    first_seq: u64,
    value: Value,
}

fn body(entries: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (at, bytes) in entries {
        b.extend_from_slice(&at.to_be_bytes());
        b.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        b.extend_from_slice(bytes);
    }
    b
}

fuzz_target!(|input: Input| {
    let first_seq = input.first_seq % (1 << 48);
    let (value, honest) = match input.value {
        Value::Raw(v) => (v, None),
        Value::Plain {
            entries,
            count,
            trailing,
        } => {
            let n = entries.len() as u32;
            let mut v = count.unwrap_or(n).to_be_bytes().to_vec();
            v.extend_from_slice(&body(&entries));
            let honest = (count.is_none_or(|c| c == n) && v[0] != LZ4).then_some(entries);
            v.extend_from_slice(&trailing);
            (v, honest)
        }
        Value::Compressed {
            entries,
            count,
            plain_len,
            cut,
        } => {
            let n = entries.len() as u32;
            let plain = body(&entries);
            let mut block = lz4_block(&plain);
            block.truncate(block.len().saturating_sub(cut as usize));
            let mut v = vec![LZ4];
            v.extend_from_slice(&count.unwrap_or(n).to_be_bytes());
            v.extend_from_slice(&plain_len.unwrap_or(plain.len() as u32).to_be_bytes());
            v.extend_from_slice(&block);
            let honest = (count.is_none_or(|c| c == n)
                && plain_len.is_none_or(|l| l as usize == plain.len())
                && cut == 0)
                .then_some(entries);
            (v, honest)
        }
    };
    let decoded = clicktap::queue::decode_batch(first_seq, &value);
    // Shorter than the count that opens every value: damage, never a batch of none.
    assert!(
        value.len() >= 4 || decoded.is_err(),
        "{value:?} decoded as a batch"
    );
    match decoded {
        Ok(events) => {
            for (i, e) in events.iter().enumerate() {
                assert_eq!(e.seq, first_seq + i as u64, "numbered from the key on");
            }
            if let Some(entries) = honest {
                let got: Vec<(u64, &[u8])> = events.iter().map(|e| (e.at_ms, e.bytes())).collect();
                let want: Vec<(u64, &[u8])> =
                    entries.iter().map(|(at, b)| (*at, b.as_slice())).collect();
                assert_eq!(got, want, "an honest value decodes to its entries");
            }
        }
        Err(e) => {
            assert!(honest.is_none(), "an honest value must decode, got {e}");
        }
    }
});

/// An LZ4 block as the queue writes it. lz4_flex is clicktap's own dependency; the
/// block format is LZ4's, so the reference encoder of any LZ4 library would do.
fn lz4_block(plain: &[u8]) -> Vec<u8> {
    lz4_flex::block::compress(plain)
}
