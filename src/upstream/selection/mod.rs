//! Picking a peer within one group of an upstream (its primaries, or its
//! backups), among the peers a request may go to now.
//!
//! [`Upstream::select`](super::Upstream::select) decides which group to
//! ask and what makes a peer [`Eligible`] (health, admin state, the peers
//! the request has tried); a [`PeerSelector`] only picks among those, in the
//! way its algorithm says. Every algorithm is switchyard's own, built once
//! per group and snapshot over the group's members as the snapshot has them
//! (an operator's weight change makes a new snapshot, so it applies to the
//! next request): `round_robin` and `random` over a weighted schedule
//! ([`weighted`]), `consistent_hash` over a ketama ring ([`ketama`]),
//! `least_conn` and `least_request` over the in-flight counts ([`least`]),
//! `ewma` over each peer's latency estimate too ([`ewma`]); [`draw`] holds
//! the draws they share. A pick allocates nothing, takes no lock and hashes
//! nothing but a `consistent_hash` key (CRC32). Slow start
//! ([`slow_start`]) thins the picks of a peer that has just come back,
//! whatever chose it.

pub mod draw;
pub mod ewma;
pub mod ketama;
pub mod least;
pub mod slow_start;
#[cfg(test)]
mod testing;
pub mod weighted;

use super::TriedPeers;
use crate::config::{Algorithm, UpstreamConfig};
use crate::peer::Member;
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
    /// only to hashing algorithms; empty when the request has none);
    /// `None` when `eligible` accepts none.
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
            Algorithm::RoundRobin => Box::new(weighted::RoundRobin::new(&members)),
            Algorithm::Random => Box::new(weighted::Random::new(&members)),
            Algorithm::ConsistentHash => Box::new(ketama::ConsistentHash::new(&members)),
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

#[cfg(test)]
mod tests {
    use super::testing::{group, in_flight, member, picks, ANY_UP};
    use super::*;
    use crate::peer::admin::AdminState;
    use crate::peer::health::PeerHealth;

    const EVERY_ALGORITHM: [Algorithm; 6] = [
        Algorithm::RoundRobin,
        Algorithm::Random,
        Algorithm::ConsistentHash,
        Algorithm::LeastConn,
        Algorithm::LeastRequest,
        Algorithm::Ewma,
    ];

    /// An upstream's settings with `algorithm`.
    fn settings(algorithm: Algorithm) -> UpstreamConfig {
        let mut settings: UpstreamConfig =
            serde_yaml::from_str("peers: [127.0.0.1:1]").expect("settings");
        settings.algorithm = algorithm;
        settings
    }

    #[test]
    fn no_picker_chooses_a_peer_at_max_in_flight() {
        let group = group("unit-full", &[1, 1, 1]);
        let below_two = Eligible {
            max_in_flight: 2,
            ..ANY_UP
        };
        let _busy = in_flight(&group, &[2, 0, 3]);
        for algorithm in EVERY_ALGORITHM {
            let selector = PeerGroup::new(&settings(algorithm), group.clone()).expect("members");
            let seen = picks(selector.selector.as_ref(), &group, below_two, 50);
            assert!(seen.iter().all(|&i| i == 1), "{algorithm:?}: {seen:?}");
        }
        let _full = in_flight(&group[1..2], &[2]);
        for algorithm in EVERY_ALGORITHM {
            let selector = PeerGroup::new(&settings(algorithm), group.clone()).expect("members");
            assert!(
                selector.select(b"key", below_two).is_none(),
                "{algorithm:?}"
            );
            let any_load = below_two.at_any_load();
            assert!(selector.select(b"key", any_load).is_some(), "{algorithm:?}");
        }
    }

    #[test]
    fn no_picker_chooses_a_tried_drained_or_down_peer() {
        for weights in [[1, 1, 1, 1], [1, 2, 1, 3]] {
            let group = group(&format!("unit-eligible-{}", weights[1]), &weights);
            // The least loaded peers are the ones refused.
            let _busy = in_flight(&group, &[0, 0, 5, 5]);
            group[1].peer.set_admin_state(AdminState::Draining);
            let mut tried = TriedPeers::NONE;
            tried.add(0);
            let eligible = Eligible { tried, ..ANY_UP };
            for algorithm in EVERY_ALGORITHM {
                let selector =
                    PeerGroup::new(&settings(algorithm), group.clone()).expect("members");
                let seen = picks(selector.selector.as_ref(), &group, eligible, 200);
                assert!(seen.iter().all(|&i| i >= 2), "{algorithm:?}: {seen:?}");
                // Every eligible member gets picks, unless load says otherwise.
                let load_blind = ![
                    Algorithm::LeastConn,
                    Algorithm::LeastRequest,
                    Algorithm::Ewma,
                ]
                .contains(&algorithm);
                if load_blind {
                    assert!(seen.contains(&2) && seen.contains(&3), "{algorithm:?}");
                }
                let mut none_left = tried;
                none_left.add(2);
                none_left.add(3);
                let none_left = Eligible {
                    tried: none_left,
                    ..eligible
                };
                assert!(
                    selector.select(b"key", none_left).is_none(),
                    "{algorithm:?}"
                );
            }
        }
        // A DOWN peer only when UP is not required (fail_open).
        let down = vec![member(
            "unit-eligible-down",
            0,
            1,
            PeerHealth::awaiting_probe(),
        )];
        let fail_open = Eligible {
            require_up: false,
            ..ANY_UP
        };
        for algorithm in EVERY_ALGORITHM {
            let selector = PeerGroup::new(&settings(algorithm), down.clone()).expect("members");
            assert!(selector.select(b"key", ANY_UP).is_none(), "{algorithm:?}");
            assert!(
                selector.select(b"key", fail_open).is_some(),
                "{algorithm:?}"
            );
        }
    }
}
