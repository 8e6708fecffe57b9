//! Picking a peer: the seam between switchyard and Pingora's selection
//! algorithms.
//!
//! [`LoadBalancer`] is generic over its algorithm; [`PeerSelector`] erases
//! that so an upstream can hold whichever algorithm its config names.

use crate::config::Algorithm;
use pingora_load_balancing::selection::{
    BackendIter, BackendSelection, Consistent, Random, RoundRobin,
};
use pingora_load_balancing::{Backend, LoadBalancer};
use std::net::SocketAddr;
use std::sync::Arc;

/// How far a selection walks the algorithm's order before giving up. Every
/// peer of an upstream is reached well within this for the supported sizes
/// (the fallback order of weighted algorithms is pseudo-random, so allow
/// several times the peer count).
const MAX_SELECTION_STEPS: usize = 256;

/// Chooses among the peers of one group, in the order of its algorithm.
pub trait PeerSelector: Send + Sync {
    /// The first peer, in the algorithm's order for `key`, that `accept`
    /// takes. `key` matters only to hashing algorithms.
    fn select(&self, key: &[u8], accept: &dyn Fn(SocketAddr) -> bool) -> Option<SocketAddr>;
}

impl<S> PeerSelector for LoadBalancer<S>
where
    S: BackendSelection + Send + Sync + 'static,
    S::Iter: BackendIter,
{
    fn select(&self, key: &[u8], accept: &dyn Fn(SocketAddr) -> bool) -> Option<SocketAddr> {
        self.select_with(key, MAX_SELECTION_STEPS, |backend, _| {
            inet(backend).is_some_and(accept)
        })
        .as_ref()
        .and_then(inet)
    }
}

fn inet(backend: &Backend) -> Option<SocketAddr> {
    backend.addr.as_inet().copied()
}

/// A [`LoadBalancer`] over `backends` running the given algorithm, behind
/// the [`PeerSelector`] seam.
pub fn build_selector(
    algorithm: Algorithm,
    backends: pingora_load_balancing::Backends,
) -> Arc<dyn PeerSelector> {
    match algorithm {
        Algorithm::RoundRobin => Arc::new(loaded::<RoundRobin>(backends)),
        Algorithm::Random => Arc::new(loaded::<Random>(backends)),
        Algorithm::ConsistentHash => Arc::new(loaded::<Consistent>(backends)),
    }
}

/// A load balancer whose (static) membership has been loaded.
fn loaded<S>(backends: pingora_load_balancing::Backends) -> LoadBalancer<S>
where
    S: BackendSelection + Send + Sync + 'static,
    S::Iter: BackendIter,
{
    use futures::FutureExt;
    let balancer = LoadBalancer::<S>::from_backends(backends);
    // Static discovery answers without awaiting anything and cannot fail.
    match balancer.update().now_or_never() {
        Some(Ok(())) => {}
        Some(Err(e)) => log::error!("loading the static peer list failed: {e}"),
        None => log::error!("loading the static peer list did not complete at once"),
    }
    balancer
}
