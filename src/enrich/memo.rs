//! A bounded map an enrichment thread keeps to itself, for readings that many clicks
//! share: a link's parts, a user agent's.
//!
//! Each thread owns its memo, so there is no lock. When it reaches its bound it starts
//! over: that keeps the memory fixed without bookkeeping, and a shortener's hot links
//! and current browsers are back in it within a few clicks.

use std::collections::HashMap;

pub struct Memo<V> {
    seen: HashMap<Box<[u8]>, V>,
    capacity: usize,
}

impl<V: Clone> Memo<V> {
    pub fn new(capacity: usize) -> Memo<V> {
        Memo {
            seen: HashMap::new(),
            capacity,
        }
    }

    /// The reading remembered for `key`, or `read`'s, remembered when it succeeds.
    pub fn get_or_read<E>(
        &mut self,
        key: &[u8],
        read: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        if let Some(hit) = self.seen.get(key) {
            return Ok(hit.clone());
        }
        let reading = read()?;
        if self.seen.len() >= self.capacity {
            self.seen.clear();
        }
        self.seen.insert(key.into(), reading.clone());
        Ok(reading)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
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

    #[test]
    fn a_reading_is_made_once_and_then_remembered() {
        let mut memo = Memo::new(8);
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
        let mut memo: Memo<u32> = Memo::new(8);
        assert_eq!(memo.get_or_read(b"k", || Err("no")), Err("no"));
        assert_eq!(memo.len(), 0);
        assert_eq!(memo.get_or_read::<()>(b"k", || Ok(1)), Ok(1));
    }

    #[test]
    fn the_memo_stays_bounded() {
        let mut memo = Memo::new(4);
        for i in 0..10u32 {
            let _ = memo.get_or_read::<()>(&i.to_le_bytes(), || Ok(i));
            assert!(memo.len() <= 4);
        }
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
