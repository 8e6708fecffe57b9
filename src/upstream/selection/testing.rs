//! Groups of members for the selectors' unit tests, and counts of picks.

use super::{Eligible, PeerSelector};
use crate::config::UpstreamConfig;
use crate::peer::admin::AdminState;
use crate::peer::health::PeerHealth;
use crate::peer::latency::Tick;
use crate::peer::{InFlight, Listing, Member, Peer};
use crate::upstream::TriedPeers;
use std::sync::Arc;

/// Members of the upstream `upstream` (a name of its own per test: the
/// in-flight counts are metric series, by upstream and address), one per
/// weight, UP and active.
pub fn group(upstream: &str, weights: &[u16]) -> Vec<Arc<Member>> {
    let members = weights.iter().enumerate();
    members
        .map(|(index, &weight)| member(upstream, index, weight, PeerHealth::new()))
        .collect()
}

/// The member at `index` of `upstream`, with `weight` and `health`.
pub fn member(upstream: &str, index: usize, weight: u16, health: PeerHealth) -> Arc<Member> {
    let settings: UpstreamConfig = serde_yaml::from_str("peers: [127.0.0.1:1]").unwrap();
    let addr = ([127, 0, 0, 1], 10_000 + index as u16).into();
    let peer = Peer::new(upstream, addr, health, AdminState::Active, None);
    let listing = Listing {
        name: None,
        host: None,
        weight,
        backup: false,
    };
    Arc::new(Member::new(Arc::new(peer), index, listing, &settings))
}

/// `counts[i]` requests in flight on member `i`, until the guards drop.
pub fn in_flight(group: &[Arc<Member>], counts: &[usize]) -> Vec<InFlight> {
    group
        .iter()
        .zip(counts)
        .flat_map(|(member, &n)| (0..n).map(|_| member.peer.start_request(Tick::now())))
        .collect()
}

/// Any member that is UP, none tried.
pub const ANY_UP: Eligible = Eligible {
    tried: TriedPeers::NONE,
    require_up: true,
    max_in_flight: usize::MAX,
};

/// The member index of each of `n` picks, the i-th for the hash key `i`
/// (in decimal).
pub fn picks(
    selector: &dyn PeerSelector,
    group: &[Arc<Member>],
    eligible: Eligible,
    n: usize,
) -> Vec<usize> {
    (0..n)
        .map(|i| {
            let key = i.to_string();
            let member = selector.select(key.as_bytes(), group, eligible);
            member.expect("a pick").index
        })
        .collect()
}

/// How many of `picks` are `index`.
pub fn times(picks: &[usize], index: usize) -> usize {
    picks.iter().filter(|&&p| p == index).count()
}

/// Asserts that member `i` has `expected[i]` of `picks`, within 10.
pub fn assert_shares(picks: &[usize], expected: &[usize]) {
    let shares: Vec<usize> = (0..expected.len()).map(|i| times(picks, i)).collect();
    for (share, expected) in shares.iter().zip(expected) {
        assert!(
            share.abs_diff(*expected) <= 10,
            "{shares:?}, not {expected:?} ± 10"
        );
    }
}
