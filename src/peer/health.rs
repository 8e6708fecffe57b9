//! Peer health: the one record of each peer's state.
//!
//! [`PeerHealth`] is the single source of truth for UP/DOWN: selection reads
//! its flag on every request, the status page and `switchyard_peer_up` read
//! the same record. The active probe ([`probe`](super::probe)) and passive
//! health (the request path) both feed it. It imports nothing of the crate.
//!
//! The rules, as in HAProxy and nginx's health-check modules: a peer starts UP
//! (untested); its first probe decides its state at once, so a peer that is
//! down at startup never takes traffic after the first round; after that it
//! takes `fall` consecutive failures to go DOWN and `rise` consecutive
//! successes to come back UP.
//!
//! Passive health (nginx's `max_fails`, Envoy's outlier detection) feeds the
//! same record from the request path: `max_fails` consecutive failed client
//! requests take a peer DOWN at once, without waiting for the probe, and only
//! the probe (`rise` successes) brings it back.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// What the status page shows of a peer's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthRecord {
    pub up: bool,
    /// Whether any probe has run yet.
    pub probed: bool,
    pub consecutive_successes: u32,
    pub consecutive_failures: u32,
    pub last_probe: Option<SystemTime>,
    pub last_probe_latency: Option<Duration>,
    /// The error of the last failed probe, kept until a probe succeeds.
    pub last_error: Option<String>,
    /// When the peer last went UP or DOWN.
    pub last_change: Option<SystemTime>,
    /// While DOWN: what took it down, `probe: ...` or `passive: ...`.
    pub down_reason: Option<String>,
}

impl Default for HealthRecord {
    fn default() -> Self {
        HealthRecord {
            up: true,
            probed: false,
            consecutive_successes: 0,
            consecutive_failures: 0,
            last_probe: None,
            last_probe_latency: None,
            last_error: None,
            last_change: None,
            down_reason: None,
        }
    }
}

/// The outcome of one probe.
pub struct ProbeResult {
    pub at: SystemTime,
    pub latency: Duration,
    /// `None` on success, else why it failed.
    pub error: Option<String>,
}

/// A change of state caused by a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The first probe passed: the peer stays UP, now confirmed.
    Confirmed,
    WentUp,
    WentDown,
}

/// The rise/fall thresholds of an upstream.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub rise: u32,
    pub fall: u32,
}

/// One peer's health: a lock-free flag for the request path and the full
/// record, locked only by the probe of this peer and by the status page.
pub struct PeerHealth {
    up: AtomicBool,
    /// Consecutive failed client requests (passive health). An atomic, so
    /// the request path never takes the record's lock unless a peer is
    /// about to go DOWN.
    failed_requests: AtomicU32,
    record: Mutex<HealthRecord>,
}

impl Default for PeerHealth {
    fn default() -> Self {
        Self::new()
    }
}

impl PeerHealth {
    /// A peer not probed yet: UP, as in nginx and HAProxy (at startup, the
    /// proxy listener opens only after the first probe round).
    pub fn new() -> Self {
        PeerHealth {
            up: AtomicBool::new(true),
            failed_requests: AtomicU32::new(0),
            record: Mutex::new(HealthRecord::default()),
        }
    }

    /// A peer added to a running balancer: DOWN until its first probe
    /// passes, so that it gets no request before one has.
    pub fn awaiting_probe() -> Self {
        PeerHealth {
            up: AtomicBool::new(false),
            failed_requests: AtomicU32::new(0),
            record: Mutex::new(HealthRecord {
                up: false,
                down_reason: Some("not probed yet".to_string()),
                ..HealthRecord::default()
            }),
        }
    }

