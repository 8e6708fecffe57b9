//! switchyard: an HTTP (L7) load balancer built on Pingora.
//!
//! Layers, each using only those below it:
//! - the core: [`config`] (the file, typed), [`live`] (the snapshot the
//!   request path reads, and its swap), [`http`] and [`request`] (the
//!   request path), [`routing`], [`upstream`] and [`peer`] (selection,
//!   health, admin state), [`admin`] (the admin API and status views),
//!   [`metrics`], [`listen`] (connection guard, drain), [`resources`];
//! - [`process`]: the command line, preflight, readiness, signals, reload,
//!   upgrade, and the assembly of the Pingora server; nothing in the core
//!   imports it;
//! - `src/main.rs`: the stock binary, which only wires these together and
//!   chooses the allocator.
//!
//! A request flows listener -> [`http::proxy`] (admission, status page,
//! routing by [`routing`]) -> [`upstream`] selection over the snapshot's
//! peers -> Pingora proxies it -> [`http::proxy`] logging -> [`metrics`].
//! Health flows the other way: [`live::probes`] probes every peer -> its
//! [`peer::health::PeerHealth`] record -> read by selection, `/check`, the
//! admin API and `switchyard_peer_up` alike. A change (SIGHUP, `POST
//! /reload`, an admin call, a DNS answer that changes what a peer name gives,
//! see [`live::discovery`]) builds a new snapshot in [`live`] and swaps it
//! in.

pub mod admin;
pub mod config;
pub mod hooks;
pub mod http;
pub mod listen;
pub mod live;
pub mod metrics;
pub mod peer;
pub mod process;
pub mod request;
pub mod resources;
pub mod routing;
pub mod upstream;

pub use config::Config;
pub use hooks::Hook;
pub use process::switchyard::Switchyard;
