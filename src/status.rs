//! The peer status page (`status_path`, `/check` by default).
//!
//! Plain text in exactly the format of lua-resty-upstream-healthcheck's
//! `status_page()`, so scripts written against the OpenResty balancer keep
//! working; JSON with the full health record for everything else. Both are
//! rendered from the peers' [`PeerHealth`](crate::health::PeerHealth)
//! records, the same state that selection and `switchyard_peer_up` read.

use crate::peer::Peer;
use crate::upstream::Upstream;
use serde::Serialize;
use std::fmt::Write;
use std::sync::Arc;
use std::time::SystemTime;

/// The representations of the status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl Format {
    /// `?format=json` or `Accept: application/json` ask for JSON, anything
    /// else gets text.
    pub fn negotiate(query: Option<&str>, accept: Option<&[u8]>) -> Format {
        let asks_query = query.is_some_and(|q| q.split('&').any(|pair| pair == "format=json"));
        let asks_header = accept.is_some_and(|a| {
            a.windows(b"application/json".len())
                .any(|w| w.eq_ignore_ascii_case(b"application/json"))
        });
        if asks_query || asks_header {
            Format::Json
        } else {
            Format::Text
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// The page for `upstreams` in `format`.
pub fn render(upstreams: &[Arc<Upstream>], format: Format) -> Vec<u8> {
    match format {
        Format::Text => render_text(upstreams).into_bytes(),
        Format::Json => render_json(upstreams),
    }
}

fn render_text(upstreams: &[Arc<Upstream>]) -> String {
    let mut page = String::new();
    for (index, upstream) in upstreams.iter().enumerate() {
        if index > 0 {
            page.push('\n');
        }
        // Writing to a String cannot fail.
        let _ = writeln!(page, "Upstream {}", upstream.name);
        page.push_str("    Primary Peers\n");
        text_peers(&mut page, upstream.primaries());
        page.push_str("    Backup Peers\n");
        text_peers(&mut page, upstream.backups());
    }
    page
}

fn text_peers<'a>(page: &mut String, peers: impl Iterator<Item = &'a Arc<Peer>>) {
    for peer in peers {
        let state = if peer.health.is_up() { "up" } else { "DOWN" };
        let _ = writeln!(page, "        {} {state}", peer.label);
    }
}

#[derive(Serialize)]
struct JsonPage<'a> {
    upstreams: Vec<JsonUpstream<'a>>,
}

#[derive(Serialize)]
struct JsonUpstream<'a> {
    name: &'a str,
    peers: Vec<JsonPeer<'a>>,
}

#[derive(Serialize)]
struct JsonPeer<'a> {
    address: &'a str,
    backup: bool,
    weight: u16,
    /// "up" or "down".
    state: &'static str,
    /// False until the first probe has run.
    probed: bool,
    consecutive_successes: u32,
    consecutive_failures: u32,
    /// RFC 3339, UTC.
    last_probe: Option<String>,
    last_probe_latency_ms: Option<f64>,
    last_error: Option<String>,
    last_state_change: Option<String>,
    requests: u64,
}

fn render_json(upstreams: &[Arc<Upstream>]) -> Vec<u8> {
    let page = JsonPage {
        upstreams: upstreams
            .iter()
            .map(|u| JsonUpstream {
                name: &u.name,
                peers: u.peers.iter().map(|p| json_peer(p)).collect(),
            })
            .collect(),
    };
    let mut body = serde_json::to_vec_pretty(&page).unwrap_or_else(|e| {
        format!("{{\"error\":\"cannot render the status page: {e}\"}}").into_bytes()
    });
    body.push(b'\n');
    body
}

fn json_peer(peer: &Peer) -> JsonPeer<'_> {
    let record = peer.health.snapshot();
    JsonPeer {
        address: &peer.label,
        backup: peer.backup,
        weight: peer.weight,
        state: if record.up { "up" } else { "down" },
        probed: record.probed,
        consecutive_successes: record.consecutive_successes,
        consecutive_failures: record.consecutive_failures,
        last_probe: record.last_probe.map(rfc3339),
        last_probe_latency_ms: record
            .last_probe_latency
            .map(|d| (d.as_secs_f64() * 1e6).round() / 1e3),
        last_error: record.last_error,
        last_state_change: record.last_change.map(rfc3339),
        requests: peer.requests_served(),
    }
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_asked_for_by_query_or_accept() {
        assert_eq!(Format::negotiate(None, None), Format::Text);
        assert_eq!(Format::negotiate(Some("format=json"), None), Format::Json);
        assert_eq!(
            Format::negotiate(Some("a=1&format=json"), None),
            Format::Json
        );
        assert_eq!(Format::negotiate(Some("format=jsonx"), None), Format::Text);
        assert_eq!(
            Format::negotiate(None, Some(b"text/html, Application/JSON;q=0.9")),
            Format::Json
        );
        assert_eq!(Format::negotiate(None, Some(b"*/*")), Format::Text);
    }
}
