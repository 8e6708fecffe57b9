//! The series of one peer name: its resolutions and how many addresses it
//! gives now.

use prometheus::{
    register_int_counter_vec, register_int_gauge_vec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec,
};
use std::sync::LazyLock;

/// How a resolution ended: the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolutionResult {
    /// Addresses.
    Success,
    /// An authoritative "no such name", or no records.
    NotFound,
    /// No usable answer (timeout, SERVFAIL, unreachable server).
    Failure,
}

impl ResolutionResult {
    const ALL: [ResolutionResult; 3] = [
        ResolutionResult::Success,
        ResolutionResult::NotFound,
        ResolutionResult::Failure,
    ];

    fn label(self) -> &'static str {
        match self {
            ResolutionResult::Success => "success",
            ResolutionResult::NotFound => "not_found",
            ResolutionResult::Failure => "failure",
        }
    }
}

static FAMILIES: LazyLock<(IntCounterVec, IntGaugeVec)> = LazyLock::new(|| {
    (
        register_int_counter_vec!(
            "switchyard_dns_resolutions_total",
            "Resolutions of a peer name, by result (success, not_found, failure).",
            &["upstream", "name", "result"]
        )
        .expect("register switchyard_dns_resolutions_total"),
        register_int_gauge_vec!(
            "switchyard_dns_addresses",
            "Peer addresses a name gives now (the last known ones while its resolution fails).",
            &["upstream", "name"]
        )
        .expect("register switchyard_dns_addresses"),
    )
});

/// The series of the name `name` of the upstream `upstream`, removed when
/// the handles drop (the name left the configuration).
pub struct DnsMetrics {
    upstream: String,
    name: String,
    results: [IntCounter; 3],
    addresses: IntGauge,
}

impl DnsMetrics {
    pub fn new(upstream: &str, name: &str) -> Self {
        let (resolutions, addresses) = &*FAMILIES;
        DnsMetrics {
            upstream: upstream.to_string(),
            name: name.to_string(),
            results: ResolutionResult::ALL
                .map(|r| resolutions.with_label_values(&[upstream, name, r.label()])),
            addresses: addresses.with_label_values(&[upstream, name]),
        }
    }

    /// Count one resolution.
    pub fn count(&self, result: ResolutionResult) {
        self.results[result as usize].inc();
    }

    /// The number of addresses the name gives now.
    pub fn set_addresses(&self, count: usize) {
        self.addresses.set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}

impl Drop for DnsMetrics {
    fn drop(&mut self) {
        let (resolutions, addresses) = &*FAMILIES;
        let (upstream, name) = (self.upstream.as_str(), self.name.as_str());
        for result in ResolutionResult::ALL {
            let _ = resolutions.remove_label_values(&[upstream, name, result.label()]);
        }
        let _ = addresses.remove_label_values(&[upstream, name]);
    }
}
