//! An upstream in one snapshot: its peers ([`Member`]s of long-lived
//! [`Peer`]s), primary and backup, each group with the selector of its
//! algorithm ([`selection`]), the probe of its peers, and how requests to them are
//! retried, timed and judged.
//!
//! Upstreams are rebuilt by every change of the configuration; what must
//! outlive a change (each peer, the metric series of upstreams and of the
//! routes to them) comes from a [`Carryover`].

pub mod discovery;
pub mod overload;
pub mod selection;

use crate::config::{Algorithm, HashKey, PeerName, PeerTarget, StatusCode, UpstreamConfig};
use crate::metrics::{RouteUpstreamMetrics, StatusCounters, UpstreamMetrics};
use crate::peer::probe::Prober;
use crate::peer::{Listing, Member, Peer, PeerTable};
use discovery::{Discovered, NameCell};
use overload::{Limits, OverloadState};
use pingora_error::Result;
use selection::{Eligible, PeerGroup};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What carries over from one snapshot to the next: a peer present before
/// and after a change is the same [`Peer`], and an upstream, and a route
/// for each upstream and peer, keeps its metric series.
pub trait Carryover {
    /// The peer `addr` of `upstream`: the existing one, or a new one.
    fn peer(&mut self, upstream: &str, addr: SocketAddr) -> Arc<Peer>;
    /// The metric handles of `upstream`: the existing ones, or new ones.
    fn upstream_metrics(&mut self, upstream: &str) -> Arc<UpstreamMetrics>;
    /// The overload state of `upstream` (its queue, its retries in
    /// flight): the existing one, or a new one.
    fn overload(&mut self, upstream: &str) -> Arc<OverloadState>;
    /// The metric handles of the requests the route `route` sends to
    /// `upstream`: the existing ones, or new ones.
    fn route_upstream_metrics(&mut self, route: &str, upstream: &str) -> Arc<RouteUpstreamMetrics>;
    /// The request counters of the route `route` for `peer` (of the
    /// upstream `peer.upstream`): the existing ones, or new ones.
    fn route_peer_requests(&mut self, route: &str, peer: &Peer) -> Arc<StatusCounters>;
    /// Log `warning` about the configuration being built, unless the build
    /// before said it too (rebuilds are many; a warning is said once).
    fn warn(&mut self, warning: String);
}

/// An upstream, ready to serve.
pub struct Upstream {
    pub name: String,
    /// Position in its snapshot's upstreams (routes keep their metric
    /// handles by it).
    pub index: usize,
    /// What `consistent_hash` hashes; `None` for the other algorithms,
    /// which need no key (so a request looks for none).
    pub hash_key: Option<HashKey>,
    /// Every peer, primary and backup, in config order (a name's addresses
    /// in the order its answer gave them).
    pub peers: PeerTable,
    /// The peer names of the configuration and how they stand (live).
    pub names: Vec<Arc<NameCell>>,
    /// `None` while no name gives a primary peer.
    primary: Option<PeerGroup>,
    backup: Option<PeerGroup>,
    pub metrics: Arc<UpstreamMetrics>,
    /// Who waits for a peer, and the retries in flight.
    pub overload: Arc<OverloadState>,
    pub policy: RequestPolicy,
    /// The active probe of the peers.
    pub prober: Prober,
}

/// How requests to an upstream's peers are retried, timed and judged.
pub struct RequestPolicy {
    /// Attempts per request: 1 + `retries`.
    pub max_attempts: u32,
    pub retry_on_status: Vec<StatusCode>,
    /// From the end of the request body to the response header, retries
    /// included.
    pub request_timeout: Duration,
    /// Idle time of an upgraded connection, in place of the read and write
    /// timeouts.
    pub tunnel_timeout: Duration,
    /// Passive health: consecutive failures that take a peer DOWN (0: off).
    pub max_fails: u32,
    pub fail_on_status: Vec<StatusCode>,
    pub fail_open: bool,
    /// `max_requests`, `queue`, `retry_budget`.
    pub limits: Limits,
}

impl RequestPolicy {
    pub fn retries_status(&self, status: u16) -> bool {
        self.retry_on_status.iter().any(|s| s.0 == status)
    }

    pub fn fails_on_status(&self, status: u16) -> bool {
        self.fail_on_status.iter().any(|s| s.0 == status)
    }
}

