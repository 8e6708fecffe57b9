//! Prometheus metric families, and the per-peer handles the request path uses.
//!
//! Families live in the `prometheus` crate's default registry, the one
//! Pingora's Prometheus service (`pingora-prometheus`) gathers from. Label
//! sets are resolved once per peer ([`PeerMetrics`]), once per route and
//! upstream ([`RouteUpstreamMetrics`]), or once per route, peer and status
//! code (lazily, on the first request with that code: [`StatusCounters`]),
//! so the request path never formats a label or hashes a label set. Each
//! handle removes its series from the registry when it drops: the series of
//! what no configuration names any more go away.

pub mod access_log;
pub mod dns;
pub mod overload;
pub mod tls;

use pingora_error::{Error, ErrorType};
use prometheus::{
    register_histogram_vec, register_int_counter_vec, register_int_gauge_vec, Histogram,
    HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
};
use std::sync::{LazyLock, OnceLock};

/// Buckets for request latencies, dense around the demo's 200 ms.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The peer label of requests that were answered without reaching a peer
/// (for example 503 because no peer is up).
pub const NO_PEER: &str = "none";

struct Families {
    requests: IntCounterVec,
    request_duration: HistogramVec,
    upstream_response_duration: HistogramVec,
    in_flight: IntGaugeVec,
    peer_in_flight: IntGaugeVec,
    peer_up: IntGaugeVec,
    health_checks: IntCounterVec,
    health_check_duration: HistogramVec,
    state_changes: IntCounterVec,
    upstream_errors: IntCounterVec,
    admin_state: IntGaugeVec,
}

/// Registering can only fail on a name clash inside this one table, which
/// the unit tests exercise; failing loudly at startup is right for that.
static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    Families {
    requests: register_int_counter_vec!(
        "switchyard_requests_total",
        "Client requests answered, by route, upstream, peer (\"none\" when no peer was reached) and HTTP status.",
        &["route", "upstream", "peer", "status"]
    )
    .expect("register switchyard_requests_total"),
    request_duration: register_histogram_vec!(
        "switchyard_request_duration_seconds",
        "Time from the start of a client request to the end of its response, by route and upstream.",
        &["route", "upstream"],
        LATENCY_BUCKETS.to_vec()
    )
    .expect("register switchyard_request_duration_seconds"),
    upstream_response_duration: register_histogram_vec!(
        "switchyard_upstream_response_duration_seconds",
        "Time from choosing a peer to receiving its response header.",
        &["upstream", "peer"],
        LATENCY_BUCKETS.to_vec()
    )
    .expect("register switchyard_upstream_response_duration_seconds"),
    in_flight: register_int_gauge_vec!(
        "switchyard_requests_in_flight",
        "Client requests being handled right now.",
        &["upstream"]
    )
    .expect("register switchyard_requests_in_flight"),
    peer_in_flight: register_int_gauge_vec!(
        "switchyard_peer_requests_in_flight",
        "Requests being served by the peer right now (attempts sent and not yet finished); what least_conn and least_request compare.",
        &["upstream", "peer"]
    )
    .expect("register switchyard_peer_requests_in_flight"),
    peer_up: register_int_gauge_vec!(
        "switchyard_peer_up",
        "1 while the peer is UP (gets traffic), 0 while it is DOWN; matches the status page.",
        &["upstream", "peer"]
    )
    .expect("register switchyard_peer_up"),
    health_checks: register_int_counter_vec!(
        "switchyard_health_checks_total",
        "Active health probes, by result (success or failure).",
        &["upstream", "peer", "result"]
    )
    .expect("register switchyard_health_checks_total"),
    health_check_duration: register_histogram_vec!(
        "switchyard_health_check_duration_seconds",
        "Duration of active health probes.",
        &["upstream", "peer"],
        LATENCY_BUCKETS.to_vec()
    )
    .expect("register switchyard_health_check_duration_seconds"),
    state_changes: register_int_counter_vec!(
        "switchyard_peer_state_changes_total",
        "Times the peer went from UP to DOWN or back.",
        &["upstream", "peer"]
    )
    .expect("register switchyard_peer_state_changes_total"),
    upstream_errors: register_int_counter_vec!(
        "switchyard_upstream_errors_total",
        "Failures talking to a peer, by kind.",
        &["upstream", "peer", "kind"]
    )
    .expect("register switchyard_upstream_errors_total"),
    admin_state: register_int_gauge_vec!(
        "switchyard_peer_admin_state",
        "1 for the peer's administrative state (active, draining, disabled), 0 for the others.",
        &["upstream", "peer", "state"]
    )
    .expect("register switchyard_peer_admin_state"),
}
});

