//! Slow start in selection: a pick of a peer that is ramping
//! ([`Ramp`](crate::peer::ramp::Ramp)) stands with the probability of the
//! share of its weight it takes now; otherwise the request goes to another
//! peer, picked by the same algorithm without it.
//!
//! Thinning the picks works the same under every algorithm, and a peer's
//! traffic then grows with its ramp whatever else its algorithm weighs:
//! under `least_conn` a peer that comes back with nothing in flight would
//! otherwise take nearly every request, however small its weight.
//! `consistent_hash` is left alone: a key must keep its peer.

use super::Eligible;
use crate::config::{Algorithm, UpstreamConfig};
use crate::peer::Member;
use std::sync::Arc;
use std::time::Duration;

/// An upstream's slow start window.
#[derive(Debug, Clone, Copy)]
pub struct SlowStart {
    window: Duration,
}

impl SlowStart {
    /// The slow start of the upstream `settings`, if it has one that
    /// applies to its algorithm.
    pub fn of(settings: &UpstreamConfig) -> Option<SlowStart> {
        let window = settings.slow_start?.0;
        (settings.algorithm != Algorithm::ConsistentHash).then_some(SlowStart { window })
    }

    /// `chosen`, with the probability of the share of its weight it takes
    /// now (always, unless it ramps); otherwise the pick `others` makes
    /// among the eligible members but it (`chosen` still, if there are
    /// none).
    #[inline]
    pub fn thin<'a>(
        self,
        chosen: &'a Arc<Member>,
        eligible: Eligible,
        others: impl FnOnce(Eligible) -> Option<&'a Arc<Member>>,
    ) -> &'a Arc<Member> {
        match chosen.peer.ramp.share(self.window) {
            Some(share) if fastrand::f64() >= share => {
                let mut without = eligible;
                without.tried.add(chosen.index);
                others(without).unwrap_or(chosen)
            }
            _ => chosen,
        }
    }
}
