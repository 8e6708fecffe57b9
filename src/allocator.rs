//! The memory allocator of the `switchyard` binary: jemalloc, tuned for
//! Pingora's request path.
//!
//! A module of the binary, not of the library: a library must not choose
//! the allocator of the programs that use it. The benchmark's minimal
//! Pingora balancer includes this same file, so that both allocate the same
//! way. Against glibc's malloc, jemalloc serves Pingora's many
//! short-lived request allocations 10-20% faster (bench/results.md);
//! mimalloc was as fast but held about twice the memory per idle client
//! connection.

use tikv_jemallocator::Jemalloc;

#[global_allocator]
static ALLOCATOR: Jemalloc = Jemalloc;

/// jemalloc's options, read before `main`.
/// - `tcache_max:65536`: Pingora allocates a 64 KiB body buffer for every
///   upstream response and frees it when the response is done; jemalloc's
///   thread cache keeps only blocks up to 32 KiB by default, so each of
///   those went to the arena (under its mutex) and back.
/// - `background_thread:true,dirty_decay_ms:1000`: memory freed after a
///   burst of connections goes back to the system within about a second,
///   by a background thread. Without them jemalloc returns memory only as
///   a side effect of later allocations, so an idle balancer kept the peak
///   of its last burst (120 MiB after 5,000 connections closed; 20 MiB
///   with these).
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: Option<&'static std::ffi::c_char> =
    Some(unsafe { &*c"tcache_max:65536,background_thread:true,dirty_decay_ms:1000".as_ptr() });