impl Upstream {
    /// Build the upstream `name`, at `index` in its snapshot, as `config`
    /// says, with the addresses its names give now (`discovered`), its
    /// peers and metrics taken from `carryover`.
    pub fn build(
        name: &str,
        index: usize,
        config: &UpstreamConfig,
        carryover: &mut dyn Carryover,
        discovered: &Discovered,
    ) -> Result<Upstream> {
        let (listed, duplicates) = listings(name, config, discovered);
        for duplicate in duplicates {
            carryover.warn(duplicate);
        }
        if config.slow_start.is_some() && config.algorithm == Algorithm::ConsistentHash {
            carryover.warn(format!(
                "upstream {name}: slow_start does not apply to consistent_hash \
                 (a key keeps its peer)"
            ));
        }
        let members: Vec<Arc<Member>> = listed
            .into_iter()
            .enumerate()
            .map(|(index, (addr, listing))| {
                let peer = carryover.peer(name, addr);
                Arc::new(Member::new(peer, index, listing, config))
            })
            .collect();
        let peers = PeerTable::new(members);
        let group = |backup: bool| {
            let members = peers.iter().filter(|m| m.backup == backup).cloned();
            PeerGroup::new(config, members.collect())
        };
        let primary = group(false);
        let backup = group(true);
        let names = config
            .peers
            .names()
            .map(|n| discovered.status(name, n))
            .collect();
        let limits = Limits::of(config);
        let overload = carryover.overload(name);
        overload.export(&limits);

        Ok(Upstream {
            name: name.to_string(),
            index,
            hash_key: (config.algorithm == Algorithm::ConsistentHash)
                .then(|| config.hash_key.clone()),
            primary,
            backup,
            metrics: carryover.upstream_metrics(name),
            overload,
            prober: Prober::new(&config.health_check)?,
            names,
            policy: RequestPolicy {
                max_attempts: config.retries.0 + 1,
                retry_on_status: config.retry_on_status.clone(),
                request_timeout: config.timeouts.request.0,
                tunnel_timeout: config.timeouts.tunnel.0,
                max_fails: config.passive_health.max_fails.0,
                fail_on_status: config.passive_health.fail_on_status.clone(),
                fail_open: config.fail_open,
                limits,
            },
            peers,
        })
    }

    /// The peer for a request with hash key `key`, never one in `tried` (a
    /// bit per peer index) nor one an operator took out of rotation
    /// (draining, disabled): an UP primary peer, else (only while no primary
    /// is up) an UP backup peer, else, with `fail_open`, any untried peer,
    /// else none. With `max_requests`, never a full peer: none while every
    /// peer it may go to is full (see [`Self::has_untried_peer`]).
    pub fn select<'a>(&'a self, key: &[u8], tried: TriedPeers) -> Option<&'a Arc<Member>> {
        if self.policy.limits.limits_peers() {
            return self.select_below_limit(key, tried);
        }
        let choose = |group: &'a Option<PeerGroup>, require_up: bool| {
            let eligible = Eligible {
                tried,
                require_up,
                max_in_flight: usize::MAX,
            };
            group.as_ref()?.select(key, eligible)
        };
        choose(&self.primary, true)
            .or_else(|| choose(&self.backup, true))
            .or_else(|| {
                let fail_open = self.policy.fail_open;
                fail_open
                    .then(|| choose(&self.primary, false).or_else(|| choose(&self.backup, false)))?
            })
    }

    /// [`Self::select`] with `max_requests`: the group is chosen as
    /// without a limit (full primaries do not send requests to the backups,
    /// nor full UP peers to DOWN ones under `fail_open`), then a peer below
    /// the limit within it.
    fn select_below_limit<'a>(&'a self, key: &[u8], tried: TriedPeers) -> Option<&'a Arc<Member>> {
        let fail_open = self.policy.fail_open;
        let groups = [
            (&self.primary, true),
            (&self.backup, true),
            (&self.primary, !fail_open),
            (&self.backup, !fail_open),
        ];
        for (group, require_up) in groups {
            let Some(group) = group else { continue };
            let eligible = Eligible {
                tried,
                require_up,
                max_in_flight: self.policy.limits.max_requests,
            };
            if group.accepts_any(eligible.at_any_load()) {
                return group.select(key, eligible);
            }
        }
        None
    }

    /// Whether [`Self::select`] would find a peer outside `tried` if no
    /// peer were full, without selecting one (selection moves the
    /// round-robin position).
    pub fn has_untried_peer(&self, tried: TriedPeers) -> bool {
        self.has_peer_outside(tried, usize::MAX)
    }

    /// Whether a retry of a request that has tried `tried` has somewhere to
    /// go: an untried peer below `max_requests`, or, with a queue (where
    /// the retry waits), any untried peer.
    pub fn has_peer_for_retry(&self, tried: TriedPeers) -> bool {
        let limits = &self.policy.limits;
        let max_in_flight = match limits.queue {
            Some(_) => usize::MAX,
            None => limits.max_requests,
        };
        self.has_peer_outside(tried, max_in_flight)
    }

    /// Whether a peer outside `tried` with fewer than `max_in_flight`
    /// requests in flight could take a request.
    fn has_peer_outside(&self, tried: TriedPeers, max_in_flight: usize) -> bool {
        let eligible = Eligible {
            tried,
            require_up: !self.policy.fail_open,
            max_in_flight,
        };
        self.peers.iter().any(|m| eligible.accepts(m))
    }

    /// A request in flight on one of the peers has ended: with a queue,
    /// a request waiting for a peer may take its place.
    #[inline]
    pub fn slot_freed(&self) {
        if self.policy.limits.queue.is_some() {
            self.overload.slot_freed();
        }
    }

    /// The primary peers, in config order.
    pub fn primaries(&self) -> impl Iterator<Item = &Arc<Member>> {
        self.peers.iter().filter(|m| !m.backup)
    }

    /// The backup peers, in config order.
    pub fn backups(&self) -> impl Iterator<Item = &Arc<Member>> {
        self.peers.iter().filter(|m| m.backup)
    }
}

