//! `round_robin` and `random`: weighted, blind to load, over one schedule
//! of the group's members built once per snapshot.
//!
//! The schedule lists each member as many times as its weight (weights
//! divided by their greatest common divisor, so equal weights list each
//! member once), interleaved so that each member's turns spread over the
//! cycle: `5:1:1` is `a a a b c a a`, not `a a a a a b c`. Round robin
//! walks it with one shared atomic cursor; random draws a position of it,
//! which is a draw weighted by the members' weights. Either way a pick is
//! an index into a slice: nothing allocated, hashed or locked, and an
//! operator's weight change (a new snapshot, a new schedule) applies to the
//! next request.
//!
//! A member the request may not go to (tried, drained, disabled, DOWN)
//! hands its turn to a weighted draw over the eligible members
//! ([`draw::weighted_at`]), so the others keep their weights' shares among
//! themselves.

use super::draw::{self, golden_point, weighted_at};
use super::{Eligible, PeerSelector};
use crate::peer::Member;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The members of a group over one cycle of weighted round robin: each
/// member index as many times as its (reduced) weight, evenly spread.
#[derive(Debug)]
struct Schedule(Box<[u32]>);

impl Schedule {
    /// The schedule of `group`. A member of weight `w` has its turns at
    /// `(k + ½) / w` of the cycle, `k` from 0 to `w - 1`; the cycle is every
    /// turn in time order, ties in group order (Sainte-Laguë's apportionment,
    /// what smooth weighted round robin approximates): each member's turns
    /// are spread over the cycle, and any stretch of it gives each member
    /// its share within one. Sorting keeps the build at
    /// O(total weight · log) for large groups.
    fn new(group: &[Arc<Member>]) -> Schedule {
        let divisor = group.iter().map(|m| draw::weight(m)).fold(0, gcd).max(1);
        let weights: Vec<u64> = group.iter().map(|m| draw::weight(m) / divisor).collect();
        let mut turns: Vec<(u32, u64)> = weights
            .iter()
            .enumerate()
            .flat_map(|(index, &weight)| (0..weight).map(move |k| (index as u32, k)))
            .collect();
        // Turn k of member i is at (2k + 1) / 2w_i: compare by
        // cross-multiplication, exactly.
        turns.sort_unstable_by(|&(a, ka), &(b, kb)| {
            let at_a = (2 * ka + 1) * weights[b as usize];
            let at_b = (2 * kb + 1) * weights[a as usize];
            at_a.cmp(&at_b).then(a.cmp(&b))
        });
        Schedule(turns.into_iter().map(|(index, _)| index).collect())
    }

    /// The member at position `position` (taken modulo the cycle) of the
    /// schedule.
    #[inline]
    fn member<'a>(&self, group: &'a [Arc<Member>], position: u64) -> &'a Arc<Member> {
        let index = self.0[(position % self.0.len() as u64) as usize];
        &group[index as usize]
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// `round_robin`: the members in their schedule's order, each taking its
/// weight's share of the picks, evenly spread.
#[derive(Debug)]
pub struct RoundRobin {
    schedule: Schedule,
    /// Picks so far: the position of the next one in the schedule.
    cursor: AtomicU64,
}

impl RoundRobin {
    /// The round robin of `group`.
    pub fn new(group: &[Arc<Member>]) -> Self {
        RoundRobin {
            schedule: Schedule::new(group),
            cursor: AtomicU64::new(0),
        }
    }
}

impl PeerSelector for RoundRobin {
    fn select<'a>(
        &self,
        _key: &[u8],
        group: &'a [Arc<Member>],
        eligible: Eligible,
    ) -> Option<&'a Arc<Member>> {
        let position = self.cursor.fetch_add(1, Ordering::Relaxed);
        let member = self.schedule.member(group, position);
        if eligible.accepts(member) {
            return Some(member);
        }
        // The positions that fall on refused members follow the
        // golden-ratio sequence among the others.
        weighted_at(group, eligible, golden_point(position), draw::weight)
    }
}

/// `random`: a member drawn at random, each as likely as its weight says.
#[derive(Debug)]
pub struct Random {
    schedule: Schedule,
}

