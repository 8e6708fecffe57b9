//! Selection that sees load: `least_conn` and `least_request`, over a
//! group's members and the requests each has in flight.
//!
//! A peer that slows down (a GC pause, a noisy neighbour, a cold cache)
//! holds its requests longer, so its in-flight count grows; an algorithm
//! blind to load keeps sending it its full share, and every request sent
//! there waits. Counting requests in flight sees the slowdown at once,
//! without timing anything.
//!
//! Both pickers read the members as the snapshot has them (an operator's
//! weight change makes a new snapshot, so it applies to the next request)
//! and allocate nothing, hash nothing and take no lock: at most one relaxed
//! atomic add per pick, and a relaxed load per member looked at. Counts move while
//! a pick reads them; a pick on a count a moment old makes a slightly
//! different choice, never one [`Eligible`] refuses.

use super::draw::{equal_weights, two_choices, WeightedDraw, SHARE_SCALE};
use super::{Eligible, PeerSelector};
use crate::peer::Member;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A member's load as selection compares it: requests in flight for its
/// weight.
#[derive(Debug, Clone, Copy)]
pub(super) struct Load {
    in_flight: u64,
    weight: u64,
}

impl Load {
    #[inline]
    pub(super) fn of(member: &Member) -> Load {
        Load {
            in_flight: member.peer.in_flight() as u64,
            weight: u64::from(member.weight.max(1)),
        }
    }

    /// Whether this is fewer requests in flight per weight than `other`,
    /// compared exactly by cross-multiplication.
    #[inline]
    fn lighter_than(self, other: Load) -> bool {
        self.in_flight * other.weight < other.in_flight * self.weight
    }

    /// Whether this is as many requests in flight per weight as `other`.
    #[inline]
    fn as_light_as(self, other: Load) -> bool {
        self.in_flight * other.weight == other.in_flight * self.weight
    }

    /// The member's share of a weighted draw: weight / (in-flight + 1),
    /// scaled by [`SHARE_SCALE`], never 0.
    #[inline]
    pub(super) fn share(self) -> u64 {
        (self.weight * SHARE_SCALE / (self.in_flight + 1)).max(1)
    }
}

/// `least_conn`: the eligible member with the fewest requests in flight for
/// its weight; equals take turns (as in nginx, a second pass over the group
/// when there are several).
#[derive(Debug, Default)]
pub struct LeastConn {
    /// Picks among equals so far: whose turn it is among the next equals.
    turn: AtomicUsize,
}

impl PeerSelector for LeastConn {
    fn select<'a>(
        &self,
        _key: &[u8],
        group: &'a [Arc<Member>],
        eligible: Eligible,
    ) -> Option<&'a Arc<Member>> {
        let mut lightest: Option<(&'a Arc<Member>, Load)> = None;
        let mut equals = 0;
        for member in group.iter().filter(|m| eligible.accepts(m)) {
            let load = Load::of(member);
            match lightest {
                Some((_, least)) if load.as_light_as(least) => equals += 1,
                Some((_, least)) if !load.lighter_than(least) => {}
                _ => {
                    lightest = Some((member, load));
                    equals = 1;
                }
            }
        }
        let (first, least) = lightest?;
        if equals == 1 {
            return Some(first);
        }
        let turn = self.turn.fetch_add(1, Ordering::Relaxed) % equals;
        group
            .iter()
            .filter(|m| eligible.accepts(m) && Load::of(m).as_light_as(least))
            .nth(turn)
            // Counts moved between the passes: the first of the equals.
            .or(Some(first))
    }
}

/// `least_request`, as Envoy does it. With equal weights, power of two
/// choices: two distinct eligible members drawn at random, the one with
/// fewer requests in flight wins. With different weights, a weighted draw
/// over each eligible member's weight / (in-flight + 1) (Envoy runs its
/// EDF scheduler over the same effective weights): idle peers get their
/// weights' shares, a busy one less.
#[derive(Debug)]
pub struct LeastRequest {
    /// Whether every member of the group has the same weight (weights are
    /// fixed within a snapshot).
    equal_weights: bool,
    weighted: WeightedDraw,
}

impl LeastRequest {
    /// The picker for `group`.
    pub fn new(group: &[Arc<Member>]) -> Self {
        LeastRequest {
            equal_weights: equal_weights(group),
            weighted: WeightedDraw::default(),
        }
    }
}

impl PeerSelector for LeastRequest {
    fn select<'a>(
        &self,
        _key: &[u8],
        group: &'a [Arc<Member>],
        eligible: Eligible,
    ) -> Option<&'a Arc<Member>> {
        if self.equal_weights {
            two_choices(group, eligible, |first, second| {
                second.peer.in_flight() < first.peer.in_flight()
            })
        } else {
            let share = |member: &Member| Load::of(member).share();
            self.weighted.draw(group, eligible, share)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_shares, group, in_flight, picks, times, ANY_UP};
    use super::*;

    #[test]
    fn least_conn_takes_the_fewest_in_flight_and_equal_peers_take_turns() {
        let group = group("unit-least-conn", &[1, 1, 1]);
        let selector = LeastConn::default();
        let seen = picks(&selector, &group, ANY_UP, 6);
        assert!(seen.windows(2).all(|w| w[0] != w[1]), "{seen:?}");
        assert!((0..3).all(|i| times(&seen, i) == 2), "{seen:?}");

        let _busy = in_flight(&group, &[2, 0, 1]);
        assert_eq!(picks(&selector, &group, ANY_UP, 5), [1; 5]);
    }

    #[test]
    fn least_conn_counts_in_flight_per_weight() {
        let group = group("unit-least-conn-weights", &[2, 1, 1]);
        let selector = LeastConn::default();
        // 2 for weight 2 is as loaded as 1 for weight 1: those two alternate.
        let _busy = in_flight(&group, &[2, 1, 2]);
        let seen = picks(&selector, &group, ANY_UP, 6);
        assert_eq!((times(&seen, 0), times(&seen, 1)), (3, 3), "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0] != w[1]), "{seen:?}");
        // One more on the weight-1 peer: 2/2 beats 2/1.
        let _more = in_flight(&group[1..2], &[1]);
        assert_eq!(picks(&selector, &group, ANY_UP, 3), [0; 3]);
    }

    #[test]
    fn least_request_never_picks_the_busiest_of_equal_peers() {
        let group = group("unit-p2c", &[1, 1, 1]);
        let selector = LeastRequest::new(&group);
        assert!(selector.equal_weights);
        let _busy = in_flight(&group, &[3, 0, 1]);
        // Two distinct draws: the busiest always meets a lighter one.
        let seen = picks(&selector, &group, ANY_UP, 300);
        assert_eq!(times(&seen, 0), 0, "{seen:?}");
        // Member 1 wins every pair it is in (2 of 3), member 2 the other.
        let idle = times(&seen, 1);
        assert!((150..=250).contains(&idle), "{idle} of 300");
    }

    #[test]
    fn least_request_gives_idle_peers_their_weights_shares() {
        let group = group("unit-weighted", &[1, 2, 1]);
        let selector = LeastRequest::new(&group);
        assert!(!selector.equal_weights);
        let seen = picks(&selector, &group, ANY_UP, 4000);
        assert_shares(&seen, &[1000, 2000, 1000]);
        // One in flight on the weight-2 peer halves its share: 1:1:1.
        let _busy = in_flight(&group, &[0, 1, 0]);
        let seen = picks(&selector, &group, ANY_UP, 3000);
        assert_shares(&seen, &[1000, 1000, 1000]);
    }
}
