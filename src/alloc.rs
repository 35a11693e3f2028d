//! The memory allocator of every program built on this library: `clicktap` itself, its
//! tests and its benchmarks.
//!
//! jemalloc rather than glibc's malloc: a click's request buffers are allocated by a
//! proxy thread and freed by an enrichment thread, and sled copies leaves on every
//! insert. glibc serves both through its slow paths and arena locks (a quarter of an
//! enrichment thread's time); with jemalloc, clicktap with capture off went from
//! 0.70-0.73x to 0.88-0.96x of bare Pingora's requests/s (bare Pingora on jemalloc too,
//! `benches/bare_pingora.rs`), at the same memory.

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main`: two arenas rather than four per CPU. Every
/// arena keeps its own freed pages for a while; with eight on two cores clicktap held
/// 73-79 MiB at saturation, with two 43-50 MiB at the same throughput. An operator can
/// override it through the `_RJEM_MALLOC_CONF` environment variable.
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 10] = b"narenas:2\0";
