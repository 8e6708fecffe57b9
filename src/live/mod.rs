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
//! snapshot holds; [`discovery`] resolves its peer names and swaps in a
//! new snapshot when what they give changes.

pub mod changes;
pub mod discovery;
pub mod probes;
pub mod state_file;

use crate::config::{AccessLogConfig, Config};
use crate::hooks::{HookSet, HookTypes};
use crate::listen::listeners::ListenerSet;
use crate::metrics::{ReloadMetrics, RouteUpstreamMetrics, StatusCounters, UpstreamMetrics};
use crate::peer::admin::{AdminState, WeightOverride};
use crate::peer::health::PeerHealth;
use crate::peer::{Member, Peer};
use crate::request::admission::Admission;
use crate::request::forwarding::Forwarding;
use crate::routing::RouteTable;
use crate::upstream::discovery::Discovered;
use crate::upstream::overload::OverloadState;
use crate::upstream::{Carryover, Upstream};
use arc_swap::ArcSwap;
use changes::{Changes, ReloadError};
use state_file::SavedPeers;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// Everything the request path reads, for one configuration.
pub struct Snapshot {
    /// The configuration it was built from, defaults filled in.
    pub config: Config,
    /// Every upstream, in config order.
    pub upstreams: Vec<Arc<Upstream>>,
    /// Which requests go where.
    pub routes: RouteTable,
    pub admission: Admission,
    pub forwarding: Forwarding,
    pub status_path: String,
    /// `limits.keepalive_timeout`, in whole seconds as Pingora takes it.
    pub keepalive_seconds: u64,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub buffer_body_bytes: u64,
    /// `access_log:`, shared by the lines of the requests served with this
    /// snapshot (`None`: no lines).
    pub access_log: Option<Arc<AccessLogConfig>>,
    /// `request_id`: name every request with an `X-Request-ID`.
    pub request_id: bool,
    /// The listeners: TLS endpoints and protocols, by `listen` index.
    pub listeners: Arc<ListenerSet>,
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
    /// `server.state_file`.
    state_file: PathBuf,
    /// The resolver of peer names (or why there is none), for the
    /// `resolver:` settings it was made for.
    resolver: Mutex<Option<discovery::MadeResolver>>,
}

/// What a new snapshot is built from besides its configuration.
struct Registry {
    carried: Carried,
    /// What each peer name gave last.
    discovered: Discovered,
    /// The hook types of this binary.
    hook_types: Arc<HookTypes>,
    /// The hook instances of the current configuration: a change of
    /// addresses or weights keeps them; a reload builds those whose
    /// settings changed.
    hooks: Arc<HookSet>,
    /// The listeners of the current configuration, their certificates
    /// read: a change of addresses or weights keeps them; a reload reads
    /// the certificates again.
    listeners: Arc<ListenerSet>,
}

impl Registry {
    /// A snapshot of `config` with what carries over, the addresses the
    /// names give now, `hooks` and `listeners`.
    fn build(
        &mut self,
        config: Config,
        hooks: &HookSet,
        listeners: Arc<ListenerSet>,
    ) -> pingora_error::Result<Snapshot> {
        self.carried.begin_build();
        let built = Snapshot::build(
            config,
            &mut self.carried,
            &self.discovered,
            hooks,
            listeners,
        );
        self.carried.end_build();
        built
    }

    /// A snapshot of `config` with the current hook instances and
    /// listeners.
    fn rebuild(&mut self, config: Config) -> pingora_error::Result<Snapshot> {
        let hooks = Arc::clone(&self.hooks);
        let listeners = Arc::clone(&self.listeners);
        self.build(config, &hooks, listeners)
    }
}

