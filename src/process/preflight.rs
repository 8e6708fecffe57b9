//! Checks made before the server starts, and before `-d` detaches it.
//!
//! Inside Pingora a taken port or an unwritable log file surfaces late, as a
//! retry loop and a panic in a service thread of a daemon that already told
//! its caller it started. Checked here, each is a clear error on the
//! terminal and a non-zero exit.

use crate::config::Config;
use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::Path;

/// What a hot upgrade changes about the checks: the listening sockets come
/// from the running process, so their ports are expected to be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Fresh,
    Upgrade,
}

/// Check that `config` can start; the first problem found, naming its key.
pub fn check(config: &Config, daemon: bool, start: Start) -> Result<(), String> {
    if start == Start::Fresh {
        let listeners = config.listen.addrs().map(|addr| ("listen", addr));
        for (key, addr) in listeners.chain([("metrics", config.metrics.0)]) {
            // Dropped at once; Pingora binds the port again moments later.
            TcpListener::bind(addr).map_err(|e| format!("{key}: cannot listen on {addr}: {e}"))?;
        }
    }
    if daemon {
        let server = &config.server;
        if let Some(log) = &server.error_log {
            OpenOptions::new()
                .append(true)
                .create(true)
                .open(log)
                .map_err(|e| format!("server.error_log: cannot open {log}: {e}"))?;
        }
        let pid_dir = Path::new(&server.pid_file)
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty());
        if let Some(dir) = pid_dir {
            if !dir.is_dir() {
                return Err(format!(
                    "server.pid_file: directory {} does not exist",
                    dir.display()
                ));
            }
        }
    }
    Ok(())
}
