//! The draws selectors share. A weighted draw over a group's eligible
//! members, at a given point: the one piece every weighted selector needs
//! when its fast path finds the member it wanted refused (tried, drained,
//! DOWN), and the whole of the weighted picks of `least_request` and `ewma`;
//! and the power of two choices they make when weights are equal.
//!
//! The caller says where the draw lands (a fraction of 2^64): a random
//! point for a random pick, or the next point of the golden-ratio sequence
//! ([`golden_point`]), whose consecutive points spread evenly over the
//! total, so that each member's picks stay within a few of its share, as in
//! a weighted round robin (a random draw strays by the square root of the
//! picks). Two passes over the group; nothing allocated, hashed or locked.

use super::Eligible;
use crate::peer::Member;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Weights are scaled by this before they are divided by load, so that
/// integer shares stay apart (weight 1 with a thousand requests in flight
/// still has a share of 1,047).
pub const SHARE_SCALE: u64 = 1 << 20;

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

/// Weighted draws at the successive points of the golden-ratio sequence,
/// over shares that load changes from pick to pick.
#[derive(Debug, Default)]
pub struct WeightedDraw {
    /// Draws so far: the index of the next draw point.
    draws: AtomicU64,
}

impl WeightedDraw {
    /// An eligible member of `group`, at the next point of the sequence,
    /// each member holding `share(member)` of the line ([`weighted_at`]).
    #[inline]
    pub fn draw<'a>(
        &self,
        group: &'a [Arc<Member>],
        eligible: Eligible,
        share: impl Fn(&Member) -> u64,
    ) -> Option<&'a Arc<Member>> {
        let point = golden_point(self.draws.fetch_add(1, Ordering::Relaxed));
        weighted_at(group, eligible, point, share)
    }
}

/// Power of two choices: two distinct eligible members drawn at random;
/// the second wins if `second_wins(first, second)`, else the first.
pub fn two_choices<'a>(
    group: &'a [Arc<Member>],
    eligible: Eligible,
    second_wins: impl Fn(&Member, &Member) -> bool,
) -> Option<&'a Arc<Member>> {
    let pick = |first: &'a Arc<Member>, second: &'a Arc<Member>| {
        if second_wins(first, second) {
            second
        } else {
            first
        }
    };
    // Most of the time every member is eligible: draw from the group.
    if let Some((first, second)) = distinct_pair(group.len()) {
        let (first, second) = (&group[first], &group[second]);
        if eligible.accepts(first) && eligible.accepts(second) {
            return Some(pick(first, second));
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
        (Some(lower), Some(higher)) if first < second => Some(pick(lower, higher)),
        (Some(lower), Some(higher)) => Some(pick(higher, lower)),
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

/// Whether every member of `group` has the same weight (weights are fixed
/// within a snapshot, so selectors ask once).
pub fn equal_weights(group: &[Arc<Member>]) -> bool {
    group.windows(2).all(|w| w[0].weight == w[1].weight)
}
