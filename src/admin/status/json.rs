//! The status page as JSON: per upstream, per peer, the whole health record
//! and the admin state. The admin API's `GET /upstreams` answers the same.

use super::PeerView;
use crate::upstream::discovery::NameStatus;
use crate::upstream::Upstream;
use serde::Serialize;
use std::sync::Arc;

/// Every upstream.
#[derive(Serialize)]
pub struct Page<'a> {
    upstreams: Vec<UpstreamView<'a>>,
}

impl<'a> Page<'a> {
    pub fn of(upstreams: &'a [Arc<Upstream>]) -> Self {
        Page {
            upstreams: upstreams.iter().map(|u| UpstreamView::of(u)).collect(),
        }
    }
}

/// One upstream and its peers, in config order.
#[derive(Serialize)]
pub struct UpstreamView<'a> {
    name: &'a str,
    peers: Vec<PeerView<'a>>,
    /// The peer names of the configuration, with the addresses they give
    /// now (none for a name that does not resolve).
    names: Vec<NameStatus>,
}

impl<'a> UpstreamView<'a> {
    pub fn of(upstream: &'a Upstream) -> Self {
        UpstreamView {
            name: &upstream.name,
            peers: upstream.peers.iter().map(|p| PeerView::of(p)).collect(),
            names: upstream.names.iter().map(|n| n.status()).collect(),
        }
    }
}

/// The page for `upstreams`.
pub fn render(upstreams: &[Arc<Upstream>]) -> Vec<u8> {
    let mut body = serde_json::to_vec_pretty(&Page::of(upstreams)).unwrap_or_else(|e| {
        format!("{{\"error\":\"cannot render the status page: {e}\"}}").into_bytes()
    });
    body.push(b'\n');
    body
}
