//! The `access_log:` section: one line per request, written off the
//! request path. Absent (the default), nothing is logged and nothing is
//! paid per request but a branch.

use super::scalar::PositiveCount;
use serde::{Deserialize, Serialize};

/// What `path` says for standard error.
pub const STDERR_PATH: &str = "-";

/// `access_log:` keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogConfig {
    /// The file lines are appended to (created if need be; reopened on
    /// SIGUSR1), or `-` for standard error. Required.
    pub path: String,
    /// How each line is written.
    #[serde(default)]
    pub format: AccessLogFormat,
    /// Lines that may wait for the writer; when that many wait, further
    /// lines are dropped (and counted) rather than slowing requests down.
    /// Fixed from the start: a reload cannot change it.
    #[serde(default = "default_buffer")]
    pub buffer: PositiveCount,
}

/// The default `access_log.buffer`, also the queue of a process started
/// without an access log (a reload may turn it on).
pub const DEFAULT_BUFFER: usize = 4096;

fn default_buffer() -> PositiveCount {
    PositiveCount(DEFAULT_BUFFER)
}

/// The format of the lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessLogFormat {
    /// One JSON object per line, every field named.
    #[default]
    Json,
    /// Apache's and nginx's `combined`, then switchyard's fields as
    /// `key=value`.
    Combined,
}

impl AccessLogConfig {
    /// What serde cannot check alone; the error starts with the key.
    pub fn check(&self) -> Result<(), String> {
        if self.path.trim().is_empty() {
            return Err("path: must name a file, or `-` for standard error".to_string());
        }
        if self.path.contains('\0') {
            return Err("path: must not contain a NUL byte".to_string());
        }
        Ok(())
    }

    /// Whether lines go to standard error.
    pub fn is_stderr(&self) -> bool {
        self.path == STDERR_PATH
    }
}
