//! Protection of an upstream against overload, as nginx's `max_conns`,
//! HAProxy's `maxconn` and queue, and Envoy's circuit breakers and retry
//! budget give it: a peer takes at most `max_requests` at once (selection
//! skips a full one, [`Eligible`](super::selection::Eligible)); while every
//! peer is full a request waits in a bounded queue for one to finish a
//! request, then gets a 503; and retries may add only a share of the
//! upstream's requests in flight, so that `retries` and `retry_on_status`
//! cannot multiply the load on a pool that is already failing.
//!
//! The settings ([`Limits`]) belong to a snapshot; what is counted (who
//! waits, the retries in flight) is an [`OverloadState`] that a change of
//! configuration carries over by upstream name, like the peers and their
//! in-flight counts: a request finishing on a new snapshot wakes one
//! waiting on the old.
//!
//! Nothing here runs per request unless configured: with no limit the
//! request path pays one compare per peer looked at, one per attempt that
//! ends, and none on success for the retry budget.

use crate::config::{Percentage, UpstreamConfig};
use crate::metrics::overload::{OverloadMetrics, QueueResult};
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Retries an upstream with a retry budget may always have in flight,
/// however few its requests (Envoy's `min_retry_concurrency`): a quiet
/// upstream can still retry.
pub const MIN_RETRY_CONCURRENCY: usize = 3;

/// An upstream's overload settings, as its configuration says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests in flight per peer at most; `usize::MAX`: no limit.
    pub max_requests: usize,
    /// Where requests wait while every peer is full; `None`: they get a
    /// 503 at once.
    pub queue: Option<QueueSettings>,
    /// The share of the upstream's requests in flight that retries may
    /// be; `None`: retries are bounded by `retries` alone.
    pub retry_budget: Option<Percentage>,
}

/// `queue:` of an upstream that has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// Requests that may wait at once.
    pub size: usize,
    /// How long one waits at most.
    pub timeout: Duration,
}

impl Limits {
    /// The limits `config` sets.
    pub fn of(config: &UpstreamConfig) -> Limits {
        Limits {
            max_requests: config.max_requests.as_limit(),
            queue: (!config.queue.is_off()).then_some(QueueSettings {
                size: config.queue.size.0,
                timeout: config.queue.timeout.0,
            }),
            retry_budget: config.retry_budget,
        }
    }

    /// Whether peers have a limit.
    #[inline]
    pub fn limits_peers(&self) -> bool {
        self.max_requests != usize::MAX
    }
}

/// What one look for a peer found.
pub enum Acquire<T> {
    /// A peer, counted in flight there.
    Got(T),
    /// Peers the request may go to, every one of them full.
    Full,
    /// No peer the request may go to, full or not.
    NoPeer,
}

/// How a wait in the queue ended.
pub enum Waited<T> {
    /// A peer freed a slot and the request took it.
    Got(T),
    /// No peer the request may go to any more (they went DOWN).
    NoPeer,
    /// The queue was full: the request did not wait.
    QueueFull,
    /// `queue.timeout` passed.
    TimedOut,
    /// The request's time budget ran out first.
    OutOfTime,
}

/// The live side of one upstream's overload protection, shared by every
/// snapshot that has the upstream.
pub struct OverloadState {
    /// Requests waiting in the queue now.
    waiting: AtomicUsize,
    /// Told when a request in flight on a peer of the upstream ends.
    slot_freed: Notify,
    /// Retries in flight (attempts after a request's first) under a
    /// retry budget.
    retries: AtomicUsize,
    pub metrics: OverloadMetrics,
}

impl OverloadState {
    /// The state of `upstream`, with nothing waiting or in flight.
    pub fn new(upstream: &str) -> Self {
        OverloadState {
            waiting: AtomicUsize::new(0),
            slot_freed: Notify::new(),
            retries: AtomicUsize::new(0),
            metrics: OverloadMetrics::new(upstream),
        }
    }

    /// Export the series of what `limits` switch on.
    pub fn export(&self, limits: &Limits) {
        if limits.queue.is_some() {
            self.metrics.export_queue();
        }
        if limits.retry_budget.is_some() {
            self.metrics.export_retry_budget();
        }
    }

