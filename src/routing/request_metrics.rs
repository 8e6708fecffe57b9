//! The metric handles of one route's requests: `switchyard_requests_total`
//! and `switchyard_request_duration_seconds` carry the route that took
//! each request.
//!
//! The handles are resolved when the route is compiled, for every upstream
//! and peer the route may send to, so that counting a request is two
//! lookups by position: no label is formatted, no label set hashed, no
//! lock taken. They come from the [`Carryover`], so a route that a change
//! keeps (by name) keeps its series, and the series of a route no
//! configuration has any more leave with its last snapshot.

use crate::metrics::{RouteUpstreamMetrics, StatusCounters};
use crate::peer::Member;
use crate::upstream::{Carryover, Upstream};
use std::sync::Arc;

/// The handles of one route, by upstream.
pub struct RouteMetrics {
    /// By upstream position in the snapshot ([`Upstream::index`]); `None`
    /// for an upstream the route never sends to.
    by_upstream: Box<[Option<TargetMetrics>]>,
}

/// The handles of the requests one route sends to one upstream.
struct TargetMetrics {
    upstream: Arc<RouteUpstreamMetrics>,
    /// By peer position in the upstream ([`Member::index`]).
    peers: Box<[Arc<StatusCounters>]>,
}

impl RouteMetrics {
    /// The handles of the route `route` for those of `upstreams` (the
    /// snapshot's, in order) that `sends_to` says it may send to.
    pub fn new(
        route: &str,
        upstreams: &[Arc<Upstream>],
        sends_to: impl Fn(&Upstream) -> bool,
        carryover: &mut dyn Carryover,
    ) -> Self {
        let by_upstream = upstreams
            .iter()
            .map(|upstream| {
                sends_to(upstream).then(|| TargetMetrics {
                    upstream: carryover.route_upstream_metrics(route, &upstream.name),
                    peers: upstream
                        .peers
                        .iter()
                        .map(|member| carryover.route_peer_requests(route, &member.peer))
                        .collect(),
                })
            })
            .collect();
        RouteMetrics { by_upstream }
    }

    /// Count a request this route sent to `upstream` (of the snapshot the
    /// route was compiled with), answered with `status` (0: none) by
    /// `peer` (`None`: no peer was reached) `seconds` after it started.
    #[inline]
    pub fn record(&self, upstream: &Upstream, peer: Option<&Member>, status: u16, seconds: f64) {
        let Some(Some(target)) = self.by_upstream.get(upstream.index) else {
            debug_assert!(false, "a route sent to {} without handles", upstream.name);
            return;
        };
        let counters = match peer {
            Some(member) => target.peers.get(member.index).map(|c| &**c),
            None => Some(&target.upstream.without_peer),
        };
        if let Some(counters) = counters {
            counters.record(status);
        }
        target.upstream.observe_request(seconds);
    }
}
