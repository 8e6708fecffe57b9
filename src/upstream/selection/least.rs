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

use super::{Eligible, PeerSelector};
use crate::peer::Member;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A member's load as selection compares it: requests in flight for its
/// weight.
#[derive(Debug, Clone, Copy)]
struct Load {
    in_flight: u64,
    weight: u64,
}

impl Load {
    #[inline]
    fn of(member: &Member) -> Load {
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
    fn share(self) -> u64 {
        (self.weight * SHARE_SCALE / (self.in_flight + 1)).max(1)
    }
}

/// Weights are scaled by this before the division by in-flight + 1, so that
/// integer shares stay apart (weight 1 with a thousand requests in flight
/// still has a share of 1,047).
const SHARE_SCALE: u64 = 1 << 20;

/// 2^64 / φ: the step of the golden-ratio sequence of draw points.
const GOLDEN_STEP: u64 = 0x9E37_79B9_7F4A_7C15;

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
    /// Weighted draws so far: the index of the next draw point.
    draws: AtomicU64,
}

impl LeastRequest {
    /// The picker for `group`.
    pub fn new(group: &[Arc<Member>]) -> Self {
        LeastRequest {
            equal_weights: group.windows(2).all(|w| w[0].weight == w[1].weight),
            draws: AtomicU64::new(0),
        }
    }

    /// A draw over the eligible members' shares ([`Load::share`]).
    ///
    /// The draw points follow the golden-ratio sequence rather than a
    /// random one: consecutive points spread evenly over the total, so
    /// while the counts hold still each member's picks stay within a few of
    /// its share, as in a weighted round robin (a random draw strays by the
    /// square root of the picks).
    fn weighted_draw<'a>(
        &self,
        group: &'a [Arc<Member>],
        eligible: Eligible,
    ) -> Option<&'a Arc<Member>> {
        let total: u64 = group
            .iter()
            .filter(|m| eligible.accepts(m))
            .map(|m| Load::of(m).share())
            .sum();
        if total == 0 {
            return None;
        }
        let point = self
            .draws
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(GOLDEN_STEP);
        // The point as a fraction of 2^64, scaled to below `total`.
        let mut left = ((u128::from(point) * u128::from(total)) >> 64) as u64;
        let mut last = None;
        for member in group.iter().filter(|m| eligible.accepts(m)) {
            let share = Load::of(member).share();
            if left < share {
                return Some(member);
            }
            left -= share;
            last = Some(member);
        }
        // Counts grew between the two passes, the shares shrank and the
        // point fell past the end: the last eligible member is as good a pick.
        last
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
            two_choices(group, eligible)
        } else {
            self.weighted_draw(group, eligible)
        }
    }
}

/// Power of two choices: of two distinct eligible members drawn at random,
/// the one with fewer requests in flight (the first drawn on a tie).
fn two_choices(group: &[Arc<Member>], eligible: Eligible) -> Option<&Arc<Member>> {
    // Most of the time every member is eligible: draw from the group.
    if let Some((first, second)) = distinct_pair(group.len()) {
        let (first, second) = (&group[first], &group[second]);
        if eligible.accepts(first) && eligible.accepts(second) {
            return Some(fewer_in_flight(first, second));
        }
    }
    // Else draw from the eligible ones only, counted first so that every
    // pair of them stays as likely.
    let count = group.iter().filter(|m| eligible.accepts(m)).count();
    let mut eligible_members = group.iter().filter(|m| eligible.accepts(m));
    let Some((first, second)) = distinct_pair(count) else {
        return eligible_members.next();
    };
    let (low, high) = (first.min(second), first.max(second));
    let lower = eligible_members.nth(low);
    let higher = eligible_members.nth(high - low - 1);
    match (lower, higher) {
        (Some(lower), Some(higher)) if first < second => Some(fewer_in_flight(lower, higher)),
        (Some(lower), Some(higher)) => Some(fewer_in_flight(higher, lower)),
        // Fewer are eligible than a moment ago (a probe, an operator).
        (lower, higher) => lower.or(higher),
    }
}

/// Two distinct indices below `n`, each pair as likely; `None` below two.
#[inline]
fn distinct_pair(n: usize) -> Option<(usize, usize)> {
    if n < 2 {
        return None;
    }
    let first = fastrand::usize(..n);
    let second = (first + 1 + fastrand::usize(..n - 1)) % n;
    Some((first, second))
}

