//! The peer status page (`status_path`, `/check` by default) and the admin
//! API's list of peers.
//!
//! Views of the same state, the peers'
//! [`PeerHealth`](crate::peer::health::PeerHealth) records and admin states
//! (what selection and `switchyard_peer_up` read):
//! - `text`: exactly lua-resty-upstream-healthcheck's `status_page()`, so
//!   scripts written against the OpenResty balancer keep working;
//! - `prometheus`: exactly its `prometheus_status_page()`, so alerts
//!   written for it keep working;
//! - [`json`]: every field of the health record and the admin state, for
//!   tools (and `GET /upstreams` of the admin API);
//! - `html`: a self-refreshing page for people.
//!
//! The lua-resty formats know only UP and DOWN: a peer an operator drained
//! or disabled is DOWN there, as lua-resty shows a peer set down by hand.

mod html;
pub mod json;
mod prometheus;
mod text;

use crate::peer::latency::Tick;
use crate::peer::Member;
use crate::upstream::Upstream;
use serde::Serialize;
use std::sync::Arc;
use std::time::SystemTime;

/// The representations of the status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Html,
    Prometheus,
}

impl Format {
    /// `?format=json|html|text|prometheus` decides; otherwise an `Accept` header naming
    /// `application/json` gets JSON, one naming `text/html` (a browser) gets
    /// HTML, and anything else (curl, scripts) the plain text.
    pub fn negotiate(query: Option<&str>, accept: Option<&[u8]>) -> Format {
        let asked = query.and_then(|q| {
            q.split('&').find_map(|pair| match pair {
                "format=json" => Some(Format::Json),
                "format=html" => Some(Format::Html),
                "format=text" => Some(Format::Text),
                "format=prometheus" => Some(Format::Prometheus),
                _ => None,
            })
        });
        if let Some(format) = asked {
            return format;
        }
        let accept = accept.unwrap_or_default();
        if contains_ignore_case(accept, b"application/json") {
            Format::Json
        } else if contains_ignore_case(accept, b"text/html") {
            Format::Html
        } else {
            Format::Text
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; charset=utf-8",
            Format::Json => "application/json",
            Format::Html => "text/html; charset=utf-8",
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The page for `upstreams` in `format`.
pub fn render(upstreams: &[Arc<Upstream>], format: Format) -> Vec<u8> {
    match format {
        Format::Text => text::render(upstreams).into_bytes(),
        Format::Json => json::render(upstreams),
        Format::Html => html::render(upstreams).into_bytes(),
        Format::Prometheus => prometheus::render(upstreams).into_bytes(),
    }
}

/// Whether the lua-resty formats show `member` as UP: its probes say so and
/// an operator has not taken it out of rotation.
fn shown_up(member: &Member) -> bool {
    member.peer.in_rotation() && member.peer.health.is_up()
}

/// One peer as the JSON and HTML views and the admin API show it: a
/// consistent snapshot of its health record, formatted once.
#[derive(Serialize)]
pub struct PeerView<'a> {
    address: &'a str,
    /// The name (`host:port`, SRV) the address comes from, if any.
    name: Option<&'a str>,
    backup: bool,
    /// The weight selection uses now (set through the admin API, or the
    /// configured one).
    weight: u16,
    configured_weight: u16,
    /// "up" or "down": what the probes (and passive health) say.
    state: &'static str,
    /// "active", "draining" or "disabled": what an operator says.
    admin_state: &'static str,
    /// Requests being served by the peer now.
    in_flight: usize,
    /// How long the peer takes to answer (its response header): the
    /// peak-EWMA estimate `ewma` selects by, decayed to now; `None` before
    /// its first answer.
    latency_ewma_ms: Option<f64>,
    /// False until the first probe has run.
    probed: bool,
    consecutive_successes: u32,
    consecutive_failures: u32,
    /// RFC 3339, UTC.
    last_probe: Option<String>,
    last_probe_latency_ms: Option<f64>,
    last_error: Option<String>,
    last_state_change: Option<String>,
    /// While DOWN: `probe: ...` or `passive: ...`.
    down_reason: Option<String>,
    requests: u64,
}

impl<'a> PeerView<'a> {
    /// A consistent view of `member` now.
    pub fn of(member: &'a Member) -> Self {
        let peer = &member.peer;
        let record = peer.health.snapshot();
        PeerView {
            address: &peer.label,
            name: member.name.as_deref(),
            backup: member.backup,
            weight: member.weight,
            configured_weight: member.configured_weight,
            state: if record.up { "up" } else { "down" },
            admin_state: peer.admin_state().as_str(),
            in_flight: peer.in_flight(),
            latency_ewma_ms: member
                .latency_nanos(Tick::now())
                .map(|nanos| (nanos / 1e3).round() / 1e3),
            probed: record.probed,
            consecutive_successes: record.consecutive_successes,
            consecutive_failures: record.consecutive_failures,
            last_probe: record.last_probe.map(rfc3339),
            last_probe_latency_ms: record
                .last_probe_latency
                .map(|d| (d.as_secs_f64() * 1e6).round() / 1e3),
            last_error: record.last_error,
            last_state_change: record.last_change.map(rfc3339),
            down_reason: record.down_reason,
            requests: peer.requests_served(),
        }
    }
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn the_negotiation_takes_any_query_and_accept(
            query in proptest::option::of("\\PC{0,40}"),
            accept in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..60)),
        ) {
            let _ = Format::negotiate(query.as_deref(), accept.as_deref());
        }
    }

    #[test]
    fn the_format_is_asked_for_by_query_or_accept() {
        assert_eq!(Format::negotiate(None, None), Format::Text);
        assert_eq!(Format::negotiate(None, Some(b"*/*")), Format::Text);
        assert_eq!(Format::negotiate(Some("format=json"), None), Format::Json);
        assert_eq!(
            Format::negotiate(Some("a=1&format=json"), None),
            Format::Json
        );
        assert_eq!(Format::negotiate(Some("format=jsonx"), None), Format::Text);
        assert_eq!(Format::negotiate(Some("format=html"), None), Format::Html);
        assert_eq!(
            Format::negotiate(Some("format=prometheus"), None),
            Format::Prometheus
        );
        assert_eq!(
            Format::negotiate(None, Some(b"Application/JSON;q=0.9")),
            Format::Json
        );
        let browser = b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(Format::negotiate(None, Some(browser)), Format::Html);
        assert_eq!(
            Format::negotiate(Some("format=text"), Some(browser)),
            Format::Text
        );
    }
}
