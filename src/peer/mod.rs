//! A peer (one backend server of an upstream), its place in one snapshot
//! of its upstream ([`Member`]), its health record ([`health`]) and its
//! active probe ([`probe`]).
//!
//! A [`Peer`] lives as long as some configuration names it: a change that
//! keeps `(upstream, address)` keeps the very same object, with its health
//! record, metric series, counters and in-flight requests. What a change can
//! set differently (weight, backup, timeouts) lives in the [`Member`] of
//! each snapshot.

pub mod admin;
pub mod health;
pub mod latency;
pub mod probe;
pub mod ramp;

use crate::config::UpstreamConfig;
use crate::metrics::PeerMetrics;
use admin::{AdminCell, AdminState, WeightOverride};
use health::{PeerHealth, ProbeResult, Thresholds, Transition};
use latency::{PeakEwma, Tick};
use pingora_core::upstreams::peer::{HttpPeer, ALPN};
use ramp::Ramp;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One backend server of an upstream, with what carries over every change
/// of the configuration.
pub struct Peer {
    /// Name of the upstream this peer belongs to.
    pub upstream: String,
    pub addr: SocketAddr,
    /// `addr` as text: the `peer` label and the status page's name for it.
    pub label: String,
    pub health: PeerHealth,
    pub metrics: PeerMetrics,
    /// What an operator has said (admin API).
    admin: AdminCell,
    /// A weight an operator has set (admin API); snapshots built while it
    /// holds use it in place of the configured weight.
    weight_override: Mutex<Option<WeightOverride>>,
    /// Requests this peer has answered, over every route (the metric
    /// series count them by route).
    served: AtomicU64,
    /// How long it takes to answer (`ewma` selection, the status page).
    pub latency: PeakEwma,
    /// Since when it is back in service, for slow start.
    pub ramp: Ramp,
}

impl Peer {
    /// A peer with the health record `health` (UP and unprobed at startup;
    /// DOWN until its first probe when a change adds it) and what an
    /// operator said about it (`admin`, `weight_override`: from the state
    /// file at startup).
    pub fn new(
        upstream: &str,
        addr: SocketAddr,
        health: PeerHealth,
        admin: AdminState,
        weight_override: Option<WeightOverride>,
    ) -> Self {
        let label = addr.to_string();
        let metrics = PeerMetrics::new(upstream, &label);
        metrics.set_up(health.is_up());
        metrics.set_admin_state(admin.as_str());
        Peer {
            upstream: upstream.to_string(),
            addr,
            metrics,
            health,
            label,
            admin: AdminCell::new(admin),
            weight_override: Mutex::new(weight_override),
            served: AtomicU64::new(0),
            latency: PeakEwma::default(),
            ramp: Ramp::default(),
        }
    }

    /// Whether new requests may go to this peer as far as an operator is
    /// concerned (its health is another matter).
    #[inline]
    pub fn in_rotation(&self) -> bool {
        self.admin.takes_requests()
    }

    /// What an operator has said about this peer.
    pub fn admin_state(&self) -> AdminState {
        self.admin.get()
    }

    /// Set what an operator says about this peer; it applies to the next
    /// request.
    pub fn set_admin_state(&self, state: AdminState) {
        if state == AdminState::Active && !self.in_rotation() {
            // Enabled again: back into service, slowly.
            self.ramp.start();
        }
        self.admin.set(state);
        self.metrics.set_admin_state(state.as_str());
    }

