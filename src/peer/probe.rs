//! The active probe: one HTTP request per peer and round, with
//! switchyard's rules on top.
//!
//! A [`Prober`] is built per upstream and snapshot from its `health_check`
//! settings; the schedule that runs it over the live peer set is
//! `live::probes`. A probe goes where requests go, as requests go: over the
//! member's own Pingora peer (its TLS settings, server name, CA and HTTP/2
//! included), with the probe's timeouts, on a fresh connection each time
//! (a pooled one would hide a peer that no longer accepts). Pingora's
//! `HttpHealthCheck` takes one peer template for a whole upstream, so it
//! cannot send each peer its own server name. Each result goes through the
//! rise/fall rules of the peer's
//! [`PeerHealth`](super::health::PeerHealth). A probe that this host could
//! not make (out of file descriptors) says nothing about the peer and is
//! skipped.

use super::health::{ProbeResult, Thresholds};
use super::Member;
use crate::config::{HealthCheckConfig, StatusList};
use crate::resources::is_exhausted;
use pingora_core::connectors::http::Connector;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use std::time::{Duration, Instant, SystemTime};

/// The probe of one upstream's peers.
pub struct Prober {
    connector: Connector,
    request: RequestHeader,
    expected: StatusList,
    thresholds: Thresholds,
    timeout: Duration,
    /// The pause between two rounds.
    pub interval: Duration,
}

impl Prober {
    pub fn new(config: &HealthCheckConfig) -> Result<Self> {
        let mut request = RequestHeader::build("GET", config.path.0.as_bytes(), None)?;
        request.insert_header("Host", config.host.as_str())?;
        request.insert_header("User-Agent", "switchyard-health-check")?;
        Ok(Prober {
            connector: Connector::new(None),
            request,
            expected: config.expected_status.clone(),
            thresholds: Thresholds {
                rise: config.rise.0,
                fall: config.fall.0,
            },
            timeout: config.timeout.0,
            interval: config.interval.0,
        })
    }

    /// Probe `member`'s peer once and apply the result to its health.
    pub async fn probe(&self, member: &Member) {
        if let Some(result) = self.run(member).await {
            member.peer.apply_probe(result, self.thresholds);
        }
    }

    /// Run one probe, bounded by the configured timeout as a whole. `None`
    /// when it could not be made because this host is out of resources
    /// (file descriptors): that says nothing about the peer.
    async fn run(&self, member: &Member) -> Option<ProbeResult> {
        let at = SystemTime::now();
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.timeout, self.check(member)).await;
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) if is_exhausted(&e) => {
                log::warn!("probe of {} not made: {}", member.peer.addr, describe(&e));
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

    /// One probe request: an expected status passes.
    async fn check(&self, member: &Member) -> Result<()> {
        let mut peer = member.probe_peer();
        let options = &mut peer.options;
        options.connection_timeout = Some(self.timeout);
        options.read_timeout = Some(self.timeout);
        options.write_timeout = Some(self.timeout);
        // One stream per HTTP/2 connection: the connection is not pooled
        // and goes with the probe, as an HTTP/1 one does.
        options.max_h2_streams = 1;
        let (mut session, _) = self.connector.get_http_session(&peer).await?;
        session.set_write_timeout(Some(self.timeout));
        session.set_read_timeout(Some(self.timeout));
        session
            .write_request_header(Box::new(self.request.clone()))
            .await?;
        session.finish_request_body().await?;
        session.read_response_header().await?;
        let code = session.response_header().map_or(0, |r| r.status.as_u16());
        if !self.expected.contains(code) {
            return Error::e_explain(
                ErrorType::CustomCode("unexpected status", code),
                format!("HTTP {code}"),
            );
        }
        // Read the body to its end: a peer that cannot send it is not well.
        while session.read_response_body().await?.is_some() {}
        Ok(())
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
