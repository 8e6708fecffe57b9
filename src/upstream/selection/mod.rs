//! Picking a peer within one group of an upstream (its primaries, or its
//! backups), among the peers a request may go to now.
//!
//! [`Upstream::select`](super::Upstream::select) decides which group to
//! ask and what makes a peer [`Eligible`] (health, admin state, the peers
//! the request has tried); a [`PeerSelector`] only picks among those, in the
//! way its algorithm says. The algorithms that do not look at load
//! (round robin, random, consistent hash) are Pingora's, behind an adapter
//! ([`pingora`]); the ones that do are switchyard's own: `least_conn` and
//! `least_request` ([`least`]) read each peer's in-flight count, `ewma`
//! ([`ewma`]) its latency estimate too, which Pingora's selection cannot
//! see; they pick over the group's members directly, so a pick allocates,
//! hashes and locks nothing. Slow start ([`slow_start`]) thins the picks of
//! a peer that has just come back, whatever chose it.

pub mod draw;
pub mod ewma;
pub mod least;
pub mod pingora;
pub mod slow_start;
#[cfg(test)]
mod test_support;

use super::TriedPeers;
use crate::config::{Algorithm, UpstreamConfig};
use crate::peer::Member;
use pingora_load_balancing::selection::{Consistent, Random, RoundRobin};
use slow_start::SlowStart;
use std::sync::Arc;

/// Which peers of a group a request may go to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eligible {
    /// The peers the request has already tried: never again.
    pub tried: TriedPeers,
    /// Only UP peers (`false` only for `fail_open`, with no peer UP).
    pub require_up: bool,
    /// Only peers with fewer requests in flight (`max_requests`);
    /// `usize::MAX`: any.
    pub max_in_flight: usize,
}

impl Eligible {
    /// Whether the request may go to `member`: not tried yet, in rotation
    /// (not drained or disabled by an operator), if required UP, and below
    /// the limit of requests in flight, if any. (The count may move between
    /// this look and the request's start: [`Peer::start_request_within`]
    /// settles it.)
    ///
    /// [`Peer::start_request_within`]: crate::peer::Peer::start_request_within
    #[inline]
    pub fn accepts(self, member: &Member) -> bool {
        !self.tried.contains(member.index)
            && member.peer.in_rotation()
            && (!self.require_up || member.peer.health.is_up())
            && (self.max_in_flight == usize::MAX || member.peer.in_flight() < self.max_in_flight)
    }

    /// The same, whatever the peers have in flight.
    #[inline]
    pub fn at_any_load(self) -> Eligible {
        Eligible {
            max_in_flight: usize::MAX,
            ..self
        }
    }
}

/// Chooses among the peers of one group, in the way of its algorithm.
pub trait PeerSelector: Send + Sync {
    /// A member of `group` (the members this selector was built for) that
    /// `eligible` accepts, for a request with hash key `key` (which matters
    /// only to hashing algorithms); `None` when `eligible` accepts none.
    fn select<'a>(
        &self,
        key: &[u8],
        group: &'a [Arc<Member>],
        eligible: Eligible,
    ) -> Option<&'a Arc<Member>>;
}

/// One group of an upstream's peers (the primaries, or the backups) and the
/// selector its algorithm runs.
pub struct PeerGroup {
    members: Vec<Arc<Member>>,
    selector: Box<dyn PeerSelector>,
    /// `None` without `slow_start`.
    slow_start: Option<SlowStart>,
}

impl PeerGroup {
    /// `members` picked as the upstream's `settings` say; `None` when there
    /// are none.
    pub fn new(settings: &UpstreamConfig, members: Vec<Arc<Member>>) -> Option<PeerGroup> {
        if members.is_empty() {
            return None;
        }
        let selector: Box<dyn PeerSelector> = match settings.algorithm {
            Algorithm::RoundRobin => pingora::selector::<RoundRobin>(&members),
            Algorithm::Random => pingora::selector::<Random>(&members),
            Algorithm::ConsistentHash => pingora::selector::<Consistent>(&members),
            Algorithm::LeastConn => Box::<least::LeastConn>::default(),
            Algorithm::LeastRequest => Box::new(least::LeastRequest::new(&members)),
            Algorithm::Ewma => Box::new(ewma::Ewma::new(&members)),
        };
        Some(PeerGroup {
            members,
            selector,
            slow_start: SlowStart::of(settings),
        })
    }

    /// Whether `eligible` accepts a member of this group.
    pub fn accepts_any(&self, eligible: Eligible) -> bool {
        self.members.iter().any(|m| eligible.accepts(m))
    }

    /// The member for a request with hash key `key` that `eligible`
    /// accepts, if any.
    #[inline]
    pub fn select(&self, key: &[u8], eligible: Eligible) -> Option<&Arc<Member>> {
        let chosen = self.selector.select(key, &self.members, eligible)?;
        match &self.slow_start {
            None => Some(chosen),
            Some(slow_start) => Some(slow_start.thin(chosen, eligible, |others| {
                self.selector.select(key, &self.members, others)
            })),
        }
    }
}
