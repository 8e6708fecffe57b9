//! switchyard: an HTTP (L7) load balancer built on Pingora, and a library
//! to build one's own with hooks.
//!
//! The public API is small: [`Switchyard`] (build a balancer from the
//! command line or a [`Config`], register hook types, run it with the stock
//! binary's command line, signals, reload, daemon and hot upgrade),
//! [`config`] (the configuration file, typed) and [`hooks`] (the [`Hook`]
//! trait, the views a hook gets, the built-in types). Everything else is
//! the balancer's own and may change with any release.
//!
//! Inside, layers, each using only those below it:
//! - the core: `config` (the file, typed), `live` (the snapshot the request
//!   path reads, and its swap), `http` and `request` (the request path),
//!   `routing` and `hooks`, `upstream` and `peer` (selection, health, admin
//!   state), `admin` (the admin API and status views), `metrics`, `listen`
//!   (connection guard, drain), `resources`;
//! - `process`: the command line, preflight, readiness, signals, reload,
//!   upgrade, and the assembly of the Pingora server; nothing in the core
//!   imports it;
//! - `src/main.rs`: the stock binary, which only runs [`Switchyard`] and
//!   chooses the allocator.
//!
//! A request flows listener -> `http::proxy` (admission, status page,
//! routing by `routing`, the route's hooks) -> `upstream` selection over
//! the snapshot's peers -> Pingora proxies it -> `http::proxy` logging ->
//! `metrics` and the access log. Health flows the other way: `live::probes`
//! probes every peer -> its `peer::health::PeerHealth` record -> read by
//! selection, `/check`, the admin API and `switchyard_peer_up` alike. A
//! change (SIGHUP, `POST /reload`, an admin call, a DNS answer that changes
//! what a peer name gives) builds a new snapshot in `live` and swaps it in.

#![warn(missing_docs)]

pub(crate) mod admin;
pub mod config;
pub mod hooks;
pub(crate) mod http;
pub(crate) mod listen;
pub(crate) mod live;
pub(crate) mod metrics;
pub(crate) mod peer;
pub(crate) mod process;
pub(crate) mod request;
pub(crate) mod resources;
pub(crate) mod routing;
pub(crate) mod upstream;

pub use config::Config;
pub use hooks::Hook;
pub use process::switchyard::Switchyard;
