//! A weighted draw over a group's eligible members, at a given point: the
//! one piece every weighted selector needs when its fast path finds the
//! member it wanted refused (tried, drained, DOWN), and the whole of
//! `least_request`'s weighted pick.
//!
//! The caller says where the draw lands (a fraction of 2^64): a random
//! point for a random pick, or the next point of the golden-ratio sequence
//! ([`golden_point`]), whose consecutive points spread evenly over the
//! total, so that each member's picks stay within a few of its share, as in
//! a weighted round robin (a random draw strays by the square root of the
//! picks). Two passes over the group; nothing allocated, hashed or locked.

use super::Eligible;
use crate::peer::Member;
use std::sync::Arc;

/// 2^64 / φ: the step of the golden-ratio sequence of draw points.
const GOLDEN_STEP: u64 = 0x9E37_79B9_7F4A_7C15;

/// The `n`-th point of the golden-ratio sequence, as a fraction of 2^64.
#[inline]
pub fn golden_point(n: u64) -> u64 {
    n.wrapping_mul(GOLDEN_STEP)
}

/// The eligible member of `group` on which `point` (a fraction of 2^64)
/// falls, each eligible member holding `share(member)` of the line in group
/// order; `None` when `eligible` accepts none (or every share is 0).
///
/// `share` may read values that move between the two passes (in-flight
/// counts): a point that falls past the end then takes the last eligible
/// member, as good a pick as any.
#[inline]
pub fn weighted_at(
    group: &[Arc<Member>],
    eligible: Eligible,
    point: u64,
    share: impl Fn(&Member) -> u64,
) -> Option<&Arc<Member>> {
    let total: u64 = group
        .iter()
        .filter(|m| eligible.accepts(m))
        .map(|m| share(m))
        .sum();
    if total == 0 {
        return None;
    }
    // The point as a fraction of 2^64, scaled to below `total`.
    let mut left = ((u128::from(point) * u128::from(total)) >> 64) as u64;
    let mut last = None;
    for member in group.iter().filter(|m| eligible.accepts(m)) {
        let share = share(member);
        if left < share {
            return Some(member);
        }
        left -= share;
        last = Some(member);
    }
    last
}

/// An eligible member of `group` drawn at random, each as likely as its
/// weight says.
#[inline]
pub fn weighted_random(group: &[Arc<Member>], eligible: Eligible) -> Option<&Arc<Member>> {
    weighted_at(group, eligible, fastrand::u64(..), weight)
}

/// A member's weight as a share of a draw (never 0).
#[inline]
pub fn weight(member: &Member) -> u64 {
    u64::from(member.weight.max(1))
}