    /// Whether the peer may take traffic.
    #[inline]
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// A copy of the record, for reports.
    pub fn snapshot(&self) -> HealthRecord {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, HealthRecord> {
        // A panic elsewhere while holding the lock leaves a record that is
        // still a valid record; keep using it.
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Apply one probe result under the rise/fall rules.
    pub fn observe(&self, probe: ProbeResult, thresholds: Thresholds) -> Option<Transition> {
        let mut record = self.lock();
        let first = !record.probed;
        record.probed = true;
        record.last_probe = Some(probe.at);
        record.last_probe_latency = Some(probe.latency);
        let passed = probe.error.is_none();
        if passed {
            record.consecutive_successes = record.consecutive_successes.saturating_add(1);
            record.consecutive_failures = 0;
            record.last_error = None;
        } else {
            record.consecutive_failures = record.consecutive_failures.saturating_add(1);
            record.consecutive_successes = 0;
            record.last_error = probe.error;
        }
        let transition = match (record.up, passed) {
            (true, true) if first => Some(Transition::Confirmed),
            (true, false) if first || record.consecutive_failures >= thresholds.fall => {
                Some(Transition::WentDown)
            }
            (false, true) if first || record.consecutive_successes >= thresholds.rise => {
                Some(Transition::WentUp)
            }
            _ => None,
        };
        match transition {
            Some(Transition::WentDown) => {
                record.up = false;
                record.down_reason = record.last_error.as_ref().map(|e| format!("probe: {e}"));
            }
            Some(Transition::WentUp) => {
                record.up = true;
                record.down_reason = None;
                self.failed_requests.store(0, Ordering::Relaxed);
            }
            // A peer that waited for its first probe, and failed it.
            None if first && !passed && !record.up => {
                record.down_reason = record.last_error.as_ref().map(|e| format!("probe: {e}"));
            }
            _ => {}
        }
        if matches!(transition, Some(Transition::WentDown | Transition::WentUp)) {
            record.last_change = Some(probe.at);
        }
        self.up.store(record.up, Ordering::Relaxed);
        transition
    }

    /// A client request to this peer failed (`reason`). With `max_fails`
    /// consecutive failures (0: passive health off) an UP peer goes DOWN.
    pub fn record_request_failure(&self, max_fails: u32, reason: &str) -> Option<Transition> {
        if max_fails == 0 {
            return None;
        }
        let failures = self.failed_requests.fetch_add(1, Ordering::Relaxed) + 1;
        if failures < max_fails || !self.is_up() {
            return None;
        }
        let mut record = self.lock();
        if !record.up {
            return None; // another request got here first
        }
        record.up = false;
        // The probe must see `rise` fresh successes to bring it back.
        record.consecutive_successes = 0;
        record.last_change = Some(SystemTime::now());
        record.down_reason = Some(format!(
            "passive: {failures} failed requests in a row, last: {reason}"
        ));
        self.up.store(false, Ordering::Relaxed);
        self.failed_requests.store(0, Ordering::Relaxed);
        Some(Transition::WentDown)
    }

    /// A client request to this peer succeeded: failures are no longer
    /// consecutive.
    #[inline]
    pub fn record_request_success(&self) {
        // Read first: a store would bounce the cache line between threads
        // on every request.
        if self.failed_requests.load(Ordering::Relaxed) != 0 {
            self.failed_requests.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Thresholds = Thresholds { rise: 2, fall: 3 };

    fn probe(ok: bool) -> ProbeResult {
        ProbeResult {
            at: SystemTime::now(),
            latency: Duration::from_millis(1),
            error: (!ok).then(|| "refused".to_string()),
        }
    }

    #[test]
    fn the_first_probe_decides() {
        let health = PeerHealth::new();
        assert!(health.is_up());
        assert_eq!(
            health.observe(probe(false), RULES),
            Some(Transition::WentDown)
        );
        assert!(!health.is_up());

        let health = PeerHealth::new();
        assert_eq!(
            health.observe(probe(true), RULES),
            Some(Transition::Confirmed)
        );
        assert!(health.is_up());
    }

    #[test]
    fn a_peer_added_while_running_waits_for_its_first_probe() {
        let health = PeerHealth::awaiting_probe();
        assert!(!health.is_up());
        assert_eq!(
            health.snapshot().down_reason.as_deref(),
            Some("not probed yet")
        );
        assert_eq!(health.observe(probe(true), RULES), Some(Transition::WentUp));
        assert!(health.is_up());
        let failing = PeerHealth::awaiting_probe();
        assert_eq!(failing.observe(probe(false), RULES), None);
        assert_eq!(
            failing.snapshot().down_reason.as_deref(),
            Some("probe: refused")
        );
    }

    #[test]
    fn consecutive_failed_requests_take_a_peer_down_until_probes_bring_it_back() {
        let health = PeerHealth::new();
        health.observe(probe(true), RULES);
        assert_eq!(health.record_request_failure(3, "refused"), None);
        health.record_request_success();
        assert_eq!(health.record_request_failure(3, "refused"), None);
        assert_eq!(health.record_request_failure(3, "refused"), None);
        assert_eq!(
            health.record_request_failure(3, "reset"),
            Some(Transition::WentDown)
        );
        assert!(!health.is_up());
        let record = health.snapshot();
        assert_eq!(
            record.down_reason.as_deref(),
            Some("passive: 3 failed requests in a row, last: reset")
        );
        assert_eq!(
            health.record_request_failure(3, "reset"),
            None,
            "already DOWN"
        );
        assert_eq!(health.observe(probe(true), RULES), None);
        assert_eq!(health.observe(probe(true), RULES), Some(Transition::WentUp));
        assert_eq!(health.snapshot().down_reason, None);
        assert_eq!(
            PeerHealth::new().record_request_failure(0, "x"),
            None,
            "0: off"
        );
    }

    #[test]
    fn fall_and_rise_count_consecutive_results() {
        let health = PeerHealth::new();
        health.observe(probe(true), RULES);
        assert_eq!(health.observe(probe(false), RULES), None);
        assert_eq!(health.observe(probe(false), RULES), None);
        assert_eq!(
            health.observe(probe(true), RULES),
            None,
            "a success resets the count"
        );
        assert_eq!(health.observe(probe(false), RULES), None);
        assert_eq!(health.observe(probe(false), RULES), None);
        assert_eq!(
            health.observe(probe(false), RULES),
            Some(Transition::WentDown)
        );
        let record = health.snapshot();
        assert!(!record.up);
        assert_eq!(record.consecutive_failures, 3);
        assert_eq!(record.last_error.as_deref(), Some("refused"));
        assert_eq!(record.down_reason.as_deref(), Some("probe: refused"));

        assert_eq!(health.observe(probe(true), RULES), None);
        assert!(!health.is_up());
        assert_eq!(health.observe(probe(true), RULES), Some(Transition::WentUp));
        assert!(health.is_up());
        let record = health.snapshot();
        assert_eq!(record.consecutive_successes, 2);
        assert_eq!(record.last_error, None);
        assert!(record.last_change.is_some());
    }
}
