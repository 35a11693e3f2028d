//! A bounded map an enrichment thread keeps to itself, for readings that many clicks
//! share: a link's parts, a user agent's.
//!
//! Each thread owns its memo, so there is no lock. The bound is in bytes, an estimate of
//! what the keys and readings hold, not in entries: a request head can be a megabyte, so
//! a count of entries bounds nothing. A reading too large for its share of the memo is
//! used once and not kept. When the memo reaches its bound it starts over: that keeps
//! the memory fixed without bookkeeping, and a shortener's hot links and current
//! browsers are back in it within a few clicks.

use std::collections::HashMap;

/// What a remembered reading holds, in bytes, besides its key.
pub trait Weight {
    fn weight(&self) -> usize;
}

/// The bytes an entry costs besides its key's and its reading's own: the map's slot,
/// the allocations' headers and the reading's fixed part.
const ENTRY_OVERHEAD: usize = 128;

/// The largest part of the budget one entry may take to be kept.
const MAX_SHARE: usize = 64;

pub struct Memo<V> {
    seen: HashMap<Box<[u8]>, V>,
    /// The estimated bytes of the entries in `seen`.
    bytes: usize,
    budget: usize,
}

impl<V: Clone + Weight> Memo<V> {
    /// A memo holding about `budget` bytes at most.
    pub fn new(budget: usize) -> Memo<V> {
        Memo {
            seen: HashMap::new(),
            bytes: 0,
            budget,
        }
    }

    /// The reading remembered for `key`, or `read`'s, remembered when it succeeds and
    /// is small enough.
    pub fn get_or_read<E>(
        &mut self,
        key: &[u8],
        read: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        if let Some(hit) = self.seen.get(key) {
            return Ok(hit.clone());
        }
        let reading = read()?;
        let weight = key.len() + reading.weight() + ENTRY_OVERHEAD;
        if weight > self.budget / MAX_SHARE {
            return Ok(reading);
        }
        if self.bytes + weight > self.budget {
            self.seen.clear();
            self.bytes = 0;
        }
        self.seen.insert(key.into(), reading.clone());
        self.bytes += weight;
        Ok(reading)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Appends `part` to a memo key so that no two different part lists make the same key:
/// each part is its length, then its bytes; an absent part is a length no part has.
pub fn push_part(key: &mut Vec<u8>, part: Option<&[u8]>) {
    match part {
        Some(bytes) => {
            key.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            key.extend_from_slice(bytes);
        }
        None => key.extend_from_slice(&u32::MAX.to_le_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Weight for u32 {
        fn weight(&self) -> usize {
            4
        }
    }

    impl Weight for String {
        fn weight(&self) -> usize {
            self.len()
        }
    }

    #[test]
    fn a_reading_is_made_once_and_then_remembered() {
        let mut memo = Memo::new(64 << 10);
        let mut reads = 0;
        for _ in 0..3 {
            let v: Result<u32, ()> = memo.get_or_read(b"k", || {
                reads += 1;
                Ok(7)
            });
            assert_eq!(v, Ok(7));
        }
        assert_eq!(reads, 1);
    }

    #[test]
    fn a_failed_reading_is_not_remembered() {
        let mut memo: Memo<u32> = Memo::new(64 << 10);
        assert_eq!(memo.get_or_read(b"k", || Err("no")), Err("no"));
        assert_eq!(memo.len(), 0);
        assert_eq!(memo.get_or_read::<()>(b"k", || Ok(1)), Ok(1));
    }

    #[test]
    fn the_memo_stays_within_its_bytes() {
        let budget = 64 << 10;
        let mut memo = Memo::new(budget);
        for i in 0..10_000u32 {
            let reading = "r".repeat(i as usize % 700);
            let key = [i.to_le_bytes().as_slice(), &[b'k'; 100]].concat();
            let _ = memo.get_or_read::<()>(&key, || Ok(reading));
            assert!(memo.bytes() <= budget);
            let held: usize = memo
                .seen
                .iter()
                .map(|(k, v)| k.len() + v.len() + ENTRY_OVERHEAD)
                .sum();
            assert_eq!(held, memo.bytes(), "the estimate is what the entries hold");
        }
        assert!(memo.len() > 50, "small readings are kept: {}", memo.len());
    }

    #[test]
    fn an_oversized_reading_is_used_but_not_kept() {
        let mut memo = Memo::new(64 << 10);
        let _ = memo.get_or_read::<()>(b"small", || Ok("s".to_string()));
        let big = "b".repeat(2 << 10);
        let mut reads = 0;
        for _ in 0..2 {
            let got = memo.get_or_read::<()>(b"big", || {
                reads += 1;
                Ok(big.clone())
            });
            assert_eq!(got, Ok(big.clone()));
        }
        assert_eq!(reads, 2, "read each time");
        assert_eq!(memo.len(), 1, "and the small one still kept");
    }

    #[test]
    fn keys_of_different_parts_differ() {
        let key = |parts: &[Option<&[u8]>]| {
            let mut k = Vec::new();
            for p in parts {
                push_part(&mut k, *p);
            }
            k
        };
        assert_ne!(
            key(&[Some(b"ab"), Some(b"c")]),
            key(&[Some(b"a"), Some(b"bc")])
        );
        assert_ne!(key(&[None, Some(b"")]), key(&[Some(b""), None]));
        assert_eq!(key(&[Some(b"a"), None]), key(&[Some(b"a"), None]));
    }
}
