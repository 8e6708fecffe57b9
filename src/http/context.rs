//! What one request carries from filter to filter.

use super::failure::is_timeout;
use crate::live::Snapshot;
use crate::metrics::UpstreamErrorKind;
use crate::peer::latency::Tick;
use crate::peer::{InFlight, Member};
use crate::request::forwarding::Origin;
use crate::routing::Route;
use crate::upstream::overload::RetryInFlight;
use crate::upstream::{TriedPeers, Upstream};
use http::HeaderValue;
use pingora_error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The state of one client request.
pub struct RequestContext {
    pub(super) started: Instant,
    /// The configuration this request is served with, from its arrival.
    pub(super) snapshot: Option<Arc<Snapshot>>,
    pub(super) upstream: Option<Arc<Upstream>>,
    /// The index of the route that took the request, in the snapshot's
    /// route table.
    pub(super) route: Option<usize>,
    /// Where the request comes from (connection and client address).
    pub(super) origin: Option<Origin>,
    /// The target to send instead of the one received: the normalized path.
    pub(super) forward_target: Option<Vec<u8>>,
    /// The `Host` an absolute-form target names.
    pub(super) forward_host: Option<HeaderValue>,
    /// A WebSocket or other `Upgrade` request: tunnel timeouts.
    pub(super) upgrade: bool,
    /// switchyard answered `Expect: 100-continue` itself, and read the body.
    pub(super) continue_sent: bool,
    /// When the time budget runs out; set once the request body is complete.
    pub(super) deadline: Option<Instant>,
    /// The peer of the current attempt.
    pub(super) peer: Option<Arc<Member>>,
    /// Counts the current attempt in the peer's in-flight requests.
    pub(super) in_flight: Option<InFlight>,
    /// Counts the current attempt, a retry, in the upstream's retries in
    /// flight (`retry_budget`).
    pub(super) retry: Option<RetryInFlight>,
    /// When the current peer was chosen; taken when its response header
    /// arrives.
    pub(super) peer_chosen_at: Option<Instant>,
    /// How long the peer that answered took to send its response header,
    /// from when it was chosen.
    pub(super) upstream_header: Option<Duration>,
    /// The request's `X-Request-ID` (`request_id: true`).
    pub(super) request_id: Option<HeaderValue>,
    pub(super) tried: TriedPeers,
    pub(super) attempts: u32,
    /// The next attempt goes to the same peer on a new connection: the
    /// pooled one it used broke.
    pub(super) fresh_connection: bool,
    /// That retry has been made (once per request).
    pub(super) fresh_connection_used: bool,
    /// The current attempt is that retry.
    pub(super) fresh_attempt: bool,
    /// The current peer has sent a response header: too late to retry.
    pub(super) response_started: bool,
    /// The current peer's answer is dropped for a retry (`retry_on_status`).
    pub(super) retrying_status: bool,
    /// The last attempt failed on a timeout: a final failure is a 504.
    pub(super) timed_out: bool,
}

impl RequestContext {
    pub(super) fn new() -> Self {
        RequestContext {
            started: Instant::now(),
            snapshot: None,
            upstream: None,
            route: None,
            origin: None,
            forward_target: None,
            forward_host: None,
            upgrade: false,
            continue_sent: false,
            deadline: None,
            peer: None,
            in_flight: None,
            retry: None,
            peer_chosen_at: None,
            upstream_header: None,
            request_id: None,
            tried: TriedPeers::NONE,
            attempts: 0,
            fresh_connection: false,
            fresh_connection_used: false,
            fresh_attempt: false,
            response_started: false,
            retrying_status: false,
            timed_out: false,
        }
    }

    /// The request goes to `upstream`: counted in its requests in flight
    /// until the context is dropped (whatever ends the request, a panic
    /// included).
    pub(super) fn set_upstream(&mut self, upstream: Arc<Upstream>) {
        upstream.metrics.request_started();
        if let Some(before) = self.upstream.replace(upstream) {
            before.metrics.request_finished();
        }
    }

    /// The route that took the request.
    pub(super) fn route(&self) -> Option<&Route> {
        self.snapshot.as_ref()?.routes.get(self.route?)
    }

    /// Time left of the budget, or all of it while the body is still coming.
    pub(super) fn remaining(&self, budget: Duration) -> Duration {
        match self.deadline {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => budget,
        }
    }

    /// Whether the budget has run out (within a millisecond of the timer
    /// that says so).
    pub(super) fn out_of_time(&self) -> bool {
        self.deadline
            .is_some_and(|d| Instant::now() + Duration::from_millis(1) >= d)
    }

    /// Whether the upstream's policy allows another attempt: attempts and
    /// time left.
    pub(super) fn may_try_again(&self) -> bool {
        self.upstream
            .as_ref()
            .is_some_and(|u| self.attempts < u.policy.max_attempts && !self.out_of_time())
    }

    /// Whether the upstream's retry budget lets this request try again
    /// (`retry_budget`; always without one). Asked last, once everything
    /// else allows the retry: a yes counts the retry in flight until its
    /// attempt ends, a no counts a refusal.
    pub(super) fn within_retry_budget(&mut self) -> bool {
        let Some(upstream) = &self.upstream else {
            return false;
        };
        let Some(budget) = upstream.policy.limits.retry_budget else {
            return true;
        };
        // This request's retry in flight, if any, has ended.
        self.retry = None;
        let in_flight = upstream.metrics.requests_in_flight();
        self.retry = upstream.overload.reserve_retry(budget, in_flight);
        self.retry.is_some()
    }

    /// The current attempt has ended: it no longer counts in its peer's
    /// requests in flight, and a request waiting for a peer may take its
    /// place.
    pub(super) fn end_attempt(&mut self) {
        // The guard drops with this statement, before anyone is woken.
        let ended = self.in_flight.take().is_some();
        if let (true, Some(upstream)) = (ended, &self.upstream) {
            upstream.slot_freed();
        }
    }

    /// Passive health and metrics: the current peer failed this request.
    pub(super) fn peer_failed(&mut self, error: &Error) {
        self.timed_out = is_timeout(error);
        self.count_against_peer(UpstreamErrorKind::of(error));
    }

    /// Count a failure of `kind` against the current peer.
    pub(super) fn count_against_peer(&self, kind: UpstreamErrorKind) {
        if let (Some(upstream), Some(member)) = (&self.upstream, &self.peer) {
            if kind == UpstreamErrorKind::ReadTimeout {
                // No answer in all that time: as slow as that, at least.
                if let Some(chosen) = self.peer_chosen_at {
                    let now = Instant::now();
                    member.record_latency(now.saturating_duration_since(chosen), Tick::at(now));
                }
            }
            member.peer.metrics.count_error(kind);
            member
                .peer
                .record_request_failure(upstream.policy.max_fails, kind.label());
        }
    }
}

impl Drop for RequestContext {
    fn drop(&mut self) {
        self.end_attempt();
        if let Some(upstream) = &self.upstream {
            upstream.metrics.request_finished();
        }
    }
}
