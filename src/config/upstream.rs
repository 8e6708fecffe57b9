//! The `upstreams:` section: named groups of peers, how to pick among them,
//! and how to probe them.

use super::peer::PeerList;
use super::scalar::{
    FailCount, HashKey, Interval, Percentage, QueueSize, RequestLimit, RetryCount, StatusCode,
    Threshold, UrlPath,
};
use super::upstream_tls::UpstreamTlsConfig;
use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// All upstreams, in the order the file lists them (the status page keeps it).
#[derive(Debug, Clone, Serialize)]
pub struct Upstreams(pub IndexMap<String, UpstreamConfig>);

/// One upstream: `upstreams.<name>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// How a peer is picked for each request.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// What `consistent_hash` hashes; ignored by the other algorithms.
    #[serde(default)]
    pub hash_key: HashKey,
    /// How fast a peer's latency estimate (peak-EWMA, which `ewma` selects
    /// by and the status page shows) forgets: an estimate this old keeps
    /// 1/e of its weight, and one with no sample since decays towards zero,
    /// so that a peer that was slow once is tried again.
    #[serde(default = "default_ewma_decay")]
    pub ewma_decay: Interval,
    /// A peer that comes back (UP again, added, enabled again) ramps from
    /// 10 % to 100 % of its weight over this time; absent: at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_start: Option<Interval>,
    /// The shorthand of configurations without `routes:`: requests whose
    /// path starts with this prefix go to this upstream; the longest
    /// matching prefix wins, like nginx's prefix `location`s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<UrlPath>,
    /// The peers, primary and backup.
    pub peers: PeerList,
    /// Speak TLS to the peers (none: plain TCP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<UpstreamTlsConfig>,
    /// Speak HTTP/2 to the peers (gRPC needs it): negotiated by ALPN over
    /// `tls`, else with prior knowledge (h2c).
    #[serde(default, skip_serializing_if = "is_false")]
    pub http2: bool,
    /// The active HTTP probe.
    #[serde(default)]
    pub health_check: HealthCheckConfig,
    /// Extra attempts of a failed request, each on a peer not tried yet.
    #[serde(default = "default_retries")]
    pub retries: RetryCount,
    /// Statuses that send an idempotent request to another peer while
    /// attempts remain (nginx's `proxy_next_upstream http_500 ...`).
    #[serde(default)]
    pub retry_on_status: Vec<StatusCode>,
    /// Timeouts of requests to the peers.
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    /// Taking a peer DOWN on failed client requests, between probes.
    #[serde(default)]
    pub passive_health: PassiveHealthConfig,
    /// With every peer DOWN, send traffic to all of them anyway (a broken
    /// health check must not take the site down).
    #[serde(default)]
    pub fail_open: bool,
    /// How long an idle keep-alive connection to a peer is kept for reuse.
    /// Below the peers' own idle timeout (Node's default is 5 s), so that
    /// switchyard closes a connection before the peer can close it under a
    /// request.
    #[serde(default = "default_keepalive_timeout")]
    pub keepalive_timeout: Interval,
    /// Requests in flight on one peer at most (nginx's `max_conns`,
    /// HAProxy's `maxconn`); a peer at its limit is skipped. 0: no limit.
    #[serde(default, skip_serializing_if = "is_unlimited")]
    pub max_requests: RequestLimit,
    /// Where requests wait while every peer is at `max_requests`.
    #[serde(default, skip_serializing_if = "QueueConfig::is_off")]
    pub queue: QueueConfig,
    /// The share of the upstream's requests in flight that retries may add
    /// (Envoy's retry budget); none: retries are limited by `retries` alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_budget: Option<Percentage>,
}

fn is_false(value: &bool) -> bool {
    !value
}

fn is_unlimited(limit: &RequestLimit) -> bool {
    limit.0 == 0
}

/// `upstreams.<name>.queue`: requests that find every peer at
/// `max_requests` wait for one to finish a request (HAProxy's queue).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Requests that may wait at once; more are answered 503 at once. 0: no
    /// queue (503 as soon as every peer is full).
    pub size: QueueSize,
    /// How long a request waits at most before its 503.
    pub timeout: Interval,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            size: QueueSize::default(),
            timeout: Interval(Duration::from_secs(5)),
        }
    }
}

impl QueueConfig {
    /// Whether no request waits (and the section need not be written out).
    pub fn is_off(&self) -> bool {
        self.size.0 == 0
    }
}

impl UpstreamConfig {
    /// What one upstream's settings must agree on.
    fn check(&self) -> Result<(), String> {
        if !self.queue.is_off() && is_unlimited(&self.max_requests) {
            return Err(
                "queue: a queue needs `max_requests` (requests wait for a peer \
                        below its limit; without one, no peer is ever full)"
                    .to_string(),
            );
        }
        if let Some(tls) = &self.tls {
            tls.check_peers(&self.peers.0)?;
        }
        Ok(())
    }
}

fn default_ewma_decay() -> Interval {
    Interval(Duration::from_secs(10))
}

fn default_keepalive_timeout() -> Interval {
    Interval(Duration::from_secs(4))
}

fn default_retries() -> RetryCount {
    RetryCount(2)
}

/// `upstreams.<name>.timeouts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    /// Establishing a connection to a peer.
    pub connect: Interval,
    /// Waiting for the next bytes from a peer (response header or body).
    pub read: Interval,
    /// Waiting to send the next bytes to a peer.
    pub write: Interval,
    /// From the end of the request body to the response header, connecting
    /// and retries included.
    pub request: Interval,
    /// Idle time of an upgraded connection (WebSocket) in either direction,
    /// which replaces `read` and `write` once a peer answers `101`.
    pub tunnel: Interval,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            connect: Interval(Duration::from_secs(1)),
            read: Interval(Duration::from_secs(10)),
            write: Interval(Duration::from_secs(10)),
            request: Interval(Duration::from_secs(30)),
            tunnel: Interval(Duration::from_secs(3600)),
        }
    }
}

