//! The live configuration: one immutable [`Snapshot`] of everything the
//! request path reads, behind an atomic pointer, and the swap that replaces
//! it.
//!
//! A request loads the snapshot once, when it arrives, and keeps that `Arc`
//! to its end, so it sees one configuration throughout. A change (a reload,
//! later DNS answers and the admin API) builds a whole new snapshot and
//! swaps it in; the old one lives on until its last request is done. A peer
//! present before and after a change is the same object ([`Peer`]): it keeps
//! its health record, metric series and counters, in-flight requests and
//! pooled upstream connections. Nothing here is on the request path but
//! [`Live::current`], an atomic load and a reference count.
//!
//! [`probes`] runs the active health checks over whatever the current
//! snapshot holds.

pub mod changes;
pub mod probes;

use crate::config::Config;
use crate::metrics::{ReloadMetrics, UpstreamMetrics};
use crate::peer::health::PeerHealth;
use crate::peer::Peer;
use crate::request::admission::Admission;
use crate::request::forwarding::Forwarding;
use crate::routing::Router;
use crate::upstream::{Carryover, Upstream};
use arc_swap::ArcSwap;
use changes::{Changes, ReloadError};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// Everything the request path reads, for one configuration.
pub struct Snapshot {
    /// The configuration it was built from, defaults filled in.
    pub config: Config,
    /// Every upstream, in config order.
    pub upstreams: Vec<Arc<Upstream>>,
    pub router: Router,
    pub admission: Admission,
    pub forwarding: Forwarding,
    pub status_path: String,
    /// `limits.keepalive_timeout`, in whole seconds as Pingora takes it.
    pub keepalive_seconds: u64,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub buffer_body_bytes: u64,
}

/// The current [`Snapshot`], and what carries over to the next.
pub struct Live {
    current: ArcSwap<Snapshot>,
    /// Serializes changes, and remembers every peer and upstream that some
    /// snapshot (or request) still uses.
    registry: Mutex<Registry>,
    /// Woken on every swap (the probe schedule picks up new peers).
    swapped: Notify,
    reloads: ReloadMetrics,
}

/// Peers and upstream metrics by identity, weakly: they die with the last
/// snapshot or request that uses them, and a change that names them again
/// while they live gets the same object.
#[derive(Default)]
struct Registry {
    peers: HashMap<(String, SocketAddr), Weak<Peer>>,
    upstream_metrics: HashMap<String, Weak<UpstreamMetrics>>,
    /// Peers new to a running balancer wait for their first probe; at
    /// startup they start UP (the proxy opens after the first round).
    running: bool,
}

impl Carryover for Registry {
    fn peer(&mut self, upstream: &str, addr: SocketAddr) -> Arc<Peer> {
        let key = (upstream.to_string(), addr);
        if let Some(peer) = self.peers.get(&key).and_then(Weak::upgrade) {
            return peer;
        }
        let health = if self.running {
            PeerHealth::awaiting_probe()
        } else {
            PeerHealth::new()
        };
        let peer = Arc::new(Peer::new(upstream, addr, health));
        self.peers.insert(key, Arc::downgrade(&peer));
        peer
    }

    fn upstream_metrics(&mut self, upstream: &str) -> Arc<UpstreamMetrics> {
        if let Some(metrics) = self.upstream_metrics.get(upstream).and_then(Weak::upgrade) {
            return metrics;
        }
        let metrics = Arc::new(UpstreamMetrics::new(upstream));
        self.upstream_metrics
            .insert(upstream.to_string(), Arc::downgrade(&metrics));
        metrics
    }
}

impl Registry {
    /// Forget what no one uses any more.
    fn prune(&mut self) {
        self.peers.retain(|_, peer| peer.strong_count() > 0);
        self.upstream_metrics.retain(|_, m| m.strong_count() > 0);
    }
}

impl Live {
    /// The live configuration of a starting balancer.
    pub fn new(config: Config) -> pingora_error::Result<Live> {
        let mut registry = Registry::default();
        let snapshot = Snapshot::build(config, &mut registry)?;
        registry.running = true;
        Ok(Live {
            current: ArcSwap::from_pointee(snapshot),
            registry: Mutex::new(registry),
            swapped: Notify::new(),
            reloads: ReloadMetrics::new(),
        })
    }

    /// The snapshot to serve a request with.
    #[inline]
    pub fn current(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Resolves at the next swap.
    pub async fn swapped(&self) {
        self.swapped.notified().await
    }

    /// Apply `config`: everything in it that can change while running, or
    /// nothing. Counted in `switchyard_config_reloads_total`.
    pub fn apply(&self, config: Config) -> Result<Changes, ReloadError> {
        let outcome = self.try_apply(config);
        self.reloads.record(outcome.is_ok());
        outcome
    }

    /// Count a change that never reached [`Self::apply`] (the file did not
    /// even parse).
    pub fn count_refused(&self) {
        self.reloads.record(false);
    }

    fn try_apply(&self, config: Config) -> Result<Changes, ReloadError> {
        let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.current();
        changes::check_restartless(&old.config, &config)?;
        let snapshot = Snapshot::build(config, &mut *registry)
            .map_err(|e| ReloadError::Invalid(e.to_string()))?;
        let changes = Changes::between(&old, &snapshot);
        self.current.store(Arc::new(snapshot));
        registry.prune();
        drop(registry);
        self.swapped.notify_waiters();
        Ok(changes)
    }
}

impl Snapshot {
    fn build(config: Config, carryover: &mut dyn Carryover) -> pingora_error::Result<Snapshot> {
        let mut upstreams = Vec::with_capacity(config.upstreams.0.len());
        for (name, upstream) in &config.upstreams.0 {
            upstreams.push(Arc::new(Upstream::build(name, upstream, carryover)?));
        }
        let limits = &config.limits;
        Ok(Snapshot {
            router: Router::new(upstreams.clone()),
            upstreams,
            admission: Admission::new(&config),
            forwarding: Forwarding::new(config.trusted_proxies.clone()),
            status_path: config.status_path.0.clone(),
            keepalive_seconds: limits.keepalive_timeout.0.as_secs().max(1),
            header_timeout: limits.header_timeout.0,
            body_timeout: limits.body_timeout.0,
            buffer_body_bytes: limits.buffer_body_bytes.0,
            config,
        })
    }

    /// The upstream called `name`, if this snapshot has one.
    pub fn upstream(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.upstreams.iter().find(|u| u.name == name)
    }
}
