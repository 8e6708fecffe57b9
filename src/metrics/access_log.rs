//! The access log's own counters: lines written, and lines dropped because
//! the writer could not keep up (a full queue) or could not write.

use prometheus::IntCounter;
use std::sync::LazyLock;

static WRITTEN: LazyLock<IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "switchyard_access_log_lines_total",
        "Access log lines written."
    )
    .expect("register switchyard_access_log_lines_total")
});

static DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "switchyard_access_log_dropped_total",
        "Access log lines dropped: the queue to the writer was full, or the file could not be written."
    )
    .expect("register switchyard_access_log_dropped_total")
});

/// The handles, resolved once.
#[derive(Clone)]
pub struct AccessLogMetrics {
    written: IntCounter,
    dropped: IntCounter,
}

impl AccessLogMetrics {
    pub fn new() -> Self {
        AccessLogMetrics {
            written: WRITTEN.clone(),
            dropped: DROPPED.clone(),
        }
    }

    /// Count `lines` written.
    pub fn written(&self, lines: u64) {
        self.written.inc_by(lines);
    }

    /// Count one line dropped.
    pub fn dropped(&self) {
        self.dropped.inc();
    }

    /// Count `lines` dropped.
    pub fn dropped_lines(&self, lines: u64) {
        self.dropped.inc_by(lines);
    }
}

impl Default for AccessLogMetrics {
    fn default() -> Self {
        Self::new()
    }
}
