//! The `server:` section: process-level settings, handed to Pingora's
//! [`ServerConf`].
//!
//! Pingora's own struct accepts (and silently ignores) any key; this one
//! lists the keys switchyard supports and rejects the rest, and it carries
//! switchyard's defaults, which differ from Pingora's where Pingora's would
//! surprise an operator (a 300 s grace period makes SIGTERM look like a hang).

use super::scalar::PositiveCount;
use pingora_core::server::configuration::ServerConf;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `server:` keys. Every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Worker threads of each service. Default: the number of CPUs.
    pub threads: PositiveCount,
    /// Detach and run in the background (the `-d` flag does the same).
    pub daemon: bool,
    /// Where the running process writes its pid.
    pub pid_file: String,
    /// Where what operators set through the admin API (drained, disabled,
    /// weights) is kept across restarts. Default: `switchyard.state` in the
    /// pid file's directory.
    pub state_file: Option<String>,
    /// Unix socket over which a new process takes the listeners of the old
    /// one during a hot upgrade (`-u`).
    pub upgrade_sock: String,
    /// Log file when running as a daemon; stderr otherwise.
    pub error_log: Option<String>,
    /// Drop privileges to this user after binding (daemon mode).
    pub user: Option<String>,
    /// Drop privileges to this group after binding (daemon mode).
    pub group: Option<String>,
    /// After SIGTERM or an upgrade, how long in-flight requests may finish.
    pub grace_period_seconds: u64,
    /// After the grace period, how long the runtimes get to stop.
    pub graceful_shutdown_timeout_seconds: u64,
    /// Let idle threads steal work from busy ones.
    pub work_stealing: bool,
    /// Accept tasks per listening socket.
    pub listener_tasks_per_fd: PositiveCount,
    /// Idle keep-alive connections kept to the peers, in all.
    pub upstream_keepalive_pool_size: PositiveCount,
}

impl Default for ServerSettings {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        ServerSettings {
            threads: PositiveCount(cpus),
            daemon: false,
            pid_file: "/tmp/switchyard.pid".to_string(),
            state_file: None,
            upgrade_sock: "/tmp/switchyard_upgrade.sock".to_string(),
            error_log: None,
            user: None,
            group: None,
            grace_period_seconds: 5,
            graceful_shutdown_timeout_seconds: 5,
            work_stealing: true,
            listener_tasks_per_fd: PositiveCount(1),
            upstream_keepalive_pool_size: PositiveCount(128),
        }
    }
}

impl ServerSettings {
    /// `state_file`, or its default beside the pid file.
    pub fn state_file(&self) -> PathBuf {
        match &self.state_file {
            Some(file) => PathBuf::from(file),
            None => Path::new(&self.pid_file)
                .parent()
                .unwrap_or(Path::new("."))
                .join("switchyard.state"),
        }
    }

    /// The Pingora server configuration these settings stand for.
    pub fn to_server_conf(&self) -> ServerConf {
        ServerConf {
            threads: self.threads.0,
            daemon: self.daemon,
            pid_file: self.pid_file.clone(),
            upgrade_sock: self.upgrade_sock.clone(),
            error_log: self.error_log.clone(),
            user: self.user.clone(),
            group: self.group.clone(),
            grace_period_seconds: Some(self.grace_period_seconds),
            graceful_shutdown_timeout_seconds: Some(self.graceful_shutdown_timeout_seconds),
            work_stealing: self.work_stealing,
            listener_tasks_per_fd: self.listener_tasks_per_fd.0,
            upstream_keepalive_pool_size: self.upstream_keepalive_pool_size.0,
            ..ServerConf::default()
        }
    }
}
