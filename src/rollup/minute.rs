//! One minute (or hour) of clicks: counts by kind, and the largest keys of each dimension (link,
//! destination host, country, device, browser, referrer host) with the rest summed as
//! `other`.
//!
//! A minute's stored record is bounded in bytes whatever visitors send: at most
//! [`TOP_KEPT`] keys per dimension, each cut to [`KEY_MAX`] bytes, so at most about
//! 6 × 50 × 140 bytes ≈ 41 KiB (measured at realistic cardinality: docs/operations.md, "Stats").
//! While a minute is still being counted its keys are kept in memory up to
//! [`KEYS_IN_MEMORY`] per dimension, so that the kept fifty are the true largest of the
//! minute rather than the first fifty seen; only a restart in the middle of a minute
//! makes its tops approximate (its totals stay exact).
//!
//! The record is a small binary layout of LEB128 numbers and length-prefixed keys;
//! one that does not decode reads as nothing (counted by the caller), never a panic.

use std::collections::HashMap;

/// The dimensions, in the order the record stores them and the API names them.
pub const DIMENSIONS: [&str; 6] = [
    "links",
    "destinations",
    "countries",
    "devices",
    "browsers",
    "referrers",
];

/// The kinds a stored click can be, in the record's order (`ClickKind::ALL`).
pub const KINDS: usize = 5;

/// Keys kept per dimension in a stored minute.
pub const TOP_KEPT: usize = 50;
/// Bytes kept of a key (a link path can be 8 KiB).
pub const KEY_MAX: usize = 128;
/// Keys counted per dimension while a minute (or hour) is in memory; later ones count
/// as other. The rollup holds at most six records open (three minutes, three hours),
/// so at most 6 × 6 × 2,000 keys of at most 128 bytes: about 14 MiB at worst.
pub const KEYS_IN_MEMORY: usize = 2_000;

/// The layout's version, first byte of every record.
const VERSION: u8 = 1;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub keys: HashMap<String, u64>,
    /// Clicks whose key was not kept.
    pub other: u64,
}

impl Counts {
    fn add(&mut self, key: &str, n: u64) {
        let key = cut(key);
        if let Some(c) = self.keys.get_mut(key) {
            *c += n;
        } else if self.keys.len() < KEYS_IN_MEMORY {
            self.keys.insert(key.to_string(), n);
        } else {
            self.other += n;
        }
    }

    /// The `n` largest keys, largest first (ties by key, so answers are stable).
    pub fn top(&self, n: usize) -> Vec<(&str, u64)> {
        let order = |a: &(&str, u64), b: &(&str, u64)| b.1.cmp(&a.1).then(a.0.cmp(b.0));
        let mut all: Vec<(&str, u64)> = self.keys.iter().map(|(k, c)| (k.as_str(), *c)).collect();
        // The current hour's record is cut every second: select, then sort the few.
        if all.len() > n && n > 0 {
            all.select_nth_unstable_by(n - 1, order);
        }
        all.truncate(n);
        all.sort_unstable_by(order);
        all
    }

    /// Adds another minute's counts of the same dimension (a window's tops).
    pub fn merge(&mut self, other: &Counts) {
        for (k, c) in &other.keys {
            match self.keys.get_mut(k) {
                Some(n) => *n += c,
                None => {
                    self.keys.insert(k.clone(), *c);
                }
            }
        }
        self.other += other.other;
    }
}

