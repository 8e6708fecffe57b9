//! The series of one upstream's overload protection: requests waiting for
//! a peer below `max_requests`, how their waits ended, and retries the
//! retry budget refused.
//!
//! Each part's series appear once an upstream's configuration asks for it
//! ([`OverloadMetrics::export_queue`], [`OverloadMetrics::export_retry_budget`]),
//! so that upstreams without overload protection export nothing more;
//! counting is then one atomic add on a handle resolved there.

use prometheus::{
    register_int_counter_vec, register_int_gauge_vec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec,
};
use std::sync::{LazyLock, OnceLock};

/// How a request's wait in the queue ended: the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueResult {
    /// A peer took it.
    Served,
    /// Its wait ran out (`queue.timeout`, or the request's time budget).
    Timeout,
    /// The queue was full: it did not wait.
    Full,
    /// No peer could take it any more (they went DOWN while it waited).
    NoPeer,
}

impl QueueResult {
    const ALL: [QueueResult; 4] = [
        QueueResult::Served,
        QueueResult::Timeout,
        QueueResult::Full,
        QueueResult::NoPeer,
    ];

    fn label(self) -> &'static str {
        match self {
            QueueResult::Served => "served",
            QueueResult::Timeout => "timeout",
            QueueResult::Full => "full",
            QueueResult::NoPeer => "no_peer",
        }
    }
}

struct Families {
    queued: IntGaugeVec,
    queue_results: IntCounterVec,
    retries_refused: IntCounterVec,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    Families {
    queued: register_int_gauge_vec!(
        "switchyard_upstream_queued_requests",
        "Requests waiting now for a peer below max_requests.",
        &["upstream"]
    )
    .expect("register switchyard_upstream_queued_requests"),
    queue_results: register_int_counter_vec!(
        "switchyard_upstream_queue_total",
        "Requests that found every peer at max_requests, by how their wait ended (served; timeout; full: not queued; no_peer: the peers went down).",
        &["upstream", "result"]
    )
    .expect("register switchyard_upstream_queue_total"),
    retries_refused: register_int_counter_vec!(
        "switchyard_upstream_retries_refused_total",
        "Retries the upstream's retry_budget refused (the request ended with the error it had).",
        &["upstream"]
    )
    .expect("register switchyard_upstream_retries_refused_total"),
}
});

/// The queue's handles.
struct QueueHandles {
    queued: IntGauge,
    results: [IntCounter; QueueResult::ALL.len()],
}

/// The overload series of one upstream, removed when the handles drop (the
/// upstream left the configuration).
pub struct OverloadMetrics {
    upstream: String,
    queue: OnceLock<QueueHandles>,
    retries_refused: OnceLock<IntCounter>,
}

impl OverloadMetrics {
    /// The handles of `upstream`, none exported yet.
    pub fn new(upstream: &str) -> Self {
        OverloadMetrics {
            upstream: upstream.to_string(),
            queue: OnceLock::new(),
            retries_refused: OnceLock::new(),
        }
    }

    fn queue(&self) -> &QueueHandles {
        self.queue.get_or_init(|| {
            let f = &*FAMILIES;
            let upstream = self.upstream.as_str();
            QueueHandles {
                queued: f.queued.with_label_values(&[upstream]),
                results: QueueResult::ALL
                    .map(|r| f.queue_results.with_label_values(&[upstream, r.label()])),
            }
        })
    }

    fn retries_refused(&self) -> &IntCounter {
        self.retries_refused.get_or_init(|| {
            FAMILIES
                .retries_refused
                .with_label_values(&[self.upstream.as_str()])
        })
    }

    /// Export the queue's series (the upstream has a queue).
    pub fn export_queue(&self) {
        self.queue();
    }

    /// Export the retry budget's series (the upstream has one).
    pub fn export_retry_budget(&self) {
        self.retries_refused();
    }

    /// A request starts waiting.
    pub fn queued(&self) {
        self.queue().queued.inc();
    }

    /// A request's wait ended with `result` (`Full`: it never started).
    pub fn dequeued(&self, result: QueueResult) {
        let queue = self.queue();
        if result != QueueResult::Full {
            queue.queued.dec();
        }
        queue.results[result as usize].inc();
    }

    /// The retry budget refused a retry.
    pub fn retry_refused(&self) {
        self.retries_refused().inc();
    }
}

impl Drop for OverloadMetrics {
    fn drop(&mut self) {
        let f = &*FAMILIES;
        let upstream = self.upstream.as_str();
        if self.queue.get().is_some() {
            let _ = f.queued.remove_label_values(&[upstream]);
            for result in QueueResult::ALL {
                let _ = f
                    .queue_results
                    .remove_label_values(&[upstream, result.label()]);
            }
        }
        if self.retries_refused.get().is_some() {
            let _ = f.retries_refused.remove_label_values(&[upstream]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exported(upstream: &str) -> Vec<String> {
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&prometheus::gather())
            .unwrap();
        let label = format!("upstream=\"{upstream}\"");
        text.lines()
            .filter(|l| l.contains(&label))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn series_appear_when_asked_for_and_leave_with_the_handles() {
        let metrics = OverloadMetrics::new("unit-overload");
        assert!(exported("unit-overload").is_empty());
        metrics.export_queue();
        metrics.export_retry_budget();
        assert_eq!(exported("unit-overload").len(), 6);
        metrics.queued();
        metrics.queued();
        metrics.dequeued(QueueResult::Served);
        metrics.dequeued(QueueResult::Full);
        metrics.retry_refused();
        let series = exported("unit-overload");
        for line in [
            "switchyard_upstream_queued_requests{upstream=\"unit-overload\"} 1",
            "switchyard_upstream_queue_total{result=\"served\",upstream=\"unit-overload\"} 1",
            "switchyard_upstream_queue_total{result=\"full\",upstream=\"unit-overload\"} 1",
            "switchyard_upstream_retries_refused_total{upstream=\"unit-overload\"} 1",
        ] {
            assert!(series.iter().any(|s| s == line), "{line} in {series:?}");
        }
        drop(metrics);
        assert!(exported("unit-overload").is_empty());
    }
}