/// Peers and metric handles by identity, weakly: they die with the last
/// snapshot or request that uses them, and a change that names them again
/// while they live gets the same object.
#[derive(Default)]
struct Carried {
    peers: HashMap<(String, SocketAddr), Weak<Peer>>,
    upstream_metrics: HashMap<String, Weak<UpstreamMetrics>>,
    overload: HashMap<String, Weak<OverloadState>>,
    /// By route and upstream.
    route_upstream_metrics: HashMap<(String, String), Weak<RouteUpstreamMetrics>>,
    /// By route, upstream and peer address.
    route_peer_requests: HashMap<(String, String, SocketAddr), Weak<StatusCounters>>,
    /// Peers new to a running balancer wait for their first probe; at
    /// startup they start UP (the proxy opens after the first round).
    running: bool,
    /// What the state file said at startup.
    saved: SavedPeers,
    /// The warnings of the last build, and of the one being made.
    warned: HashSet<String>,
    warning: HashSet<String>,
}

impl Carryover for Carried {
    fn warn(&mut self, warning: String) {
        if !self.warned.contains(&warning) {
            log::warn!("{warning}");
        }
        self.warning.insert(warning);
    }

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
        let saved = self.saved.remove(&key).unwrap_or_default();
        let peer = Arc::new(Peer::new(
            upstream,
            addr,
            health,
            saved.admin_state,
            saved.weight,
        ));
        self.peers.insert(key, Arc::downgrade(&peer));
        peer
    }

    fn upstream_metrics(&mut self, upstream: &str) -> Arc<UpstreamMetrics> {
        carry(&mut self.upstream_metrics, upstream.to_string(), || {
            UpstreamMetrics::new(upstream)
        })
    }

    fn overload(&mut self, upstream: &str) -> Arc<OverloadState> {
        carry(&mut self.overload, upstream.to_string(), || {
            OverloadState::new(upstream)
        })
    }

    fn route_upstream_metrics(&mut self, route: &str, upstream: &str) -> Arc<RouteUpstreamMetrics> {
        let key = (route.to_string(), upstream.to_string());
        carry(&mut self.route_upstream_metrics, key, || {
            RouteUpstreamMetrics::new(route, upstream)
        })
    }

    fn route_peer_requests(&mut self, route: &str, peer: &Peer) -> Arc<StatusCounters> {
        let key = (route.to_string(), peer.upstream.clone(), peer.addr);
        carry(&mut self.route_peer_requests, key, || {
            StatusCounters::new(route, &peer.upstream, &peer.label)
        })
    }
}

/// The live object `map` holds for `key`, or a new one (`make`) that it
/// holds from now on.
fn carry<K: Eq + Hash, T>(
    map: &mut HashMap<K, Weak<T>>,
    key: K,
    make: impl FnOnce() -> T,
) -> Arc<T> {
    if let Some(live) = map.get(&key).and_then(Weak::upgrade) {
        return live;
    }
    let made = Arc::new(make());
    map.insert(key, Arc::downgrade(&made));
    made
}

impl Carried {
    /// Start a build: its warnings are compared with the last one's.
    fn begin_build(&mut self) {
        self.warning.clear();
    }

    /// End a build: its warnings are the last build's now.
    fn end_build(&mut self) {
        std::mem::swap(&mut self.warned, &mut self.warning);
    }

    /// Forget what no one uses any more.
    fn prune(&mut self) {
        self.peers.retain(|_, peer| peer.strong_count() > 0);
        self.upstream_metrics.retain(|_, m| m.strong_count() > 0);
        self.overload.retain(|_, o| o.strong_count() > 0);
        self.route_upstream_metrics
            .retain(|_, m| m.strong_count() > 0);
        self.route_peer_requests.retain(|_, m| m.strong_count() > 0);
    }
}