/// Lowest and highest status code with a counter slot of its own.
const FIRST_STATUS: u16 = 100;
const LAST_STATUS: u16 = 599;
/// Status codes per class (1xx to 5xx), and the classes with slots.
const CLASS_SIZE: usize = 100;
const CLASSES: usize = (LAST_STATUS - FIRST_STATUS + 1) as usize / CLASS_SIZE;

/// The counter slots of one status class, resolved one by one.
type ClassSlots = Box<[OnceLock<IntCounter>]>;

/// `switchyard_requests_total` for one `{route, upstream, peer}`, one
/// counter per status code, each resolved on first use.
///
/// There is one of these per route, upstream and peer the route may send
/// to, so the slots of a status class are allocated with the class's first
/// request: an unused one is a few hundred bytes (see the unit test), one
/// that has only answered 2xx about 1.8 KB more.
pub struct StatusCounters {
    route: String,
    upstream: String,
    peer: String,
    by_class: [OnceLock<ClassSlots>; CLASSES],
    /// Anything outside 100-599: no response was sent (status label "0").
    unanswered: OnceLock<IntCounter>,
}

impl StatusCounters {
    /// The counters of requests `route` sent to `upstream` and answered
    /// there by `peer` ([`NO_PEER`] for those that reached none).
    pub fn new(route: &str, upstream: &str, peer: &str) -> Self {
        StatusCounters {
            route: route.to_string(),
            upstream: upstream.to_string(),
            peer: peer.to_string(),
            by_class: Default::default(),
            unanswered: OnceLock::new(),
        }
    }

    fn slot(&self, status: u16) -> &OnceLock<IntCounter> {
        if !(FIRST_STATUS..=LAST_STATUS).contains(&status) {
            return &self.unanswered;
        }
        let offset = usize::from(status - FIRST_STATUS);
        let class = self.by_class[offset / CLASS_SIZE]
            .get_or_init(|| (0..CLASS_SIZE).map(|_| OnceLock::new()).collect());
        &class[offset % CLASS_SIZE]
    }

    fn labels<'a>(&'a self, status: &'a str) -> [&'a str; 4] {
        [&self.route, &self.upstream, &self.peer, status]
    }

    /// Count one request answered with `status` (0: no response was sent).
    pub fn record(&self, status: u16) {
        self.slot(status)
            .get_or_init(|| {
                let label = if (FIRST_STATUS..=LAST_STATUS).contains(&status) {
                    status.to_string()
                } else {
                    "0".to_string()
                };
                FAMILIES.requests.with_label_values(&self.labels(&label))
            })
            .inc();
    }

    /// Every counter resolved so far, with its status code (0: none sent).
    fn resolved(&self) -> impl Iterator<Item = (usize, &IntCounter)> {
        let by_status = self.by_class.iter().enumerate().flat_map(|(class, slots)| {
            slots.get().into_iter().flat_map(move |slots| {
                slots.iter().enumerate().filter_map(move |(index, slot)| {
                    let status = usize::from(FIRST_STATUS) + class * CLASS_SIZE + index;
                    slot.get().map(|counter| (status, counter))
                })
            })
        });
        by_status.chain(self.unanswered.get().map(|counter| (0, counter)))
    }

    /// All requests counted so far, whatever their status.
    #[cfg(test)]
    fn total(&self) -> u64 {
        self.resolved().map(|(_, counter)| counter.get()).sum()
    }
}

