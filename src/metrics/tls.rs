//! TLS on the listeners: handshakes by result, and when each certificate
//! expires (what the "certificate expires soon" alert reads).

use crate::listen::tls::CertificateInfo;
use prometheus::IntGaugeVec;
use prometheus::{register_int_counter_vec, register_int_gauge_vec, IntCounter, IntCounterVec};
use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

static HANDSHAKES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "switchyard_tls_handshakes_total",
        "TLS handshakes on a listener, by result: ok, failed (the client or its bytes were not TLS switchyard accepts) or timeout (not done within limits.header_timeout).",
        &["listener", "result"]
    )
    .expect("register switchyard_tls_handshakes_total")
});

static EXPIRY: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "switchyard_tls_certificate_expiry_timestamp_seconds",
        "When a certificate of a TLS listener expires (notAfter), in seconds since the Unix epoch, by certificate file and its first name.",
        &["file", "name"]
    )
    .expect("register switchyard_tls_certificate_expiry_timestamp_seconds")
});

/// How a handshake ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeResult {
    Ok,
    Failed,
    Timeout,
}

/// The handshake counters of one listener, resolved once.
pub struct HandshakeMetrics {
    ok: IntCounter,
    failed: IntCounter,
    timeout: IntCounter,
}

impl HandshakeMetrics {
    /// The counters of the listener labelled `listener` (its address).
    pub fn new(listener: &str) -> Self {
        let counter = |result| HANDSHAKES.with_label_values(&[listener, result]);
        HandshakeMetrics {
            ok: counter("ok"),
            failed: counter("failed"),
            timeout: counter("timeout"),
        }
    }

    pub fn record(&self, result: HandshakeResult) {
        match result {
            HandshakeResult::Ok => &self.ok,
            HandshakeResult::Failed => &self.failed,
            HandshakeResult::Timeout => &self.timeout,
        }
        .inc();
    }
}

/// The expiry series shown now, by (file, name).
static SHOWN: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Show the expiry of `certificates` (those of the configuration in use)
/// and of no other: series of certificates a reload removed go.
pub fn show_certificates<'a>(certificates: impl Iterator<Item = &'a CertificateInfo>) {
    let mut shown = SHOWN.lock().unwrap_or_else(|p| p.into_inner());
    let mut now = HashSet::new();
    for certificate in certificates {
        EXPIRY
            .with_label_values(&[&certificate.file, &certificate.name])
            .set(certificate.not_after);
        now.insert((certificate.file.clone(), certificate.name.clone()));
    }
    for (file, name) in shown.iter().filter(|key| !now.contains(*key)) {
        let _ = EXPIRY.remove_label_values(&[file, name]);
    }
    *shown = now.into_iter().collect();
}