impl Live {
    /// The live configuration of a starting balancer, its peer names
    /// resolved as `discovered` says ([`discovery::resolve_at_start`]), its
    /// hooks of `hook_types` (`hooks`, as made for the same configuration
    /// by [`HookTypes::instantiate`]), its `listeners` (loaded from the same
    /// configuration). What operators said about peers
    /// (`server.state_file`) applies to those the configuration still has.
    pub fn new(
        config: Config,
        discovered: Discovered,
        hook_types: Arc<HookTypes>,
        hooks: HookSet,
        listeners: ListenerSet,
    ) -> pingora_error::Result<Live> {
        let state_file = config.server.state_file();
        let mut registry = Registry {
            carried: Carried {
                saved: state_file::read(&state_file),
                ..Carried::default()
            },
            discovered,
            hook_types,
            hooks: Arc::new(hooks),
            listeners: Arc::new(listeners),
        };
        crate::metrics::tls::show_certificates(registry.listeners.certificates());
        let snapshot = registry.rebuild(config)?;
        registry.carried.running = true;
        registry.carried.saved = SavedPeers::new();
        Ok(Live {
            current: ArcSwap::from_pointee(snapshot),
            registry: Mutex::new(registry),
            swapped: Notify::new(),
            reloads: ReloadMetrics::new(),
            state_file,
            resolver: Mutex::new(None),
        })
    }

    fn lock_registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The snapshot to serve a request with.
    #[inline]
    pub fn current(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// A future that resolves at the next swap (from when it is first
    /// polled, or `enable`d).
    pub fn swapped(&self) -> tokio::sync::futures::Notified<'_> {
        self.swapped.notified()
    }

    /// Apply `config`, read from `source` (which errors name): everything
    /// in it that can change while running, or nothing. Counted in
    /// `switchyard_config_reloads_total`.
    pub fn apply(&self, config: Config, source: &str) -> Result<Changes, ReloadError> {
        let outcome = self.try_apply(config, source);
        self.reloads.record(outcome.is_ok());
        outcome
    }

    /// Count a change that never reached [`Self::apply`] (the file did not
    /// even parse).
    pub fn count_refused(&self) {
        self.reloads.record(false);
    }

    fn try_apply(&self, config: Config, source: &str) -> Result<Changes, ReloadError> {
        let mut registry = self.lock_registry();
        let old = self.current();
        let mut hooks = None;
        let mut listeners = None;
        let built = changes::check_restartless(&old.config, &config)
            .and_then(|()| {
                let made = registry
                    .hook_types
                    .instantiate(&config.hooks, Some(&registry.hooks))
                    .map_err(|e| ReloadError::Invalid(format!("{source}: {e}")))?;
                // The certificates are read again: replaced files take
                // effect with the reload.
                let loaded = ListenerSet::load(&config.listen)
                    .map_err(|e| ReloadError::Invalid(format!("{source}: {e}")))?;
                let loaded = listeners.insert(Arc::new(loaded)).clone();
                Ok((hooks.insert(Arc::new(made)).clone(), loaded))
            })
            .and_then(|(made, loaded)| {
                registry
                    .build(config, &made, loaded)
                    .map_err(|e| ReloadError::Invalid(e.to_string()))
            });
        // Names resolved for this change (`resolve_new_names`) go with it
        // when it is refused.
        let kept = built
            .as_ref()
            .map_or(&old.config, |snapshot| &snapshot.config);
        registry.discovered.retain(kept);
        let snapshot = built?;
        if let Some(hooks) = hooks {
            registry.hooks = hooks;
        }
        if let Some(listeners) = listeners {
            for warning in listeners.warnings() {
                log::warn!("{warning}");
            }
            crate::metrics::tls::show_certificates(listeners.certificates());
            registry.listeners = listeners;
        }
        let changes = Changes::between(&old, &snapshot);
        self.swap(snapshot, registry);
        Ok(changes)
    }

    /// Put `snapshot` in place; forget what no one uses and save what
    /// operators said about the peers that remain.
    fn swap(&self, snapshot: Snapshot, mut registry: std::sync::MutexGuard<'_, Registry>) {
        self.current.store(Arc::new(snapshot));
        registry.carried.prune();
        drop(registry);
        self.save_state();
        self.swapped.notify_waiters();
    }

    /// Set the admin state of the peer `addr` of `upstream`; it applies to
    /// the next request and is saved in the state file. Returns the state
    /// it had.
    pub fn set_admin_state(
        &self,
        upstream: &str,
        addr: SocketAddr,
        state: AdminState,
    ) -> Result<AdminState, NotFound> {
        let _serialized = self.lock_registry();
        let snapshot = self.current();
        let member = snapshot.member(upstream, addr)?;
        let before = member.peer.admin_state();
        member.peer.set_admin_state(state);
        self.save_state();
        Ok(before)
    }

