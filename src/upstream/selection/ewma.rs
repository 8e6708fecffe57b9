//! `ewma`: selection by how fast peers answer as well as by how busy they
//! are (Finagle's and Linkerd's peak-EWMA power of two choices).
//!
//! Counting requests in flight sees a peer that holds its requests longer,
//! but only once they pile up; with few clients, a slow peer and a fast one
//! both have one or none in flight. Each peer's latency estimate
//! ([`PeakEwma`](crate::peer::latency::PeakEwma)) sees the slowness from the
//! first slow answer: the cost of a peer is its estimate × (in-flight + 1),
//! and of two peers drawn at random the cheaper one wins. A peer with no
//! estimate yet costs the group's average, neither shunned nor flooded.
//!
//! With different weights, a power of two choices would ignore them (the
//! heavier peer wins every pair it is in); the draw is then weighted, as
//! `least_request`'s: over each peer's weight / (in-flight + 1), divided by
//! how many whole times slower than the fastest peer it is (or than 10 ms,
//! if that is slower). Peers within a factor of two of the
//! fastest are equals there, so that the noise between peers of one speed
//! does not bend the weights' shares.

use super::draw::{equal_weights, two_choices, WeightedDraw};
use super::least::Load;
use super::{Eligible, PeerSelector};
use crate::peer::latency::Tick;
use crate::peer::Member;
use std::cell::OnceCell;
use std::sync::Arc;

/// Below this, latencies differ by noise (a new connection, a busy host's
/// scheduler, which peak-EWMA keeps for a while), not by how fast peers
/// are: the weighted draw counts how many times slower than the fastest
/// peer, or than this, a peer is.
const RESOLUTION_NANOS: f64 = 10e6;

/// The `ewma` selector of one group.
#[derive(Debug)]
pub struct Ewma {
    /// Whether every member of the group has the same weight.
    equal_weights: bool,
    weighted: WeightedDraw,
}

impl Ewma {
    /// The selector for `group`.
    pub fn new(group: &[Arc<Member>]) -> Self {
        Ewma {
            equal_weights: equal_weights(group),
            weighted: WeightedDraw::default(),
        }
    }
}

impl PeerSelector for Ewma {
    fn select<'a>(
        &self,
        _key: &[u8],
        group: &'a [Arc<Member>],
        eligible: Eligible,
    ) -> Option<&'a Arc<Member>> {
        let now = Tick::now();
        if self.equal_weights {
            // The group's average, only if a drawn peer has no estimate.
            let average = OnceCell::new();
            let latency = |member: &Member| {
                member
                    .latency_nanos(now)
                    .unwrap_or_else(|| *average.get_or_init(|| average_latency(group, now)))
            };
            let cost = |member: &Member| latency(member) * (member.peer.in_flight() as f64 + 1.0);
            two_choices(group, eligible, |first, second| cost(second) < cost(first))
        } else {
            let fastest = group
                .iter()
                .filter(|m| eligible.accepts(m))
                .filter_map(|m| m.latency_nanos(now))
                .fold(f64::INFINITY, f64::min)
                .max(RESOLUTION_NANOS);
            let share = |member: &Member| {
                let slower = member
                    .latency_nanos(now)
                    .map_or(1.0, |latency| (latency / fastest).floor().max(1.0));
                ((Load::of(member).share() as f64 / slower) as u64).max(1)
            };
            self.weighted.draw(group, eligible, share)
        }
    }
}

/// The average latency estimate of `group`'s members that have one; 1 ns
/// when none has (every cost then counts requests in flight only).
fn average_latency(group: &[Arc<Member>], now: Tick) -> f64 {
    let (sum, count) = group
        .iter()
        .filter_map(|m| m.latency_nanos(now))
        .fold((0.0, 0u32), |(sum, count), l| (sum + l, count + 1));
    if count == 0 {
        1.0
    } else {
        sum / f64::from(count)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_shares, group, in_flight, picks, times, ANY_UP};
    use super::*;
    use std::time::Duration;

    /// Each member of `group` has answered once in `millis[i]` ms (none
    /// for `None`).
    fn answered(group: &[Arc<Member>], millis: &[Option<u64>]) {
        for (member, ms) in group.iter().zip(millis) {
            if let Some(ms) = ms {
                member.record_latency(Duration::from_millis(*ms), Tick::now());
            }
        }
    }

    #[test]
    fn a_slow_peer_loses_every_pair_it_is_in() {
        let group = group("unit-ewma-slow", &[1, 1, 1]);
        answered(&group, &[Some(5), Some(5), Some(100)]);
        let selector = Ewma::new(&group);
        let seen = picks(&selector, &group, ANY_UP, 300);
        assert_eq!(times(&seen, 2), 0, "{seen:?}");
        // Until the fast ones are 20 times as busy.
        let _busy = in_flight(&group, &[20, 20, 0]);
        let seen = picks(&selector, &group, ANY_UP, 300);
        assert!(times(&seen, 2) > 100, "{seen:?}");
    }

    #[test]
    fn a_peer_without_an_answer_yet_costs_the_average() {
        let group = group("unit-ewma-new", &[1, 1, 1, 1]);
        answered(&group, &[Some(2), Some(8), Some(20), None]);
        let selector = Ewma::new(&group);
        let seen = picks(&selector, &group, ANY_UP, 1200);
        // Member 3 costs 10 ms, the average: it wins its pairs with
        // member 2 (2 of the 12 ordered pairs), loses the others.
        let new = times(&seen, 3);
        assert_eq!(times(&seen, 2), 0, "{seen:?}");
        assert!((150..=250).contains(&new), "{new} of 1200");
    }

    #[test]
    fn different_weights_give_peers_of_one_speed_their_shares() {
        let group = group("unit-ewma-weights", &[1, 2, 1]);
        // Within twice the fastest (or 10 ms): one speed.
        answered(&group, &[Some(5), Some(19), Some(12)]);
        let selector = Ewma::new(&group);
        let seen = picks(&selector, &group, ANY_UP, 4000);
        assert_shares(&seen, &[1000, 2000, 1000]);
        // Twenty times 10 ms: a twentieth of its share.
        answered(&group, &[None, None, Some(200)]);
        let seen = picks(&selector, &group, ANY_UP, 3000);
        let slow = times(&seen, 2);
        assert!((40..=60).contains(&slow), "{slow} of 3000");
    }
}
