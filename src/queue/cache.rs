//! Keeps sled's page cache near `queue.cache_size`.
//!
//! sled 0.34 hands page accesses to its cache's LRU lazily: each of its 256 shards
//! gathers accesses and evicts only once 64 have come in. A scan reaches each leaf
//! about once, and an append a few times, so a leaf's shard rarely gets its 64 and
//! pages stay in memory whatever the cache size: reading a backlog of 100k events
//! grew clicktap to 110 MiB with an 8 MiB cache, growing with the backlog. Touching
//! each value a few times more (a `get` of its key, a read of an in-memory page)
//! gives each leaf's shard enough accesses to evict, and holds memory near the cache
//! size for a fraction of a microsecond per event.

/// Leaves of an append-only tree hold 8 to 17 values; 8 reads of each value give a
/// leaf's shard its 64 accesses.
pub const READ_TOUCHES: usize = 7;
/// An insert already reaches its leaf (and the index above it) a few times. Touching
/// what appends write costs an enrichment thread about a quarter of its throughput in
/// the criterion bench (the leaf being filled gets evicted and read back), invisible
/// in the proxy's throughput, and holds clicktap at 48-57 MiB at saturation instead of
/// 65-74 (measured side by side, `benches/run.sh --contenders f,d`).
pub const WRITE_TOUCHES: usize = 5;

/// Reads `key` `times` times so that sled's LRU sees its page accessed.
pub fn touch(tree: &sled::Tree, key: &[u8], times: usize) {
    for _ in 0..times {
        let _ = tree.get(key);
    }
}