/// `upstreams.<name>.passive_health`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PassiveHealthConfig {
    /// Consecutive failed requests (connect errors, timeouts, resets, and
    /// `fail_on_status` answers) that take a peer DOWN at once; 0 disables.
    pub max_fails: FailCount,
    /// Response statuses that count as failures.
    pub fail_on_status: Vec<StatusCode>,
}

impl Default for PassiveHealthConfig {
    fn default() -> Self {
        PassiveHealthConfig {
            max_fails: FailCount(3),
            fail_on_status: Vec::new(),
        }
    }
}

fn root_path() -> UrlPath {
    UrlPath("/".to_string())
}

impl UpstreamConfig {
    /// `path_prefix`, `/` when not given.
    pub fn prefix(&self) -> UrlPath {
        self.path_prefix.clone().unwrap_or_else(root_path)
    }
}

/// Peer selection algorithm of an upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Weighted round robin (nginx's default).
    #[default]
    RoundRobin,
    /// Weighted random.
    Random,
    /// Ketama consistent hashing of `hash_key`: a key keeps its peer while
    /// the peer set is stable (nginx's `hash ... consistent`).
    ConsistentHash,
    /// The peer with the fewest requests in flight for its weight (in-flight
    /// / weight), ties taken in turn (nginx's `least_conn`, HAProxy's
    /// `leastconn`): a slow peer holds its requests longer, so it gets fewer.
    LeastConn,
    /// Power of two choices (Envoy's default `LEAST_REQUEST`): with equal
    /// weights, two peers drawn at random and the one with fewer requests in
    /// flight wins; with different weights, a weighted draw over each
    /// peer's weight / (in-flight + 1), so idle peers get their weights'
    /// shares and a busy one less.
    LeastRequest,
    /// Latency-aware power of two choices (Finagle's and Linkerd's
    /// peak-EWMA): of two peers drawn at random, the one with the lower
    /// latency estimate × (in-flight + 1) wins. With different weights, a
    /// weighted draw over each peer's weight / (in-flight + 1), divided by
    /// how many times slower than the fastest peer it is.
    Ewma,
}

/// The active health check of an upstream: `upstreams.<name>.health_check`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckConfig {
    /// Path of the probe request (`GET`).
    pub path: UrlPath,
    /// `Host` header of the probe request.
    pub host: String,
    /// Time between the end of one probe round and the start of the next.
    pub interval: Interval,
    /// Connect and response-header timeout of one probe.
    pub timeout: Interval,
    /// Consecutive successful probes that bring a DOWN peer UP.
    pub rise: Threshold,
    /// Consecutive failed probes that take an UP peer DOWN.
    pub fall: Threshold,
    /// Response codes that count as success.
    pub expected_status: StatusList,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            path: root_path(),
            host: "localhost".to_string(),
            interval: Interval(Duration::from_secs(1)),
            timeout: Interval(Duration::from_secs(1)),
            rise: Threshold(2),
            fall: Threshold(2),
            expected_status: StatusList(vec![StatusCode(200)]),
        }
    }
}

/// A non-empty list of status codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusList(pub Vec<StatusCode>);

impl StatusList {
    /// Whether `code` is in the list.
    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|c| c.0 == code)
    }
}

impl<'de> Deserialize<'de> for StatusList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = StatusList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of HTTP status codes, e.g. [200, 204]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StatusList, A::Error> {
                let mut codes = Vec::new();
                while let Some(code) = seq.next_element()? {
                    codes.push(code);
                }
                if codes.is_empty() {
                    return Err(de::Error::custom("needs at least one status code"));
                }
                Ok(StatusList(codes))
            }
        }
        d.deserialize_seq(ListVisitor)
    }
}

impl<'de> Deserialize<'de> for Upstreams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = Upstreams;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of upstream names to upstreams")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Upstreams, A::Error> {
                let mut upstreams: IndexMap<String, UpstreamConfig> = IndexMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    check_upstream_name(&name).map_err(de::Error::custom)?;
                    if upstreams.contains_key(&name) {
                        return Err(de::Error::custom(format!(
                            "upstream `{name}` is defined twice"
                        )));
                    }
                    let upstream: UpstreamConfig = map.next_value()?;
                    upstream
                        .check()
                        .map_err(|e| de::Error::custom(format!("upstream `{name}`: {e}")))?;
                    // The shorthand of configurations without `routes:`
                    // must tell upstreams apart.
                    let prefix = upstream.prefix();
                    let clash = |u: &UpstreamConfig| {
                        (u.path_prefix.is_some() || upstream.path_prefix.is_some())
                            && u.prefix() == prefix
                    };
                    if let Some(other) = upstreams.iter().find(|(_, u)| clash(u)) {
                        return Err(de::Error::custom(format!(
                            "upstream `{name}` has the same path_prefix `{}` as upstream `{}`",
                            prefix.0, other.0
                        )));
                    }
                    upstreams.insert(name, upstream);
                }
                if upstreams.is_empty() {
                    return Err(de::Error::custom("at least one upstream is needed"));
                }
                Ok(Upstreams(upstreams))
            }
        }
        d.deserialize_map(MapVisitor)
    }
}

/// Upstream names appear in metric labels and on the status page, so keep
/// them to one readable token.
fn check_upstream_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid upstream name (1-64 letters, digits, `_`, `-`, `.`)"
        ))
    }
}
