//! Knowing when switchyard is ready, and saying so.
//!
//! Pingora starts a listening service before its socket is bound, and its
//! daemon readiness signal (SIGUSR1 to the waiting foreground process) fires
//! even earlier, before the listeners exist. switchyard wants `-d` to return
//! only once the proxy and metrics listeners accept connections, so that a
//! script or systemd can rely on it. [`Readiness`] runs after the proxy has
//! started, connects to each listener until it answers, then logs that the
//! server is ready and, in daemon mode, releases the foreground process.
//! A listener that never comes up (its port taken after all) is fatal: a
//! balancer without its listener must not linger looking alive.

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Longer than Pingora's own bind retries (30 x 1 s) for a port that is
/// still held by a process that is going away.
pub const LISTENER_LIMIT: Duration = Duration::from_secs(40);

pub struct Readiness {
    listeners: Vec<SocketAddr>,
    /// The foreground process of `switchyard -d`, waiting for SIGUSR1.
    notify_pid: Option<u32>,
}

impl Readiness {
    pub fn new(listeners: Vec<SocketAddr>, notify_pid: Option<u32>) -> Self {
        Readiness {
            listeners,
            notify_pid,
        }
    }
}

/// The address to connect to for a listener bound to `addr` (a wildcard
/// address is reached through loopback).
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

#[async_trait]
impl BackgroundService for Readiness {
    async fn start(&self, _shutdown: ShutdownWatch) {
        let started = Instant::now();
        for listener in &self.listeners {
            let target = reachable(*listener);
            while tokio::net::TcpStream::connect(target).await.is_err() {
                if started.elapsed() > LISTENER_LIMIT {
                    log::error!(
                        "listener {listener} is not accepting connections after {LISTENER_LIMIT:?}; exiting"
                    );
                    std::process::exit(1);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        log::info!("switchyard is ready (pid {})", std::process::id());
        if let Some(pid) = self.notify_pid {
            notify(pid);
        }
    }
}

/// Send SIGUSR1 to `pid`, the foreground process waiting in Pingora's
/// `daemon_wait_for_ready`.
fn notify(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        log::error!("cannot signal readiness to pid {pid}: not a valid pid");
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, libc::SIGUSR1) } != 0 {
        let error = std::io::Error::last_os_error();
        log::error!("cannot signal readiness to pid {pid}: {error}");
    }
}
