//! The active probe: Pingora's [`HttpHealthCheck`] with switchyard's rules
//! on top.
//!
//! Probes are scheduled by Pingora's
//! [`HealthCheckService`](pingora_load_balancing::HealthCheckService);
//! [`ProbeCheck`] runs the HTTP check, applies the rise/fall rules in the
//! peer's [`PeerHealth`](super::health::PeerHealth), and hands the verdict
//! back to Pingora, so Pingora's own view of the peer agrees with ours. A
//! probe that this host could not make (out of file descriptors) says
//! nothing about the peer and is skipped.

use super::health::{ProbeResult, Thresholds};
use super::PeerTable;
use crate::config::HealthCheckConfig;
use crate::resources::is_exhausted;
use async_trait::async_trait;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_load_balancing::health_check::{HealthCheck, HttpHealthCheck};
use pingora_load_balancing::Backend;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Pingora's [`HttpHealthCheck`] with switchyard's rules on top: records
/// every probe in the peer's [`PeerHealth`] and metrics, and reports the
/// peer's resulting state (not the raw probe result) to Pingora.
pub struct ProbeCheck {
    http: HttpHealthCheck,
    peers: Arc<PeerTable>,
    thresholds: Thresholds,
    timeout: Duration,
}

impl ProbeCheck {
    pub fn new(config: &HealthCheckConfig, peers: Arc<PeerTable>) -> Result<Self> {
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
        Ok(ProbeCheck {
            http,
            peers,
            thresholds: Thresholds {
                rise: config.rise.0,
                fall: config.fall.0,
            },
            timeout,
        })
    }

    /// Run one probe, bounded by the configured timeout as a whole. `None`
    /// when it could not be made because this host is out of resources
    /// (file descriptors): that says nothing about the peer.
    async fn probe(&self, target: &Backend) -> Option<ProbeResult> {
        let at = SystemTime::now();
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.timeout, self.http.check(target)).await;
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) if is_exhausted(&e) => {
                log::warn!("probe of {} not made: {}", target.addr, describe(&e));
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

#[async_trait]
impl HealthCheck for ProbeCheck {
    async fn check(&self, target: &Backend) -> Result<()> {
        let Some(peer) = target.addr.as_inet().and_then(|a| self.peers.get(*a)) else {
            return Error::e_explain(ErrorType::InternalError, "probed an unknown peer");
        };
        let up = match self.probe(target).await {
            Some(probe) => peer.apply_probe(probe, self.thresholds),
            None => peer.health.is_up(),
        };
        if up {
            Ok(())
        } else {
            Error::e_explain(
                ErrorType::new("peer down"),
                "switchyard marked the peer DOWN",
            )
        }
    }

    /// Pingora flips its own view after one result: the rise/fall counting
    /// has already happened in [`PeerHealth::observe`].
    fn health_threshold(&self, _success: bool) -> usize {
        1
    }

    fn backend_summary(&self, target: &Backend) -> String {
        format!("peer {}", target.addr)
    }
}
