//! switchyard: an HTTP (L7) load balancer built on Pingora.
//!
//! A request flows listener -> [`http::proxy`] (status page, routing by
//! [`router`]) -> [`upstream`] (an UP primary peer, else a backup, else 503)
//! -> Pingora proxies it -> [`http::proxy`] logging -> [`metrics`].
//!
//! Health flows the other way: Pingora's health-check service runs
//! [`peer::probe::ProbeCheck`] for every peer -> the peer's
//! [`peer::health::PeerHealth`] record and metrics -> read by selection, the
//! [`status`] page and `switchyard_peer_up` alike.

pub mod admin;
pub mod allocator;
pub mod config;
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
