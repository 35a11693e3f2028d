//! Unique clicks: whether an event is a visitor's first on a link within
//! `enrich.unique_window`.
//!
//! A visitor is the full client address and the user agent. With the link (its host and
//! path) they are hashed with SipHash under the 128-bit key of a std `RandomState` made
//! when the table is, at the start of the process (seeded from the operating system's
//! random source). The key is held only in this table's memory: never written, logged or
//! sent, so a hash names no one outside the process, and a restart forgets every visitor
//! (each one's next click counts as unique again). The table holds nothing else: 64-bit
//! hashes and the times of first clicks.
//!
//! The table is a fixed number of buckets of [`WAYS`] slots each (set-associative, as a
//! CPU cache is), as many as `enrich.unique_max_bytes` holds, so its memory is that many
//! bytes whatever the traffic. Each visitor has two buckets, chosen by two parts of its
//! hash, and goes into the one holding fewer visitors: two choices keep the buckets even,
//! so that three quarters full the table has forgotten about one visitor in 60,000 early,
//! where one bucket per visitor would have forgotten one in 120 at half full. A check
//! reads the two buckets (four cache lines) and nothing else: it never rehashes,
//! allocates or scans the table. A slot is free when it is empty or its window has
//! passed. When both buckets are full, the slot with the oldest first click of the two is
//! given to the new visitor: the one pushed out is forgotten before the end of its window,
//! so its next click counts as unique again (counted in
//! `clicktap_enrich_unique_evicted_total`). A full table therefore errs one way only: it
//! may call a repeat unique, never a first click a repeat. Only a hash that happens to
//! match another visitor's in the same buckets would, with odds under one in 2^40 per
//! click at the default size.
//!
//! Every enrichment thread checks against the same table: any thread may take any click
//! from the channel, so a visitor's clicks do not meet in one thread's memory. The table
//! is split into [`SHARDS`] shards by the hash's top bits, each behind its own lock, held
//! for one check's sixteen comparisons (tens of nanoseconds): two threads rarely want the
//! same shard, and when they do one waits for that long. A shard's slots are allocated
//! when it first sees a visitor, so a clicktap with unique clicks off holds none.
//!
//! Windows are measured on the monotonic clock: a step of the wall clock neither ends nor
//! stretches one. A window starts at the visitor's first click and is not extended by
//! repeats (a visitor clicking every ten minutes counts once an hour, not once).

use parking_lot::Mutex;
use prometheus::{IntCounter, IntGauge};
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::click::cap;
use crate::metrics::Metrics;

/// Slots per bucket: the visitors whose hashes meet in one place before the oldest is
/// pushed out. Eight 16-byte slots are two cache lines.
pub const WAYS: usize = 8;

/// Locks the table is split under.
pub const SHARDS: usize = 64;

/// A slot: the visitor's hash (0: empty) and the time of its first click in
/// milliseconds since the table was made.
type Slot = [u64; 2];

const SLOT_BYTES: u64 = std::mem::size_of::<Slot>() as u64;

/// The smallest table: one bucket per shard.
pub const MIN_BYTES: u64 = (SHARDS * WAYS) as u64 * SLOT_BYTES;

/// The visitors seen within their windows, shared by the enrichment threads.
pub struct UniqueTable {
    key: RandomState,
    shards: Box<[Mutex<Vec<Slot>>]>,
    /// Buckets per shard.
    buckets: usize,
    origin: Instant,
    counts: Counts,
}

/// The table's metrics (see the metrics table in docs/operations.md).
struct Counts {
    entries: IntGauge,
    bytes: IntGauge,
    evicted: IntCounter,
    first: IntCounter,
    repeat: IntCounter,
}

