//! The status page as JSON: per upstream, per peer, the whole health record.

use super::PeerView;
use crate::upstream::Upstream;
use serde::Serialize;
use std::sync::Arc;

#[derive(Serialize)]
struct Page<'a> {
    upstreams: Vec<UpstreamView<'a>>,
}

#[derive(Serialize)]
struct UpstreamView<'a> {
    name: &'a str,
    peers: Vec<PeerView<'a>>,
}

pub fn render(upstreams: &[Arc<Upstream>]) -> Vec<u8> {
    let page = Page {
        upstreams: upstreams
            .iter()
            .map(|u| UpstreamView {
                name: &u.name,
                peers: u.peers.iter().map(|p| PeerView::of(p)).collect(),
            })
            .collect(),
    };
    let mut body = serde_json::to_vec_pretty(&page).unwrap_or_else(|e| {
        format!("{{\"error\":\"cannot render the status page: {e}\"}}").into_bytes()
    });
    body.push(b'\n');
    body
}
