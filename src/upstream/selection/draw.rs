//! The two ways the load-aware selectors draw a member: power of two
//! choices (equal weights) and a weighted draw over shares that load
//! shrinks (different weights). `least_request` and `ewma` differ only in
//! what they compare.

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

/// A weighted draw over the eligible members' shares.
///
/// The draw points follow the golden-ratio sequence rather than a random
/// one: consecutive points spread evenly over the total, so while the
/// shares hold still each member's picks stay within a few of its share, as
/// in a weighted round robin (a random draw strays by the square root of
/// the picks).
#[derive(Debug, Default)]
pub struct WeightedDraw {
    /// Draws so far: the index of the next draw point.
    draws: AtomicU64,
}

impl WeightedDraw {
    /// An eligible member of `group`, each as likely as its `share` (never
    /// 0) of their sum.
    pub fn draw<'a>(
        &self,
        group: &'a [Arc<Member>],
        eligible: Eligible,
        share: impl Fn(&Member) -> u64,
    ) -> Option<&'a Arc<Member>> {
        let total: u64 = group
            .iter()
            .filter(|m| eligible.accepts(m))
            .map(|m| share(m))
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
            let share = share(member);
            if left < share {
                return Some(member);
            }
            left -= share;
            last = Some(member);
        }
        // Loads grew between the two passes, the shares shrank and the
        // point fell past the end: the last eligible member is as good a pick.
        last
    }
}

/// Whether every member of `group` has the same weight (weights are fixed
/// within a snapshot, so selectors ask once).
pub fn equal_weights(group: &[Arc<Member>]) -> bool {
    group.windows(2).all(|w| w[0].weight == w[1].weight)
}
