//! Pingora's selection algorithms (round robin, random, consistent hash)
//! behind [`PeerSelector`].
//!
//! [`LoadBalancer`] is generic over its algorithm and knows backends by
//! address; the adapter erases the algorithm, so an upstream can hold
//! whichever its config names, and maps Pingora's backends back to the
//! group's members.

use super::{Eligible, PeerSelector};
use crate::peer::Member;
use pingora_core::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora_load_balancing::discovery::Static;
use pingora_load_balancing::selection::{BackendIter, BackendSelection};
use pingora_load_balancing::{Backend, Backends, Extensions, LoadBalancer};
use std::collections::BTreeSet;
use std::sync::Arc;

/// How far a selection walks the algorithm's order before giving up. Every
/// peer of an upstream is reached well within this for the supported sizes
/// (the fallback order of weighted algorithms is pseudo-random, so allow
/// several times the peer count).
const MAX_SELECTION_STEPS: usize = 256;

/// A [`LoadBalancer`] running the algorithm `S` over `group`, behind the
/// [`PeerSelector`] seam.
pub fn selector<S>(group: &[Arc<Member>]) -> Box<dyn PeerSelector>
where
    S: BackendSelection + Send + Sync + 'static,
    S::Iter: BackendIter,
{
    let backends: BTreeSet<Backend> = group.iter().map(|m| backend_of(m)).collect();
    // Health is switchyard's own (selection accepts eligible peers only),
    // so the view has no health registry.
    Box::new(loaded::<S>(Backends::new(Static::new(backends))))
}

impl<S> PeerSelector for LoadBalancer<S>
where
    S: BackendSelection + Send + Sync + 'static,
    S::Iter: BackendIter,
{
    fn select<'a>(
        &self,
        key: &[u8],
        group: &'a [Arc<Member>],
        eligible: Eligible,
    ) -> Option<&'a Arc<Member>> {
        // A scan of the group first: without an eligible peer, the selector
        // would walk its whole step budget to find none.
        if !group.iter().any(|m| eligible.accepts(m)) {
            return None;
        }
        let chosen = self.select_with(key, MAX_SELECTION_STEPS, |backend, _| {
            member_of(group, backend).is_some_and(|m| eligible.accepts(m))
        })?;
        member_of(group, &chosen)
    }
}

/// The member of `group` that `backend` stands for. A linear scan: groups
/// have a handful of peers, where comparing addresses in order beats
/// hashing one.
#[inline]
fn member_of<'a>(group: &'a [Arc<Member>], backend: &Backend) -> Option<&'a Arc<Member>> {
    let addr = backend.addr.as_inet()?;
    group.iter().find(|m| m.peer.addr == *addr)
}

fn backend_of(member: &Member) -> Backend {
    Backend {
        addr: PingoraAddr::Inet(member.peer.addr),
        weight: usize::from(member.weight),
        ext: Extensions::new(),
    }
}

/// A load balancer whose (static) membership has been loaded.
fn loaded<S>(backends: Backends) -> LoadBalancer<S>
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
