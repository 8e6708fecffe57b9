//! The signals an operator, a logrotate or an nginx habit sends, besides
//! Pingora's own (SIGTERM, SIGINT, SIGQUIT).
//!
//! Their default action is to end the process, which is the last thing a
//! balancer should do on a `kill -HUP` or a logrotate's `postrotate`. So
//! from the very start ([`ignore_until_handled`]) they are ignored, and once
//! the server runs, [`SignalHandler`] acts on them, with a log line each:
//! - SIGHUP reloads the configuration file ([`reload`](super::reload));
//! - SIGUSR1 reopens `server.error_log` and the access log (after
//!   logrotate moved them away).

use super::reload::FileReload;
use crate::admin::api::Reload;
use crate::http::access_log::AccessLog;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};

/// Ignore SIGHUP and SIGUSR1 until [`SignalHandler`] takes them over: call
/// first thing in `main`, before anything could send one.
pub fn ignore_until_handled() {
    for signal in [libc::SIGHUP, libc::SIGUSR1] {
        // SAFETY: setting a signal's disposition to SIG_IGN has no
        // memory-safety preconditions.
        unsafe {
            libc::signal(signal, libc::SIG_IGN);
        }
    }
}

/// Acts on SIGHUP and SIGUSR1 while the server runs.
pub struct SignalHandler {
    /// The log file that stderr goes to (daemon mode), reopened on SIGUSR1.
    error_log: Option<String>,
    /// Reopened on SIGUSR1 too.
    access_log: Arc<AccessLog>,
    /// What SIGHUP does.
    reload: Arc<FileReload>,
}

impl SignalHandler {
    /// `error_log`: where stderr was sent when the process daemonized;
    /// `access_log`: the proxy's; `reload`: the reload of the file the
    /// process was started with.
    pub fn new(
        error_log: Option<String>,
        access_log: Arc<AccessLog>,
        reload: Arc<FileReload>,
    ) -> Self {
        SignalHandler {
            error_log,
            access_log,
            reload,
        }
    }

    fn reopen_logs(&self) {
        // The writer thread reopens it, and says so.
        self.access_log.reopen();
        let Some(path) = &self.error_log else {
            log::info!("SIGUSR1: logging to stderr, no log file to reopen");
            return;
        };
        match reopen_stderr(path) {
            Ok(()) => log::info!("SIGUSR1: reopened {path}"),
            Err(e) => {
                log::error!("SIGUSR1: cannot reopen {path}: {e}; logging goes on to the old file")
            }
        }
    }
}

/// Point stderr at a freshly opened `path` (appending, created if need be).
fn reopen_stderr(path: &str) -> io::Result<()> {
    let file = OpenOptions::new().append(true).create(true).open(path)?;
    // SAFETY: both are open file descriptors; dup2 replaces stderr
    // atomically, so a concurrent log line goes to one file or the other.
    if unsafe { libc::dup2(file.as_raw_fd(), libc::STDERR_FILENO) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[async_trait]
impl BackgroundService for SignalHandler {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let (mut hangup, mut user1) = match (
            signal(SignalKind::hangup()),
            signal(SignalKind::user_defined1()),
        ) {
            (Ok(hangup), Ok(user1)) => (hangup, user1),
            (Err(e), _) | (_, Err(e)) => {
                log::error!("cannot handle SIGHUP and SIGUSR1 ({e}); they stay ignored");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = hangup.recv() => {
                    log::info!("SIGHUP: reloading the configuration");
                    let _ = self.reload.reload().await;
                }
                _ = user1.recv() => self.reopen_logs(),
                _ = shutdown.changed() => return,
            }
        }
    }
}