/// Of `first` and `second`, the one with fewer requests in flight; `first`
/// on a tie.
#[inline]
fn fewer_in_flight<'a>(first: &'a Arc<Member>, second: &'a Arc<Member>) -> &'a Arc<Member> {
    if second.peer.in_flight() < first.peer.in_flight() {
        second
    } else {
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamConfig;
    use crate::peer::admin::AdminState;
    use crate::peer::health::PeerHealth;
    use crate::peer::{InFlight, Listing, Peer};
    use crate::upstream::TriedPeers;

    /// Members of the upstream `upstream` (a name of its own per test: the
    /// in-flight counts are metric series, by upstream and address), one per
    /// weight, UP and active.
    fn group(upstream: &str, weights: &[u16]) -> Vec<Arc<Member>> {
        let members = weights.iter().enumerate();
        members
            .map(|(index, &weight)| member(upstream, index, weight, PeerHealth::new()))
            .collect()
    }

    /// The member at `index` of `upstream`, with `weight` and `health`.
    fn member(upstream: &str, index: usize, weight: u16, health: PeerHealth) -> Arc<Member> {
        let settings: UpstreamConfig = serde_yaml::from_str("peers: [127.0.0.1:1]").unwrap();
        let addr = ([127, 0, 0, 1], 10_000 + index as u16).into();
        let peer = Peer::new(upstream, addr, health, AdminState::Active, None);
        let listing = Listing {
            name: None,
            weight,
            backup: false,
        };
        Arc::new(Member::new(Arc::new(peer), index, listing, &settings))
    }

    /// `counts[i]` requests in flight on member `i`, until the guards drop.
    fn in_flight(group: &[Arc<Member>], counts: &[usize]) -> Vec<InFlight> {
        group
            .iter()
            .zip(counts)
            .flat_map(|(member, &n)| (0..n).map(|_| member.peer.start_request()))
            .collect()
    }

    const ANY_UP: Eligible = Eligible {
        tried: TriedPeers::NONE,
        require_up: true,
        max_in_flight: usize::MAX,
    };

    /// The member index of each of `n` picks.
    fn picks(
        selector: &dyn PeerSelector,
        group: &[Arc<Member>],
        eligible: Eligible,
        n: usize,
    ) -> Vec<usize> {
        (0..n)
            .map(|_| selector.select(b"", group, eligible).expect("a pick").index)
            .collect()
    }

    /// How many of `picks` are `index`.
    fn times(picks: &[usize], index: usize) -> usize {
        picks.iter().filter(|&&p| p == index).count()
    }

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
        let shares = [0, 1, 2].map(|i| times(&seen, i));
        for (share, expected) in shares.into_iter().zip([1000, 2000, 1000]) {
            assert!(share.abs_diff(expected) <= 10, "{shares:?}");
        }
        // One in flight on the weight-2 peer halves its share: 1:1:1.
        let _busy = in_flight(&group, &[0, 1, 0]);
        let seen = picks(&selector, &group, ANY_UP, 3000);
        let shares = [0, 1, 2].map(|i| times(&seen, i));
        assert!(shares.iter().all(|s| s.abs_diff(1000) <= 10), "{shares:?}");
    }

    #[test]
    fn no_picker_chooses_a_peer_at_max_in_flight() {
        let group = group("unit-full", &[1, 1, 1]);
        let selectors: [Box<dyn PeerSelector>; 2] = [
            Box::new(LeastConn::default()),
            Box::new(LeastRequest::new(&group)),
        ];
        let below_two = Eligible {
            max_in_flight: 2,
            ..ANY_UP
        };
        let _busy = in_flight(&group, &[2, 0, 3]);
        for selector in &selectors {
            let seen = picks(selector.as_ref(), &group, below_two, 50);
            assert!(seen.iter().all(|&i| i == 1), "{seen:?}");
        }
        let _full = in_flight(&group[1..2], &[2]);
        for selector in &selectors {
            assert!(selector.select(b"", &group, below_two).is_none());
            assert!(selector.select(b"", &group, below_two.at_any_load()).is_some());
        }
    }

    #[test]
    fn no_picker_chooses_a_tried_drained_or_down_peer() {
        for weights in [[1, 1, 1, 1], [1, 2, 1, 3]] {
            let group = group(&format!("unit-eligible-{}", weights[1]), &weights);
            let selectors: [Box<dyn PeerSelector>; 2] = [
                Box::new(LeastConn::default()),
                Box::new(LeastRequest::new(&group)),
            ];
            // The least loaded peers are the ones refused.
            let _busy = in_flight(&group, &[0, 0, 5, 5]);
            group[1].peer.set_admin_state(AdminState::Draining);
            let mut tried = TriedPeers::NONE;
            tried.add(0);
            let eligible = Eligible { tried, ..ANY_UP };
            for selector in &selectors {
                let seen = picks(selector.as_ref(), &group, eligible, 100);
                assert!(seen.iter().all(|&i| i >= 2), "{seen:?}");
                tried.add(2);
                tried.add(3);
                let none_left = Eligible { tried, ..eligible };
                assert!(selector.select(b"", &group, none_left).is_none());
            }
        }
        // A DOWN peer only when UP is not required (fail_open).
        let group = [member(
            "unit-eligible-down",
            0,
            1,
            PeerHealth::awaiting_probe(),
        )];
        let selector = LeastConn::default();
        assert!(selector.select(b"", &group, ANY_UP).is_none());
        let fail_open = Eligible {
            require_up: false,
            ..ANY_UP
        };
        assert!(selector.select(b"", &group, fail_open).is_some());
    }
}
