//! The active probe: Pingora's [`HttpHealthCheck`] with switchyard's rules
//! on top.
//!
//! A [`Prober`] is built per upstream and snapshot from its `health_check`
//! settings; the schedule that runs it over the live peer set is
//! `live::probes`. Each result goes through the
//! rise/fall rules of the peer's
//! [`PeerHealth`](super::health::PeerHealth). A probe that this host could
//! not make (out of file descriptors) says nothing about the peer and is
//! skipped.

use super::health::{ProbeResult, Thresholds};
use super::Peer;
use crate::config::HealthCheckConfig;
use crate::resources::is_exhausted;
use pingora_core::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_load_balancing::health_check::{HealthCheck, HttpHealthCheck};
use pingora_load_balancing::{Backend, Extensions};
use std::time::{Duration, Instant, SystemTime};

/// The probe of one upstream's peers.
pub struct Prober {
    http: HttpHealthCheck,
    thresholds: Thresholds,
    timeout: Duration,
    /// The pause between two rounds.
    pub interval: Duration,
}

impl Prober {
    pub fn new(config: &HealthCheckConfig) -> Result<Self> {
        let timeout = config.timeout.0;
        let mut http = HttpHealthCheck::new(&config.host, false);
        let mut request = RequestHeader::build("GET", config.path.0.as_bytes(), None)?;
        request.insert_header("Host", config.host.as_str())?;
        request.insert_header("User-Agent", "switchyard-health-check")?;
        http.req = request;
        let options = &mut http.peer_template.options;
        options.connection_timeout = Some(timeout);
        options.read_timeout = Some(timeout);
        options.write_timeout = Some(timeout);
        let expected = config.expected_status.clone();
        http.validator = Some(Box::new(move |response| {
            let code = response.status.as_u16();
            if expected.contains(code) {
                Ok(())
            } else {
                Error::e_explain(
                    ErrorType::CustomCode("unexpected status", code),
                    format!("HTTP {code}"),
                )
            }
        }));
        Ok(Prober {
            http,
            thresholds: Thresholds {
                rise: config.rise.0,
                fall: config.fall.0,
            },
            timeout,
            interval: config.interval.0,
        })
    }

    /// Probe `peer` once and apply the result to its health.
    pub async fn probe(&self, peer: &Peer) {
        if let Some(result) = self.run(peer).await {
            peer.apply_probe(result, self.thresholds);
        }
    }

    /// Run one probe, bounded by the configured timeout as a whole. `None`
    /// when it could not be made because this host is out of resources
    /// (file descriptors): that says nothing about the peer.
    async fn run(&self, peer: &Peer) -> Option<ProbeResult> {
        let target = Backend {
            addr: PingoraAddr::Inet(peer.addr),
            weight: 1,
            ext: Extensions::new(),
        };
        let at = SystemTime::now();
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.timeout, self.http.check(&target)).await;
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) if is_exhausted(&e) => {
                log::warn!("probe of {} not made: {}", peer.addr, describe(&e));
                return None;
            }
            Ok(Err(e)) => Some(describe(&e)),
            Err(_) => Some(format!("timed out after {:?}", self.timeout)),
        };
        Some(ProbeResult {
            at,
            latency: started.elapsed(),
            error,
        })
    }
}

/// A one-line reason for a failed probe: `HTTP 500`, or the error kind and
/// its innermost cause (`ConnectRefused: Connection refused (os error 111)`).
fn describe(error: &Error) -> String {
    if let (ErrorType::CustomCode(..), Some(context)) = (error.etype(), error.context.as_ref()) {
        return context.as_str().to_string();
    }
    let kind = error.etype().as_str();
    let root = error.root_cause();
    if std::ptr::addr_eq(root, error) {
        kind.to_string()
    } else {
        format!("{kind}: {root}")
    }
}