    /// A request in flight on a peer of the upstream has ended (its count
    /// is already down): wake a request that waits for a peer, if any.
    pub fn slot_freed(&self) {
        // Pairs with the fence in `wait_for`: either the waiter sees the
        // lower count, or this sees the waiter.
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.slot_freed.notify_one();
        }
    }

    /// Wait in the queue (`queue`, within the `budget_left` of the
    /// request's time) until `acquire` gets a peer, looking again each time
    /// a request in flight ends.
    pub async fn wait_for<T>(
        &self,
        queue: &QueueSettings,
        budget_left: Duration,
        mut acquire: impl FnMut() -> Acquire<T>,
    ) -> Waited<T> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= queue.size {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            self.metrics.dequeued(QueueResult::Full);
            return Waited::QueueFull;
        }
        let mut place = Place {
            state: self,
            result: QueueResult::Timeout,
        };
        self.metrics.queued();
        let wait = queue.timeout.min(budget_left);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Listen before looking: a slot freed after the look wakes
            // this wait.
            let notified = self.slot_freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            fence(Ordering::SeqCst);
            match acquire() {
                Acquire::Got(peer) => {
                    place.result = QueueResult::Served;
                    return Waited::Got(peer);
                }
                Acquire::NoPeer => {
                    place.result = QueueResult::NoPeer;
                    return Waited::NoPeer;
                }
                Acquire::Full => {}
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return if wait < queue.timeout {
                    Waited::OutOfTime
                } else {
                    Waited::TimedOut
                };
            }
        }
    }

    /// Count a retry in flight, if `budget` of the upstream's
    /// `requests_in_flight` (at least [`MIN_RETRY_CONCURRENCY`]) leaves
    /// room for it; until the returned guard drops. A refusal is counted.
    pub fn reserve_retry(
        self: &Arc<Self>,
        budget: Percentage,
        requests_in_flight: usize,
    ) -> Option<RetryInFlight> {
        let allowed = budget.of(requests_in_flight).max(MIN_RETRY_CONCURRENCY);
        // Counted first, so that retries racing for the last room cannot
        // all take it.
        if self.retries.fetch_add(1, Ordering::Relaxed) >= allowed {
            self.retries.fetch_sub(1, Ordering::Relaxed);
            self.metrics.retry_refused();
            return None;
        }
        Some(RetryInFlight(Arc::clone(self)))
    }

    /// Retries in flight now.
    #[cfg(test)]
    fn retries_in_flight(&self) -> usize {
        self.retries.load(Ordering::Relaxed)
    }
}

/// A request's place in the queue, given up when it drops (however the
/// wait ends, the request's end included).
struct Place<'a> {
    state: &'a OverloadState,
    result: QueueResult,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.state.waiting.fetch_sub(1, Ordering::SeqCst);
        self.state.metrics.dequeued(self.result);
    }
}

/// A retry counted in its upstream's retries in flight until it drops.
pub struct RetryInFlight(Arc<OverloadState>);

impl Drop for RetryInFlight {
    fn drop(&mut self) {
        self.0.retries.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(size: usize, timeout_ms: u64) -> QueueSettings {
        QueueSettings {
            size,
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[test]
    fn retries_get_their_share_of_requests_in_flight_and_at_least_three() {
        let state = Arc::new(OverloadState::new("unit-retry-budget"));
        let budget = Percentage(2000);
        // 20 % of 40 in flight: 8 retries.
        let held: Vec<_> = (0..8)
            .map(|_| state.reserve_retry(budget, 40).expect("room"))
            .collect();
        assert!(state.reserve_retry(budget, 40).is_none());
        assert_eq!(state.retries_in_flight(), 8);
        drop(held);
        // 20 % of 5 is 1, but 3 may always be in flight.
        let held: Vec<_> = (0..3)
            .map(|_| state.reserve_retry(budget, 5).expect("room"))
            .collect();
        assert!(state.reserve_retry(budget, 5).is_none());
        drop(held);
        assert_eq!(state.retries_in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_request_takes_the_slot_a_finished_one_frees() {
        let state = Arc::new(OverloadState::new("unit-queue"));
        let free = Arc::new(AtomicUsize::new(0));
        let waiter = {
            let (state, free) = (Arc::clone(&state), Arc::clone(&free));
            tokio::spawn(async move {
                let acquire = || match free.load(Ordering::SeqCst) {
                    0 => Acquire::Full,
                    _ => Acquire::Got(()),
                };
                let waited = state
                    .wait_for(&queue(1, 5000), Duration::from_secs(30), acquire)
                    .await;
                matches!(waited, Waited::Got(()))
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(state.waiting.load(Ordering::SeqCst), 1);
        // The queue holds one: the next is refused at once.
        let refused = state
            .wait_for(&queue(1, 5000), Duration::from_secs(30), || {
                Acquire::<()>::Full
            })
            .await;
        assert!(matches!(refused, Waited::QueueFull));
        free.store(1, Ordering::SeqCst);
        state.slot_freed();
        assert!(waiter.await.unwrap(), "the waiter was served");
        assert_eq!(state.waiting.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_with_the_queue_timeout_or_the_request_budget() {
        let state = OverloadState::new("unit-queue-timeout");
        let full = || Acquire::<()>::Full;
        let waited = state
            .wait_for(&queue(4, 500), Duration::from_secs(30), full)
            .await;
        assert!(matches!(waited, Waited::TimedOut));
        let waited = state
            .wait_for(&queue(4, 500), Duration::from_millis(200), full)
            .await;
        assert!(matches!(waited, Waited::OutOfTime));
        assert_eq!(state.waiting.load(Ordering::SeqCst), 0);
    }
}