impl UniqueTable {
    /// A table of at most `max_bytes` of slots (at least [`MIN_BYTES`]; a remainder that
    /// does not make a bucket in every shard is not used).
    pub fn new(max_bytes: u64, metrics: &Metrics) -> UniqueTable {
        let buckets = (max_bytes / (SHARDS * WAYS) as u64 / SLOT_BYTES).max(1);
        // Configuration allows at most 16 GiB: 2^21 buckets per shard.
        let buckets = usize::try_from(buckets).unwrap_or(1 << 21);
        metrics
            .enrich_unique_max_bytes
            .set((buckets * SHARDS * WAYS) as i64 * SLOT_BYTES as i64);
        UniqueTable {
            key: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(Vec::new())).collect(),
            buckets,
            origin: Instant::now(),
            counts: Counts {
                entries: metrics.enrich_unique_entries.clone(),
                bytes: metrics.enrich_unique_bytes.clone(),
                evicted: metrics.enrich_unique_evicted.clone(),
                first: metrics.enrich_unique_first.clone(),
                repeat: metrics.enrich_unique_repeat.clone(),
            },
        }
    }

    /// The keyed hash of a visitor (address and user agent) on a link (host and path).
    /// The host is compared without case, as the event writes it.
    pub fn visitor(
        &self,
        ip: Option<IpAddr>,
        user_agent: Option<&[u8]>,
        host: Option<&[u8]>,
        path: &str,
    ) -> u64 {
        let mut h = self.key.build_hasher();
        ip.hash(&mut h);
        user_agent.hash(&mut h);
        match host {
            Some(host) => {
                let mut lower = [0u8; cap::HOST];
                let n = host.len().min(cap::HOST);
                lower[..n].copy_from_slice(&host[..n]);
                lower[..n].make_ascii_lowercase();
                h.write_u8(1);
                lower[..n].hash(&mut h);
                // A Host longer than the cap is no host an event names; what is past the
                // cap still tells it from another.
                host[n..].hash(&mut h);
            }
            None => h.write_u8(0),
        }
        path.hash(&mut h);
        h.finish()
    }

    /// Whether `visitor` (a [`UniqueTable::visitor`] hash) is seen for the first time
    /// within `window`; it is remembered from now on when it is.
    pub fn first(&self, visitor: u64, window: Duration) -> bool {
        let now = self.origin.elapsed().as_millis() as u64;
        self.first_at(visitor, now, window.as_millis() as u64)
    }

    /// [`UniqueTable::first`] at `now` (milliseconds on the table's clock).
    fn first_at(&self, visitor: u64, now: u64, window: u64) -> bool {
        // 0 marks an empty slot.
        let visitor = visitor.max(1);
        let mut shard = self.shards[(visitor >> 58) as usize % SHARDS].lock();
        if shard.is_empty() {
            *shard = vec![[0; 2]; self.buckets * WAYS];
            self.counts
                .bytes
                .add((self.buckets * WAYS) as i64 * SLOT_BYTES as i64);
        }
        // Two buckets from two parts of the hash; the shard took its top bits.
        let buckets = self.buckets as u64;
        let pair = [
            (visitor % buckets) as usize * WAYS,
            (visitor.rotate_right(29) % buckets) as usize * WAYS,
        ];
        // Another thread may have read the clock a moment later and written first.
        let live = |s: &Slot| s[0] != 0 && now.saturating_sub(s[1]) < window;
        for start in pair {
            if let Some(slot) = shard[start..start + WAYS]
                .iter_mut()
                .find(|s| s[0] == visitor)
            {
                if live(slot) {
                    self.counts.repeat.inc();
                    return false;
                }
                slot[1] = now;
                self.counts.first.inc();
                return true;
            }
        }
        // The bucket holding fewer visitors within their windows takes the new one, in an
        // empty slot or one whose window has passed; with both full, the oldest slot of
        // the two goes.
        let held = |start: usize| {
            shard[start..start + WAYS]
                .iter()
                .filter(|s| live(s))
                .count()
        };
        let start = if held(pair[1]) < held(pair[0]) {
            pair[1]
        } else {
            pair[0]
        };
        let bucket = &shard[start..start + WAYS];
        let index = match bucket.iter().position(|s| s[0] == 0) {
            Some(i) => start + i,
            None => match bucket.iter().position(|s| !live(s)) {
                Some(i) => start + i,
                None => pair
                    .into_iter()
                    .flat_map(|b| b..b + WAYS)
                    .min_by_key(|i| shard[*i][1])
                    .unwrap_or(start),
            },
        };
        let slot = &mut shard[index];
        if slot[0] == 0 {
            self.counts.entries.inc();
        } else if live(slot) {
            self.counts.evicted.inc();
        }
        *slot = [visitor, now];
        self.counts.first.inc();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    fn table(max_bytes: u64) -> (UniqueTable, Metrics) {
        let m = Metrics::new();
        (UniqueTable::new(max_bytes, &m), m)
    }

    #[test]
    fn a_visitor_is_unique_once_per_window_counted_from_its_first_click() {
        let (t, m) = table(1 << 20);
        let v = t.visitor(
            Some("81.2.69.142".parse().unwrap()),
            Some(b"Mozilla/5.0"),
            Some(b"sho.rt"),
            "/r/x",
        );
        assert!(t.first_at(v, 1_000, HOUR));
        assert!(!t.first_at(v, 1_001, HOUR));
        // Repeats do not stretch the window.
        assert!(!t.first_at(v, 1_000 + HOUR / 2, HOUR));
        assert!(!t.first_at(v, 1_000 + HOUR - 1, HOUR));
        assert!(t.first_at(v, 1_000 + HOUR, HOUR));
        assert!(!t.first_at(v, 1_000 + HOUR + 1, HOUR));
        // A shorter window, as a reload sets it, applies to what is already held.
        assert!(t.first_at(v, 1_000 + HOUR + 10, 10));
        // A thread whose clock read came a moment earlier than the slot's sees a repeat.
        assert!(!t.first_at(v, 999, HOUR));
        assert_eq!(m.enrich_unique_first.get(), 3);
        assert_eq!(m.enrich_unique_repeat.get(), 5);
        assert_eq!(m.enrich_unique_entries.get(), 1);
        assert_eq!(m.enrich_unique_evicted.get(), 0);
    }

    #[test]
    fn address_agent_host_and_path_each_make_another_visitor_but_host_case_does_not() {
        let (t, _) = table(1 << 20);
        let ip = Some("81.2.69.142".parse().unwrap());
        let base = t.visitor(ip, Some(b"A"), Some(b"sho.rt"), "/x");
        assert_eq!(base, t.visitor(ip, Some(b"A"), Some(b"Sho.RT"), "/x"));
        let others = [
            t.visitor(
                Some("81.2.69.143".parse().unwrap()),
                Some(b"A"),
                Some(b"sho.rt"),
                "/x",
            ),
            t.visitor(None, Some(b"A"), Some(b"sho.rt"), "/x"),
            t.visitor(ip, Some(b"B"), Some(b"sho.rt"), "/x"),
            t.visitor(ip, None, Some(b"sho.rt"), "/x"),
            t.visitor(ip, Some(b"A"), Some(b"sho.rt:8080"), "/x"),
            t.visitor(ip, Some(b"A"), None, "/x"),
            t.visitor(ip, Some(b"A"), Some(b"sho.rt"), "/y"),
            // The parts are kept apart: nothing moves from one into the next.
            t.visitor(ip, Some(b"A"), Some(b"sho.rt/"), "x"),
        ];
        for o in others {
            assert_ne!(o, base);
        }
        // The key is the process's own: another table hashes the same visitor elsewhere.
        let (other, _) = table(1 << 20);
        assert_ne!(base, other.visitor(ip, Some(b"A"), Some(b"sho.rt"), "/x"));
    }

    #[test]
    fn a_full_bucket_gives_the_oldest_slot_away_and_never_calls_a_first_click_a_repeat() {
        // The smallest table: one bucket per shard. Hashes with the same top six bits
        // share a shard, and so its only bucket.
        let (t, m) = table(MIN_BYTES);
        let v = |n: u64| (7 << 58) | n;
        for n in 1..=WAYS as u64 {
            assert!(t.first_at(v(n), n, HOUR));
        }
        assert_eq!(m.enrich_unique_entries.get(), WAYS as i64);
        // A ninth visitor takes the oldest's place (visitor 1, first seen at 1).
        assert!(t.first_at(v(100), 100, HOUR));
        assert_eq!(m.enrich_unique_evicted.get(), 1);
        // Visitor 1 was forgotten: its repeat counts as unique (an error the safe way),
        // and it pushes out the next oldest, visitor 2.
        assert!(t.first_at(v(1), 101, HOUR));
        assert_eq!(m.enrich_unique_evicted.get(), 2);
        for n in 3..=WAYS as u64 {
            assert!(!t.first_at(v(n), 102, HOUR), "visitor {n} still held");
        }
        assert_eq!(m.enrich_unique_entries.get(), WAYS as i64);
        // Once windows pass, slots are reused without evicting anyone.
        assert!(t.first_at(v(200), 3 + HOUR, HOUR));
        assert_eq!(m.enrich_unique_evicted.get(), 2);
        assert!(
            !t.first_at(v(4), 3 + HOUR, HOUR),
            "the expired slot went first"
        );
    }

    #[test]
    fn the_table_is_the_bytes_it_was_given_allocated_per_shard_on_first_use() {
        let (t, m) = table(1 << 20);
        assert_eq!(m.enrich_unique_max_bytes.get(), 1 << 20);
        assert_eq!(m.enrich_unique_bytes.get(), 0);
        t.first_at(1, 0, HOUR);
        assert_eq!(m.enrich_unique_bytes.get(), (1 << 20) / SHARDS as i64);
        let mut n = 0u64;
        while m.enrich_unique_bytes.get() < 1 << 20 {
            n += 1;
            t.first_at(n.wrapping_mul(0x9e37_79b9_7f4a_7c15), 0, HOUR);
        }
        assert_eq!(m.enrich_unique_bytes.get(), 1 << 20);
        let held: usize = t.shards.iter().map(|s| s.lock().len()).sum();
        assert_eq!(held as u64 * SLOT_BYTES, 1 << 20);
        // A size that is no whole number of buckets per shard keeps the whole ones.
        let (_, m) = table((1 << 20) + 100);
        assert_eq!(m.enrich_unique_max_bytes.get(), 1 << 20);
        let (_, m) = table(1);
        assert_eq!(m.enrich_unique_max_bytes.get(), MIN_BYTES as i64);
    }

    /// How full the table gets before it forgets visitors early: the figures in docs/events.md ("Unique clicks").
    #[test]
    fn the_default_size_forgets_hardly_anyone_early_until_three_quarters_full() {
        let bytes = 32 << 20;
        let (t, m) = table(bytes);
        let slots = bytes / SLOT_BYTES;
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            // xorshift: hashes spread as SipHash's do.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut inserted = 0u64;
        let mut report = Vec::new();
        for fill in [50u64, 70, 75, 80, 85, 90] {
            while inserted < slots * fill / 100 {
                t.first_at(next(), 0, HOUR);
                inserted += 1;
            }
            report.push((fill, m.enrich_unique_evicted.get() as f64 / inserted as f64));
        }
        eprintln!("fill %, share of visitors evicted: {report:?}");
        // Measured: none at 70% (1.47 million visitors), 1.5 in 100,000 at 75%, 2 in
        // 10,000 at 80%, 0.15% at 85%, 0.7% at 90%.
        assert_eq!(report[1].1, 0.0, "{report:?}");
        assert!(report[2].1 < 1e-4, "{report:?}");
        assert!(report[3].1 < 1e-3, "{report:?}");
    }
}
