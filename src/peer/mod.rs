//! A peer (one backend server of an upstream) and the table of an
//! upstream's peers; its health record ([`health`]) and its active probe
//! ([`probe`]).

pub mod health;
pub mod probe;

use crate::config::{PeerConfig, UpstreamConfig};
use crate::metrics::PeerMetrics;
use health::{PeerHealth, ProbeResult, Thresholds, Transition};
use pingora_core::upstreams::peer::HttpPeer;
use std::net::SocketAddr;
use std::sync::Arc;

/// One peer, with everything the request path and the probes need of it,
/// built once at startup.
pub struct Peer {
    /// Name of the upstream this peer belongs to.
    pub upstream: String,
    /// Position in the upstream's [`PeerTable`].
    pub index: usize,
    pub addr: SocketAddr,
    /// `addr` as text: the `peer` label and the status page's name for it.
    pub label: String,
    pub weight: u16,
    pub backup: bool,
    pub health: PeerHealth,
    pub metrics: PeerMetrics,
    /// Cloned for each request; identical clones share Pingora's pool of
    /// idle keep-alive connections to this peer.
    http_peer: HttpPeer,
}

impl Peer {
    pub fn new(
        upstream: &str,
        index: usize,
        config: &PeerConfig,
        settings: &UpstreamConfig,
    ) -> Self {
        let addr = config.addr.0;
        let label = addr.to_string();
        let mut http_peer = HttpPeer::new(addr, false, String::new());
        let options = &mut http_peer.options;
        let timeouts = &settings.timeouts;
        options.connection_timeout = Some(timeouts.connect.0);
        options.read_timeout = Some(timeouts.read.0);
        options.write_timeout = Some(timeouts.write.0);
        // Idle pooled connections are closed after this.
        options.idle_timeout = Some(settings.keepalive_timeout.0);
        Peer {
            upstream: upstream.to_string(),
            index,
            addr,
            weight: config.weight.0,
            backup: config.backup,
            health: PeerHealth::new(),
            metrics: PeerMetrics::new(upstream, &label),
            http_peer,
            label,
        }
    }

    /// Where Pingora should send a request for this peer.
    pub fn http_peer(&self) -> Box<HttpPeer> {
        Box::new(self.http_peer.clone())
    }

    /// Requests this peer has answered.
    pub fn requests_served(&self) -> u64 {
        self.metrics.requests.total()
    }

    /// Record a probe in the peer's health and metrics, log a change of
    /// state, and say whether the peer is now UP.
    pub fn apply_probe(&self, probe: ProbeResult, thresholds: Thresholds) -> bool {
        self.metrics
            .record_probe(probe.error.is_none(), probe.latency.as_secs_f64());
        let reason = probe.error.clone();
        let transition = self.health.observe(probe, thresholds);
        let up = self.health.is_up();
        self.metrics.set_up(up);
        match transition {
            Some(Transition::WentDown) => {
                self.changed(
                    false,
                    &format!("probe: {}", reason.as_deref().unwrap_or("failed")),
                );
            }
            Some(Transition::WentUp) => {
                self.changed(
                    true,
                    &format!("{} successful probes in a row", thresholds.rise),
                );
            }
            Some(Transition::Confirmed) => {
                log::info!("upstream {}: peer {} is UP", self.upstream, self.label);
            }
            None => {}
        }
        up
    }

    /// A client request to this peer failed (passive health).
    pub fn record_request_failure(&self, max_fails: u32, reason: &str) {
        if self
            .health
            .record_request_failure(max_fails, reason)
            .is_some()
        {
            self.metrics.set_up(false);
            let why = format!("passive: {max_fails} failed requests in a row, last: {reason}");
            self.changed(false, &why);
        }
    }

    /// Count and log a change of state to `up`.
    fn changed(&self, up: bool, reason: &str) {
        self.metrics.count_state_change();
        if up {
            log::info!(
                "upstream {}: peer {} is UP: {reason}",
                self.upstream,
                self.label
            );
        } else {
            log::warn!(
                "upstream {}: peer {} is DOWN: {reason}",
                self.upstream,
                self.label
            );
        }
    }
}

/// The peers of one upstream, primary and backup, in config order.
pub struct PeerTable {
    peers: Vec<Arc<Peer>>,
}

impl PeerTable {
    pub fn new(peers: Vec<Arc<Peer>>) -> Self {
        PeerTable { peers }
    }

    /// The peer at `addr`. A linear scan: upstreams have a handful of peers,
    /// where comparing addresses in order beats hashing one.
    #[inline]
    pub fn get(&self, addr: SocketAddr) -> Option<&Arc<Peer>> {
        self.peers.iter().find(|p| p.addr == addr)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Peer>> {
        self.peers.iter()
    }
}
