//! `consistent_hash`: ketama, the ring nginx's `hash ... consistent` and
//! Pingora's `Consistent` use (the `pingora-ketama` crate), so that a key
//! keeps its peer while the peer set is stable and a change of it moves
//! only the keys of the peers that changed (about 1/n of them).
//!
//! The ring is built once per group and snapshot: each member gets 160
//! points per unit of weight, placed by the CRC32 of its address, and the
//! members are given in address order, as Pingora's balancer gave them, so
//! keys map to the peers they mapped to before. A pick hashes the key
//! (CRC32), finds its point by binary search, and maps the point's address
//! back to the member. A member the request may not go to (tried, drained,
//! disabled, DOWN) hands the key on to the next points of the ring, as
//! nginx does, for a bounded walk. A request without a key (the header or
//! cookie `hash_key` names is missing) goes to an eligible member drawn at
//! random by weight, as Envoy does when a hash policy yields no hash.

use super::draw::{self, weighted_random};
use super::{Eligible, PeerSelector};
use crate::peer::Member;
use pingora_ketama::{Bucket, Continuum};
use std::net::SocketAddr;
use std::sync::Arc;

/// How many points past a key's own a pick walks for an eligible member
/// before it draws one at random: enough to pass a few refused members
/// (each owns runs of points), bounded so a group with few eligible members
/// does not walk the whole ring.
const MAX_RING_STEPS: usize = 256;

/// The ketama ring of one group.
pub struct ConsistentHash {
    ring: Continuum,
    /// Each member's address and index in the group, in address order: the
    /// ring gives back addresses.
    by_addr: Box<[(SocketAddr, usize)]>,
}

impl ConsistentHash {
    /// The ring of `group`, each member weighted by its weight.
    pub fn new(group: &[Arc<Member>]) -> Self {
        let mut by_addr: Vec<(SocketAddr, usize)> = group
            .iter()
            .enumerate()
            .map(|(index, m)| (m.peer.addr, index))
            .collect();
        by_addr.sort_unstable();
        let buckets: Vec<Bucket> = by_addr
            .iter()
            .map(|&(addr, index)| Bucket::new(addr, draw::weight(&group[index]) as u32))
            .collect();
        ConsistentHash {
            ring: Continuum::new(&buckets),
            by_addr: by_addr.into_boxed_slice(),
        }
    }

    /// The member of `group` at `addr`, an address of the ring.
    #[inline]
    fn member<'a>(&self, group: &'a [Arc<Member>], addr: &SocketAddr) -> Option<&'a Arc<Member>> {
        let found = self.by_addr.binary_search_by(|(a, _)| a.cmp(addr)).ok()?;
        group.get(self.by_addr[found].1)
    }
}

impl PeerSelector for ConsistentHash {
    fn select<'a>(
        &self,
        key: &[u8],
        group: &'a [Arc<Member>],
        eligible: Eligible,
    ) -> Option<&'a Arc<Member>> {
        if key.is_empty() {
            return weighted_random(group, eligible);
        }
        let mut points = self.ring.node_iter(key);
        let owner = self.member(group, points.next()?)?;
        if eligible.accepts(owner) {
            return Some(owner);
        }
        // Without an eligible member, the walk would find none.
        if !group.iter().any(|m| eligible.accepts(m)) {
            return None;
        }
        points
            .take(MAX_RING_STEPS)
            .filter_map(|addr| self.member(group, addr))
            .find(|m| eligible.accepts(m))
            .or_else(|| weighted_random(group, eligible))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{group, picks, times, ANY_UP};
    use super::*;
    use crate::peer::admin::AdminState;
    use pingora_load_balancing::selection::{BackendIter, BackendSelection, Consistent};
    use pingora_load_balancing::Backend;
    use std::collections::BTreeSet;

    /// The address each of `keys` maps to.
    fn owners(ring: &ConsistentHash, group: &[Arc<Member>], keys: &[String]) -> Vec<SocketAddr> {
        keys.iter()
            .map(|key| {
                let member = ring.select(key.as_bytes(), group, ANY_UP);
                member.expect("a member").peer.addr
            })
            .collect()
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("/user/{i}")).collect()
    }

    #[test]
    fn keys_map_as_pingoras_balancer_mapped_them() {
        let group = group("unit-ketama-pingora", &[1, 3, 2, 1]);
        let backends: BTreeSet<Backend> = group
            .iter()
            .map(|m| {
                let mut backend = Backend::new(&m.peer.addr.to_string()).expect("an address");
                backend.weight = usize::from(m.weight);
                backend
            })
            .collect();
        let pingora = Arc::new(Consistent::build(&backends));
        let ring = ConsistentHash::new(&group);
        let keys = keys(2000);
        let ours = owners(&ring, &group, &keys);
        for (key, ours) in keys.iter().zip(ours) {
            let mut theirs = pingora.iter(key.as_bytes());
            let theirs = theirs.next().expect("a backend");
            assert_eq!(theirs.addr.as_inet(), Some(&ours), "{key}");
        }
    }

    #[test]
    fn a_key_keeps_its_member_and_a_removed_member_moves_only_its_keys() {
        let group = group("unit-ketama-stable", &[1, 1, 1, 1]);
        let keys = keys(4000);
        let before = owners(&ConsistentHash::new(&group), &group, &keys);
        assert_eq!(before, owners(&ConsistentHash::new(&group), &group, &keys));
        let removed = group[3].peer.addr;
        let smaller = &group[..3];
        let after = owners(&ConsistentHash::new(smaller), smaller, &keys);
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a);
        assert!(moved.clone().all(|(before, _)| *before == removed));
        let moved = moved.count();
        assert!((700..=1300).contains(&moved), "{moved} of 4000 moved");
    }

    #[test]
    fn weights_give_more_keys() {
        let group = group("unit-ketama-weights", &[1, 3]);
        let seen = picks(&ConsistentHash::new(&group), &group, ANY_UP, 4000);
        let heavy = times(&seen, 1);
        assert!((2700..=3300).contains(&heavy), "{heavy} of 4000");
    }

    #[test]
    fn a_refused_member_hands_its_keys_to_the_next_on_the_ring() {
        let group = group("unit-ketama-next", &[1, 1, 1]);
        let ring = ConsistentHash::new(&group);
        let keys = keys(1000);
        let before = owners(&ring, &group, &keys);
        let drained = group[0].peer.addr;
        group[0].peer.set_admin_state(AdminState::Draining);
        let after = owners(&ring, &group, &keys);
        for ((key, before), after) in keys.iter().zip(before).zip(after) {
            if before != drained {
                assert_eq!(before, after, "{key} moved");
                continue;
            }
            let next = ring.ring.node_iter(key.as_bytes()).find(|a| **a != drained);
            assert_eq!(next, Some(&after), "{key}");
        }
    }

    #[test]
    fn a_request_without_a_key_goes_anywhere_eligible() {
        let group = group("unit-ketama-no-key", &[1, 1]);
        let ring = ConsistentHash::new(&group);
        let seen: Vec<usize> = (0..400)
            .map(|_| ring.select(b"", &group, ANY_UP).expect("a member").index)
            .collect();
        assert!((100..=300).contains(&times(&seen, 0)), "{seen:?}");
    }
}