/// A key cut to [`KEY_MAX`] bytes on a character boundary.
fn cut(key: &str) -> &str {
    if key.len() <= KEY_MAX {
        return key;
    }
    let mut end = KEY_MAX;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

/// One click as the rollup reads it.
pub struct Click<'a> {
    /// Index into `ClickKind::ALL`.
    pub kind: usize,
    /// One key per dimension, in [`DIMENSIONS`] order.
    pub keys: [&'a str; 6],
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Minute {
    pub kinds: [u64; KINDS],
    pub dims: [Counts; 6],
}

impl Minute {
    pub fn add(&mut self, c: &Click) {
        self.kinds[c.kind] += 1;
        for (d, key) in self.dims.iter_mut().zip(c.keys) {
            d.add(key, 1);
        }
    }

    pub fn clicks(&self) -> u64 {
        self.kinds.iter().sum()
    }

    /// The stored record: the [`TOP_KEPT`] largest keys of each dimension, the rest
    /// summed into `other`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.push(VERSION);
        for k in self.kinds {
            put(&mut out, k);
        }
        for d in &self.dims {
            let top = d.top(TOP_KEPT);
            let kept: u64 = top.iter().map(|(_, c)| c).sum();
            let all: u64 = d.keys.values().sum::<u64>() + d.other;
            put(&mut out, all - kept);
            put(&mut out, top.len() as u64);
            for (key, c) in top {
                put(&mut out, key.len() as u64);
                out.extend_from_slice(key.as_bytes());
                put(&mut out, c);
            }
        }
        out
    }

    /// Only the counts by kind, in the layout of a record's start.
    pub fn encode_kinds(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.push(VERSION);
        for k in self.kinds {
            put(&mut out, k);
        }
        out
    }

    /// Only the counts by kind of a stored record (they come first).
    pub fn decode_kinds(b: &[u8]) -> Option<[u64; KINDS]> {
        let (&version, mut rest) = b.split_first()?;
        if version != VERSION {
            return None;
        }
        let mut kinds = [0; KINDS];
        for k in kinds.iter_mut() {
            *k = take(&mut rest)?;
        }
        Some(kinds)
    }

    /// A stored record; `None` when it does not decode.
    pub fn decode(b: &[u8]) -> Option<Minute> {
        let (&version, mut rest) = b.split_first()?;
        if version != VERSION {
            return None;
        }
        let mut m = Minute::default();
        for k in m.kinds.iter_mut() {
            *k = take(&mut rest)?;
        }
        for d in m.dims.iter_mut() {
            d.other = take(&mut rest)?;
            let n = take(&mut rest)?;
            if n > TOP_KEPT as u64 {
                return None;
            }
            for _ in 0..n {
                let len = take(&mut rest)? as usize;
                if len > rest.len() {
                    return None;
                }
                let (key, after) = rest.split_at(len);
                rest = after;
                let key = std::str::from_utf8(key).ok()?.to_string();
                *d.keys.entry(key).or_default() += take(&mut rest)?;
            }
        }
        rest.is_empty().then_some(m)
    }
}

/// LEB128.
fn put(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn take(b: &mut &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        n |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click(kind: usize, link: &str) -> Click<'_> {
        Click {
            kind,
            keys: [
                link,
                "example.com",
                "DE",
                "desktop/Windows 10",
                "Chrome",
                "direct",
            ],
        }
    }

    #[test]
    fn a_minute_counts_kinds_and_keys_and_reads_back_as_written() {
        let mut m = Minute::default();
        m.add(&click(0, "/r/a"));
        m.add(&click(0, "/r/a"));
        m.add(&click(1, "/r/b"));
        m.add(&click(3, "/r/a"));
        assert_eq!(m.kinds, [2, 1, 0, 1, 0]);
        assert_eq!(m.clicks(), 4);
        assert_eq!(m.dims[0].top(10), [("/r/a", 3), ("/r/b", 1)]);
        assert_eq!(m.dims[2].top(10), [("DE", 4)]);
        assert_eq!(Minute::decode_kinds(&m.encode()), Some(m.kinds));
        assert_eq!(Minute::decode_kinds(&m.encode_kinds()), Some(m.kinds));
        assert_eq!(Minute::decode(&m.encode()), Some(m));
    }

    #[test]
    fn a_stored_minute_keeps_the_fifty_largest_keys_and_sums_the_rest_as_other() {
        let mut m = Minute::default();
        // 200 links: link i clicked i+1 times, so the largest are 150..200.
        for i in 0..200usize {
            let link = format!("/r/{i:03}");
            for _ in 0..=i {
                m.add(&click(0, &link));
            }
        }
        let total = m.clicks();
        let back = Minute::decode(&m.encode()).unwrap();
        assert_eq!(back.clicks(), total, "totals stay exact");
        let links = &back.dims[0];
        assert_eq!(links.keys.len(), TOP_KEPT);
        assert_eq!(links.top(1), [("/r/199", 200)]);
        assert!(links.keys.contains_key("/r/150") && !links.keys.contains_key("/r/149"));
        let kept: u64 = links.keys.values().sum();
        assert_eq!(
            kept + links.other,
            total,
            "every click is in a key or other"
        );
    }

    #[test]
    fn keys_are_cut_to_their_bound_on_a_character_boundary() {
        let long = "/r/".to_string() + &"é".repeat(200);
        let mut m = Minute::default();
        m.add(&click(0, &long));
        let key = m.dims[0].keys.keys().next().unwrap().clone();
        assert!(key.len() <= KEY_MAX && key.len() > KEY_MAX - 2);
        assert!(long.starts_with(&key));
        assert!(m.encode().len() < 300);
    }

    #[test]
    fn a_record_that_does_not_decode_reads_as_nothing() {
        let m = {
            let mut m = Minute::default();
            m.add(&click(2, "/r/x"));
            m.encode()
        };
        assert!(Minute::decode(&[]).is_none());
        assert!(Minute::decode(&[9]).is_none(), "unknown version");
        for cut in 1..m.len() {
            assert!(Minute::decode(&m[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = m.clone();
        longer.push(0);
        assert!(Minute::decode(&longer).is_none());
        assert!(
            Minute::decode(&[
                1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ])
            .is_none()
        );
    }
}