    /// The weight an operator has set, if any.
    pub fn weight_override(&self) -> Option<WeightOverride> {
        *self
            .weight_override
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Set (or, with `None`, clear) the weight an operator wants; it applies
    /// from the next snapshot.
    pub fn set_weight_override(&self, weight: Option<WeightOverride>) {
        *self
            .weight_override
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = weight;
    }

    /// Requests this peer is serving now (attempts sent to it that have not
    /// finished), as `switchyard_peer_requests_in_flight` shows them.
    #[inline]
    pub fn in_flight(&self) -> usize {
        self.metrics.requests_in_flight()
    }

    /// Count a request sent at `now` as in flight on this peer until the
    /// guard drops.
    pub fn start_request(self: &Arc<Self>, now: Tick) -> InFlight {
        self.latency.sent(now);
        self.metrics.request_started();
        InFlight(Arc::clone(self))
    }

    /// Count a request as in flight on this peer, as [`Self::start_request`]
    /// does, unless `limit` are in flight already (`usize::MAX`: no limit).
    ///
    /// The count goes up first and is read after: of requests racing for
    /// the last slot, none gets past the limit (each may see the others
    /// and give up, in which case the caller looks again).
    #[inline]
    pub fn start_request_within(self: &Arc<Self>, limit: usize, now: Tick) -> Option<InFlight> {
        if limit == usize::MAX {
            return Some(self.start_request(now));
        }
        self.metrics.request_started();
        if self.in_flight() > limit {
            // Given back before the latency estimate saw anything.
            self.metrics.request_finished();
            return None;
        }
        self.latency.sent(now);
        Some(InFlight(Arc::clone(self)))
    }

    /// Requests this peer has answered.
    pub fn requests_served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Count a request this peer has answered (or failed: the last peer a
    /// request tried).
    pub fn count_served(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
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
                self.ramp.start();
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

/// A request in flight on a peer, counted until it drops.
pub struct InFlight(Arc<Peer>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.latency.ended();
        self.0.metrics.request_finished();
    }
}

/// How the configuration lists one peer address: the entry's settings, or
/// what its name's records say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The name the address comes from (`host:port`, an SRV name); `None`
    /// for an address written as such.
    pub name: Option<Arc<str>>,
    /// The host name of a `host:port` entry: the name TLS checks the
    /// peer's certificate against unless `tls.sni` says another.
    pub host: Option<Arc<str>>,
    pub weight: u16,
    pub backup: bool,
}

/// Requests that share one HTTP/2 connection to a peer (`http2: true`)
/// before another is opened; HTTP/2 servers commonly allow 100 streams.
const H2_STREAMS_PER_CONNECTION: usize = 100;

/// A peer in one snapshot of its upstream: the settings it has there.
pub struct Member {
    pub peer: Arc<Peer>,
    /// The name this address comes from, if any.
    pub name: Option<Arc<str>>,
    /// Position in the upstream's [`PeerTable`] (a request's tried peers are
    /// bits by position).
    pub index: usize,
    /// The weight selection uses: the configured one, or the one an
    /// operator set in its place.
    pub weight: u16,
    /// The weight the configuration gives.
    pub configured_weight: u16,
    /// Backup peers take traffic only while no primary peer is up.
    pub backup: bool,
    /// How fast the peer's latency estimate forgets (`ewma_decay`).
    pub ewma_decay: Duration,
    /// Cloned for each request; identical clones share Pingora's pool of
    /// idle keep-alive connections to this peer.
    http_peer: HttpPeer,
}

impl Member {
    /// `peer` at `index`, as `listing` (in the upstream `settings`) says.
    pub fn new(peer: Arc<Peer>, index: usize, listing: Listing, settings: &UpstreamConfig) -> Self {
        let mut http_peer = match &settings.tls {
            None => HttpPeer::new(peer.addr, false, String::new()),
            Some(tls) => HttpPeer::new(peer.addr, true, tls.server_name(listing.host.as_deref())),
        };
        let options = &mut http_peer.options;
        if let Some(tls) = &settings.tls {
            options.verify_cert = tls.verify;
            options.verify_hostname = tls.verify;
            options.ca = tls.ca_file.as_ref().map(|ca| Arc::clone(&ca.certificates));
        }
        if settings.http2 {
            // ALPN over TLS; without TLS, HTTP/2 with prior knowledge (h2c).
            options.alpn = ALPN::H2;
            options.max_h2_streams = H2_STREAMS_PER_CONNECTION;
        }
        let timeouts = &settings.timeouts;
        options.connection_timeout = Some(timeouts.connect.0);
        options.read_timeout = Some(timeouts.read.0);
        options.write_timeout = Some(timeouts.write.0);
        // Idle pooled connections are closed after this.
        options.idle_timeout = Some(settings.keepalive_timeout.0);
        let weight = WeightOverride::weight_for(peer.weight_override(), listing.weight);
        Member {
            peer,
            name: listing.name,
            index,
            weight,
            configured_weight: listing.weight,
            backup: listing.backup,
            ewma_decay: settings.ewma_decay.0,
            http_peer,
        }
    }

    /// The peer took `latency` to answer (to its response header, or to
    /// the timeout that ended the wait), as of `now`.
    #[inline]
    pub fn record_latency(&self, latency: Duration, now: Tick) {
        self.peer.latency.record(latency, now, self.ewma_decay);
    }

    /// The peer's latency estimate at `now`, in nanoseconds; `None` before
    /// its first answer.
    #[inline]
    pub fn latency_nanos(&self, now: Tick) -> Option<f64> {
        self.peer.latency.nanos_at(now, self.ewma_decay)
    }

    /// Where Pingora should send a request for this peer.
    pub fn http_peer(&self) -> Box<HttpPeer> {
        Box::new(self.http_peer.clone())
    }

    /// The peer as a probe reaches it: as requests do, TLS and HTTP/2
    /// included.
    pub fn probe_peer(&self) -> HttpPeer {
        self.http_peer.clone()
    }
}

/// The peers of one upstream, primary and backup, in config order.
pub struct PeerTable {
    members: Vec<Arc<Member>>,
}

impl PeerTable {
    pub fn new(members: Vec<Arc<Member>>) -> Self {
        PeerTable { members }
    }

    /// The member at `addr`. A linear scan: upstreams have a handful of
    /// peers, where comparing addresses in order beats hashing one.
    #[inline]
    pub fn get(&self, addr: SocketAddr) -> Option<&Arc<Member>> {
        self.members.iter().find(|m| m.peer.addr == addr)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Member>> {
        self.members.iter()
    }
}