impl Random {
    /// The random pick of `group`.
    pub fn new(group: &[Arc<Member>]) -> Self {
        Random {
            schedule: Schedule::new(group),
        }
    }
}

impl PeerSelector for Random {
    fn select<'a>(
        &self,
        _key: &[u8],
        group: &'a [Arc<Member>],
        eligible: Eligible,
    ) -> Option<&'a Arc<Member>> {
        let member = self.schedule.member(group, fastrand::u64(..));
        if eligible.accepts(member) {
            return Some(member);
        }
        draw::weighted_random(group, eligible)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{group, picks, times, ANY_UP};
    use super::*;
    use crate::peer::admin::AdminState;

    /// Whether, after every pick of `seen`, each member's count is within
    /// one of its weight's share of the picks so far.
    fn evenly_spread(seen: &[usize], weights: &[u16]) -> bool {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut counts = vec![0u64; weights.len()];
        seen.iter().enumerate().all(|(done, &index)| {
            counts[index] += 1;
            let picks = done as u64 + 1;
            counts.iter().zip(weights).all(|(&count, &weight)| {
                (count * total).abs_diff(picks * u64::from(weight)) < total
            })
        })
    }

    #[test]
    fn round_robin_gives_each_member_its_weight_per_cycle_evenly_spread() {
        for (n, weights) in [[1, 2, 1], [5, 1, 1], [1, 1, 1], [3, 2, 7]]
            .into_iter()
            .enumerate()
        {
            let group = group(&format!("unit-rr-{n}"), &weights);
            let selector = RoundRobin::new(&group);
            let cycle: u16 = weights.iter().sum();
            let seen = picks(&selector, &group, ANY_UP, 4 * usize::from(cycle));
            for (index, weight) in weights.into_iter().enumerate() {
                assert_eq!(times(&seen, index), 4 * usize::from(weight), "{seen:?}");
            }
            assert!(evenly_spread(&seen, &weights), "{weights:?}: {seen:?}");
        }
    }

    #[test]
    fn schedules_reduce_weights_and_interleave() {
        let group = group("unit-rr-schedule", &[2, 4, 2]);
        assert_eq!(&*Schedule::new(&group).0, [1, 0, 2, 1]);
        let group = super::super::testing::group("unit-rr-5-1-1", &[5, 1, 1]);
        assert_eq!(&*Schedule::new(&group).0, [0, 0, 0, 1, 2, 0, 0]);
        let equal = super::super::testing::group("unit-rr-equal", &[7, 7, 7]);
        let selector = RoundRobin::new(&equal);
        assert_eq!(picks(&selector, &equal, ANY_UP, 6), [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn a_refused_member_leaves_the_others_their_shares() {
        let group = group("unit-rr-refused", &[1, 2, 1, 4]);
        group[3].peer.set_admin_state(AdminState::Disabled);
        let selector = RoundRobin::new(&group);
        let seen = picks(&selector, &group, ANY_UP, 4000);
        let shares = [0, 1, 2].map(|i| times(&seen, i));
        for (share, expected) in shares.into_iter().zip([1000, 2000, 1000]) {
            assert!(share.abs_diff(expected) <= 20, "{shares:?}");
        }
    }

    #[test]
    fn random_draws_by_weight() {
        let group = group("unit-random", &[1, 2, 1]);
        let selector = Random::new(&group);
        let seen = picks(&selector, &group, ANY_UP, 20_000);
        let shares = [0, 1, 2].map(|i| times(&seen, i));
        // Five standard deviations (about 61 and 71 picks).
        for (share, expected) in shares.into_iter().zip([5000, 10_000, 5000]) {
            assert!(share.abs_diff(expected) <= 360, "{shares:?}");
        }
        group[1].peer.set_admin_state(AdminState::Draining);
        let seen = picks(&selector, &group, ANY_UP, 10_000);
        assert_eq!(times(&seen, 1), 0);
        assert!(times(&seen, 0).abs_diff(5000) <= 250, "{}", times(&seen, 0));
    }
}