/// A route, upstream and peer no configuration names together any more
/// (and no request uses) take their series with them.
impl Drop for StatusCounters {
    fn drop(&mut self) {
        for (status, _) in self.resolved() {
            let status = status.to_string();
            let _ = FAMILIES.requests.remove_label_values(&self.labels(&status));
        }
    }
}

/// The kinds of `switchyard_upstream_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    ConnectRefused,
    ConnectTimeout,
    ConnectError,
    ReadTimeout,
    WriteTimeout,
    ReadError,
    WriteError,
    ConnectionClosed,
    InvalidResponse,
    /// The TLS handshake with the peer failed: a certificate not trusted
    /// or not for the name, no common protocol version or cipher.
    Tls,
    Other,
}

impl UpstreamErrorKind {
    const ALL: [UpstreamErrorKind; 11] = [
        Self::ConnectRefused,
        Self::ConnectTimeout,
        Self::ConnectError,
        Self::ReadTimeout,
        Self::WriteTimeout,
        Self::ReadError,
        Self::WriteError,
        Self::ConnectionClosed,
        Self::InvalidResponse,
        Self::Tls,
        Self::Other,
    ];

    /// The `kind` label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::ConnectRefused => "connect_refused",
            Self::ConnectTimeout => "connect_timeout",
            Self::ConnectError => "connect_error",
            Self::ReadTimeout => "read_timeout",
            Self::WriteTimeout => "write_timeout",
            Self::ReadError => "read_error",
            Self::WriteError => "write_error",
            Self::ConnectionClosed => "connection_closed",
            Self::InvalidResponse => "invalid_response",
            Self::Tls => "tls",
            Self::Other => "other",
        }
    }

    /// Classify a Pingora error raised while talking to a peer.
    pub fn of(error: &Error) -> Self {
        match error.etype() {
            ErrorType::ConnectRefused => Self::ConnectRefused,
            ErrorType::ConnectTimedout | ErrorType::TLSHandshakeTimedout => Self::ConnectTimeout,
            ErrorType::ConnectNoRoute
            | ErrorType::ConnectError
            | ErrorType::HandshakeError
            | ErrorType::BindError
            | ErrorType::SocketError
            | ErrorType::ConnectProxyFailure => Self::ConnectError,
            ErrorType::TLSHandshakeFailure
            | ErrorType::InvalidCert
            | ErrorType::TLSWantX509Lookup => Self::Tls,
            ErrorType::ReadTimedout => Self::ReadTimeout,
            ErrorType::WriteTimedout => Self::WriteTimeout,
            ErrorType::ReadError => Self::ReadError,
            ErrorType::WriteError => Self::WriteError,
            ErrorType::ConnectionClosed => Self::ConnectionClosed,
            ErrorType::InvalidHTTPHeader | ErrorType::H1Error | ErrorType::H2Error => {
                Self::InvalidResponse
            }
            _ => Self::Other,
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

/// Every metric handle of one peer, resolved when the peer is built.
pub struct PeerMetrics {
    upstream: String,
    peer: String,
    /// `switchyard_peer_requests_in_flight`, and the peer's in-flight count
    /// itself: selection reads it, so counting a request costs one atomic
    /// add, not one for a count and one for its gauge.
    in_flight: IntGauge,
    upstream_response: Histogram,
    up: IntGauge,
    probe_success: IntCounter,
    probe_failure: IntCounter,
    probe_duration: Histogram,
    state_changes: IntCounter,
    errors: [IntCounter; UpstreamErrorKind::ALL.len()],
    admin_state: [IntGauge; ADMIN_STATES.len()],
}

/// The values of `switchyard_peer_admin_state`'s `state` label.
pub const ADMIN_STATES: [&str; 3] = ["active", "draining", "disabled"];

impl PeerMetrics {
    /// The handles of the peer `peer` (its address as text) of `upstream`.
    pub fn new(upstream: &str, peer: &str) -> Self {
        let f = &*FAMILIES;
        let pair = [upstream, peer];
        PeerMetrics {
            upstream: upstream.to_string(),
            peer: peer.to_string(),
            in_flight: f.peer_in_flight.with_label_values(&pair),
            upstream_response: f.upstream_response_duration.with_label_values(&pair),
            up: f.peer_up.with_label_values(&pair),
            probe_success: f
                .health_checks
                .with_label_values(&[upstream, peer, "success"]),
            probe_failure: f
                .health_checks
                .with_label_values(&[upstream, peer, "failure"]),
            probe_duration: f.health_check_duration.with_label_values(&pair),
            state_changes: f.state_changes.with_label_values(&pair),
            errors: UpstreamErrorKind::ALL.map(|kind| {
                f.upstream_errors
                    .with_label_values(&[upstream, peer, kind.label()])
            }),
            admin_state: ADMIN_STATES
                .map(|state| f.admin_state.with_label_values(&[upstream, peer, state])),
        }
    }

    /// A request to the peer has started.
    #[inline]
    pub fn request_started(&self) {
        self.in_flight.inc();
    }

    /// A request to the peer has finished.
    #[inline]
    pub fn request_finished(&self) {
        self.in_flight.dec();
    }

    /// Requests to the peer that have started and not finished.
    #[inline]
    pub fn requests_in_flight(&self) -> usize {
        usize::try_from(self.in_flight.get()).unwrap_or(0)
    }

    /// 1 for `state` (one of [`ADMIN_STATES`]), 0 for the others.
    pub fn set_admin_state(&self, state: &str) {
        for (gauge, each) in self.admin_state.iter().zip(ADMIN_STATES) {
            gauge.set(i64::from(each == state));
        }
    }

    pub fn observe_upstream_response(&self, seconds: f64) {
        self.upstream_response.observe(seconds);
    }

    pub fn count_error(&self, kind: UpstreamErrorKind) {
        self.errors[kind.index()].inc();
    }

    pub fn record_probe(&self, success: bool, seconds: f64) {
        if success {
            self.probe_success.inc();
        } else {
            self.probe_failure.inc();
        }
        self.probe_duration.observe(seconds);
    }

    pub fn set_up(&self, up: bool) {
        self.up.set(i64::from(up));
    }

    pub fn count_state_change(&self) {
        self.state_changes.inc();
    }
}

/// Client connections: open now, and refused over `limits.max_connections`.
pub struct ConnectionMetrics {
    open: IntGauge,
    refused: IntCounter,
}

static CONNECTIONS: LazyLock<(IntGauge, IntCounter)> = LazyLock::new(|| {
    (
        prometheus::register_int_gauge!(
            "switchyard_client_connections",
            "Client connections open now."
        )
        .expect("register switchyard_client_connections"),
        prometheus::register_int_counter!(
            "switchyard_client_connections_refused_total",
            "Client connections closed on arrival because limits.max_connections were open."
        )
        .expect("register switchyard_client_connections_refused_total"),
    )
});

impl ConnectionMetrics {
    pub fn new() -> Self {
        ConnectionMetrics {
            open: CONNECTIONS.0.clone(),
            refused: CONNECTIONS.1.clone(),
        }
    }

    pub fn refused(&self) {
        self.refused.inc();
    }

    /// Count a connection as open until the returned guard drops.
    pub fn opened(&self) -> OpenConnection {
        self.open.inc();
        OpenConnection(self.open.clone())
    }
}

impl Default for ConnectionMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// An open client connection, counted in `switchyard_client_connections`.
pub struct OpenConnection(IntGauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The handles of one upstream that are not about a particular peer or
/// route.
pub struct UpstreamMetrics {
    upstream: String,
    in_flight: IntGauge,
}

impl UpstreamMetrics {
    /// The handles of `upstream`.
    pub fn new(upstream: &str) -> Self {
        UpstreamMetrics {
            upstream: upstream.to_string(),
            in_flight: FAMILIES.in_flight.with_label_values(&[upstream]),
        }
    }

    /// A request routed here has started.
    pub fn request_started(&self) {
        self.in_flight.inc();
    }

    /// A request routed here has ended.
    pub fn request_finished(&self) {
        self.in_flight.dec();
    }

    /// Requests routed here that have not ended (what a retry budget is a
    /// share of).
    pub fn requests_in_flight(&self) -> usize {
        usize::try_from(self.in_flight.get()).unwrap_or(0)
    }
}

/// An upstream no configuration names any more (and no request uses) takes
/// its series with it.
impl Drop for UpstreamMetrics {
    fn drop(&mut self) {
        let _ = FAMILIES.in_flight.remove_label_values(&[&self.upstream]);
    }
}

/// The handles of the requests one route sends to one upstream that are not
/// about a particular peer.
pub struct RouteUpstreamMetrics {
    /// `switchyard_request_duration_seconds`, resolved on the first request:
    /// a route whose hooks may send to any upstream exports no empty
    /// histogram for each.
    request_duration: OnceLock<Histogram>,
    /// Requests answered without reaching a peer (`peer="none"`: no peer
    /// up, refused before a peer was chosen).
    pub without_peer: StatusCounters,
}

impl RouteUpstreamMetrics {
    /// The handles of the requests `route` sends to `upstream`.
    pub fn new(route: &str, upstream: &str) -> Self {
        RouteUpstreamMetrics {
            request_duration: OnceLock::new(),
            without_peer: StatusCounters::new(route, upstream, NO_PEER),
        }
    }

    fn labels(&self) -> [&str; 2] {
        [&self.without_peer.route, &self.without_peer.upstream]
    }

    /// A request took `seconds` from its start to the end of its response.
    pub fn observe_request(&self, seconds: f64) {
        self.request_duration
            .get_or_init(|| FAMILIES.request_duration.with_label_values(&self.labels()))
            .observe(seconds);
    }
}

/// A route and upstream no configuration names together any more (and no
/// request uses) take their series with them (`without_peer` its own).
impl Drop for RouteUpstreamMetrics {
    fn drop(&mut self) {
        if self.request_duration.get().is_some() {
            let _ = FAMILIES
                .request_duration
                .remove_label_values(&self.labels());
        }
    }
}

/// A peer no configuration names any more (and no request uses) takes its
/// series with it.
impl Drop for PeerMetrics {
    fn drop(&mut self) {
        let f = &*FAMILIES;
        let (upstream, peer) = (self.upstream.as_str(), self.peer.as_str());
        let pair = [upstream, peer];
        let _ = f.peer_in_flight.remove_label_values(&pair);
        let _ = f.upstream_response_duration.remove_label_values(&pair);
        let _ = f.peer_up.remove_label_values(&pair);
        let _ = f.health_check_duration.remove_label_values(&pair);
        let _ = f.state_changes.remove_label_values(&pair);
        for result in ["success", "failure"] {
            let _ = f
                .health_checks
                .remove_label_values(&[upstream, peer, result]);
        }
        for kind in UpstreamErrorKind::ALL {
            let _ = f
                .upstream_errors
                .remove_label_values(&[upstream, peer, kind.label()]);
        }
        for state in ADMIN_STATES {
            let _ = f.admin_state.remove_label_values(&[upstream, peer, state]);
        }
    }
}

/// Changes of configuration while running, named as Prometheus names its
/// own reloads.
pub struct ReloadMetrics {
    success: IntCounter,
    failure: IntCounter,
    last_success: prometheus::Gauge,
}

static RELOADS: LazyLock<(IntCounterVec, prometheus::Gauge)> = LazyLock::new(|| {
    (
        register_int_counter_vec!(
            "switchyard_config_reloads_total",
            "Configuration reloads, by result (success or failure).",
            &["result"]
        )
        .expect("register switchyard_config_reloads_total"),
        prometheus::register_gauge!(
            "switchyard_config_last_reload_success_timestamp_seconds",
            "When the running configuration was loaded (at start or by the last successful reload), Unix time."
        )
        .expect("register switchyard_config_last_reload_success_timestamp_seconds"),
    )
});

impl ReloadMetrics {
    /// The handles, with the configuration loaded now.
    pub fn new() -> Self {
        let metrics = ReloadMetrics {
            success: RELOADS.0.with_label_values(&["success"]),
            failure: RELOADS.0.with_label_values(&["failure"]),
            last_success: RELOADS.1.clone(),
        };
        metrics.loaded_now();
        metrics
    }

    fn loaded_now(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_success.set(now);
    }

    /// Count a reload that was applied (`true`) or refused.
    pub fn record(&self, applied: bool) {
        if applied {
            self.success.inc();
            self.loaded_now();
        } else {
            self.failure.inc();
        }
    }
}

impl Default for ReloadMetrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exported() -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&prometheus::gather())
            .unwrap()
    }

    #[test]
    fn status_counters_count_exactly_and_sum() {
        let counters = StatusCounters::new("unit-route", "unit", "127.0.0.1:1");
        for _ in 0..3 {
            counters.record(200);
        }
        counters.record(503);
        counters.record(0);
        counters.record(700);
        counters.record(599);
        counters.record(99);
        assert_eq!(counters.total(), 8);
        let text = exported();
        for (status, count) in [("200", 3), ("503", 1), ("599", 1), ("0", 3)] {
            let series = format!(
                "switchyard_requests_total{{peer=\"127.0.0.1:1\",route=\"unit-route\",\
                 status=\"{status}\",upstream=\"unit\"}} {count}\n"
            );
            assert!(text.contains(&series), "{series} in {text}");
        }
    }

    #[test]
    fn dropped_handles_take_their_series_with_them() {
        let series = |text: &str| {
            text.lines()
                .filter(|l| l.contains("route=\"unit-gone\""))
                .count()
        };
        let counters = StatusCounters::new("unit-gone", "unit", "127.0.0.1:3");
        counters.record(204);
        counters.record(0);
        let upstream = RouteUpstreamMetrics::new("unit-gone", "unit");
        upstream.without_peer.record(503);
        upstream.observe_request(0.1);
        assert!(series(&exported()) > 3);
        drop(counters);
        drop(upstream);
        assert_eq!(series(&exported()), 0);
    }

    #[test]
    fn unused_status_counters_are_small() {
        // One per route, upstream and peer: the slots of a status class come
        // with its first request.
        let size = std::mem::size_of::<StatusCounters>();
        assert!(size <= 256, "{size} bytes");
    }

    #[test]
    fn every_error_kind_has_its_own_counter() {
        let metrics = PeerMetrics::new("unit-kinds", "127.0.0.1:2");
        for kind in UpstreamErrorKind::ALL {
            metrics.count_error(kind);
        }
        assert!(metrics.errors.iter().all(|c| c.get() == 1));
        let refused = Error::new(ErrorType::ConnectRefused);
        assert_eq!(
            UpstreamErrorKind::of(&refused),
            UpstreamErrorKind::ConnectRefused
        );
        let timeout = Error::new(ErrorType::ReadTimedout);
        assert_eq!(
            UpstreamErrorKind::of(&timeout),
            UpstreamErrorKind::ReadTimeout
        );
        for tls in [ErrorType::InvalidCert, ErrorType::TLSHandshakeFailure] {
            assert_eq!(
                UpstreamErrorKind::of(&Error::new(tls)),
                UpstreamErrorKind::Tls
            );
        }
        let slow_handshake = Error::new(ErrorType::TLSHandshakeTimedout);
        assert_eq!(
            UpstreamErrorKind::of(&slow_handshake),
            UpstreamErrorKind::ConnectTimeout
        );
    }
}