/// Every peer address of the upstream `upstream` (`config`) with how it is
/// listed, in config order: an entry's address, or the addresses its name
/// gives now. An address that several entries give is one peer; the first
/// entry's settings apply (the warnings say so).
fn listings(
    upstream: &str,
    config: &UpstreamConfig,
    discovered: &Discovered,
) -> (Vec<(SocketAddr, Listing)>, Vec<String>) {
    let mut listed: Vec<(SocketAddr, Listing)> = Vec::with_capacity(config.peers.0.len());
    let mut duplicates = Vec::new();
    let mut add = |addr: SocketAddr, listing: Listing| match listed.iter().find(|(a, _)| *a == addr)
    {
        None => listed.push((addr, listing)),
        Some((_, first)) => duplicates.push(format!(
            "upstream {upstream}: {addr} (from {}) is already a peer (from {}); \
                 the first entry's settings apply",
            listing.name.as_deref().unwrap_or("the peer list"),
            first.name.as_deref().unwrap_or("the peer list"),
        )),
    };
    for entry in &config.peers.0 {
        match &entry.target {
            PeerTarget::Ip(addr) => add(
                *addr,
                Listing {
                    name: None,
                    host: None,
                    weight: entry.weight.0,
                    backup: entry.backup,
                },
            ),
            PeerTarget::Name(name) => {
                let shown: Arc<str> = Arc::from(name.to_string());
                let host: Option<Arc<str>> = match name {
                    PeerName::Host(host) => Some(Arc::from(host.host.as_str())),
                    PeerName::Srv(_) => None,
                };
                for endpoint in discovered.endpoints(upstream, name) {
                    add(
                        endpoint.addr,
                        Listing {
                            name: Some(Arc::clone(&shown)),
                            host: host.clone(),
                            weight: endpoint.weight.unwrap_or(entry.weight.0),
                            backup: entry.backup || endpoint.backup,
                        },
                    );
                }
            }
        }
    }
    (listed, duplicates)
}

/// The peers a request has already tried, a bit per peer index. Peers past
/// the 64th are not remembered (they may be tried twice); upstreams that
/// large are rare and a retry there still goes to a healthy peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TriedPeers(u64);

impl TriedPeers {
    /// No peer tried yet.
    pub const NONE: TriedPeers = TriedPeers(0);

    /// Whether the peer at `index` has been tried.
    pub fn contains(self, index: usize) -> bool {
        index < 64 && self.0 & (1 << index) != 0
    }

    /// Remember that the peer at `index` has been tried.
    pub fn add(&mut self, index: usize) {
        if index < 64 {
            self.0 |= 1 << index;
        }
    }
}