    /// Give the peer `addr` of `upstream` the weight `weight` in place of
    /// its configured one (the configured weight itself clears it): a new
    /// snapshot with the group's selector rebuilt, so the next request
    /// uses it. Saved in the state file. Returns the weight it had.
    pub fn set_weight(
        &self,
        upstream: &str,
        addr: SocketAddr,
        weight: u16,
    ) -> Result<u16, NotFound> {
        let mut registry = self.lock_registry();
        let old = self.current();
        let member = old.member(upstream, addr)?;
        let before = member.weight;
        let configured = member.configured_weight;
        member.peer.set_weight_override(
            (weight != configured).then_some(WeightOverride { configured, weight }),
        );
        match registry.rebuild(old.config.clone()) {
            Ok(snapshot) => self.swap(snapshot, registry),
            // The running configuration was built once already; this cannot
            // fail but for a bug, which must not take the balancer down.
            Err(e) => log::error!("weight change of {upstream} {addr} not applied: {e}"),
        }
        Ok(before)
    }

    /// Write what operators said about the current peers to the state
    /// file; a failure is logged (the change itself stands).
    fn save_state(&self) {
        let snapshot = self.current();
        let peers = snapshot
            .upstreams
            .iter()
            .flat_map(|u| u.peers.iter().map(|m| &*m.peer));
        if let Err(e) = state_file::write(&self.state_file, peers) {
            log::error!(
                "state file {}: cannot write it: {e}",
                self.state_file.display()
            );
        }
    }
}

/// No such upstream, or no such peer in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotFound {
    Upstream(String),
    /// The upstream, and the peer address as it was asked for.
    Peer(String, String),
}

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotFound::Upstream(name) => write!(f, "no upstream {name:?}"),
            NotFound::Peer(upstream, addr) => write!(f, "upstream {upstream:?} has no peer {addr}"),
        }
    }
}

impl std::error::Error for NotFound {}

impl Snapshot {
    fn build(
        config: Config,
        carryover: &mut dyn Carryover,
        discovered: &Discovered,
        hooks: &HookSet,
        listeners: Arc<ListenerSet>,
    ) -> pingora_error::Result<Snapshot> {
        let mut upstreams = Vec::with_capacity(config.upstreams.0.len());
        for (index, (name, upstream)) in config.upstreams.0.iter().enumerate() {
            upstreams.push(Arc::new(Upstream::build(
                name, index, upstream, carryover, discovered,
            )?));
        }
        let limits = &config.limits;
        let routes = config.effective_routes();
        Ok(Snapshot {
            routes: RouteTable::new(&routes, &upstreams, hooks, carryover).map_err(|e| {
                pingora_error::Error::explain(pingora_error::ErrorType::InternalError, e)
            })?,
            upstreams,
            admission: Admission::new(&config),
            forwarding: Forwarding::new(config.trusted_proxies.clone()),
            status_path: config.status_path.0.clone(),
            keepalive_seconds: limits.keepalive_timeout.0.as_secs().max(1),
            header_timeout: limits.header_timeout.0,
            body_timeout: limits.body_timeout.0,
            buffer_body_bytes: limits.buffer_body_bytes.0,
            access_log: config.access_log.clone().map(Arc::new),
            request_id: config.request_id,
            listeners,
            config,
        })
    }

    /// The upstream called `name`, if this snapshot has one.
    pub fn upstream(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.upstreams.iter().find(|u| u.name == name)
    }

    /// The peer `addr` of the upstream `upstream`.
    pub fn member(&self, upstream: &str, addr: SocketAddr) -> Result<&Arc<Member>, NotFound> {
        self.upstream(upstream)
            .ok_or_else(|| NotFound::Upstream(upstream.to_string()))?
            .peers
            .get(addr)
            .ok_or_else(|| NotFound::Peer(upstream.to_string(), addr.to_string()))
    }
}
