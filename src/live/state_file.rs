//! The state file (`server.state_file`): what operators said about peers
//! (drained, disabled, weights set at runtime), written on every change and
//! read at start, so it survives a restart and `switchyard upgrade` as it
//! survives a reload. HAProxy's `server-state-file` does the same job.
//!
//! JSON, one entry per peer whose admin state is not `active` or whose
//! weight was set at runtime; written to a temporary file and renamed over
//! the old one, so a crash never leaves half a file.

use crate::peer::admin::{AdminState, WeightOverride};
use crate::peer::Peer;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::Path;

/// What an operator said about one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SavedPeer {
    pub admin_state: AdminState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<WeightOverride>,
}

/// Saved peers by (upstream, address).
pub type SavedPeers = HashMap<(String, SocketAddr), SavedPeer>;

#[derive(Serialize, Deserialize)]
struct Entry {
    upstream: String,
    peer: SocketAddr,
    #[serde(flatten)]
    saved: SavedPeer,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    peers: Vec<Entry>,
}

/// Read the state file at `path`; a missing file is an empty state. An
/// unreadable or invalid one is logged and ignored: the balancer starts
/// with every peer active rather than not at all.
pub fn read(path: &Path) -> SavedPeers {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return SavedPeers::new(),
        Err(e) => {
            log::warn!(
                "state file {}: cannot read it ({e}); every peer starts active",
                path.display()
            );
            return SavedPeers::new();
        }
    };
    match serde_json::from_str::<StateFile>(&text) {
        Ok(file) => file
            .peers
            .into_iter()
            .map(|e| ((e.upstream, e.peer), e.saved))
            .collect(),
        Err(e) => {
            log::warn!(
                "state file {}: {e}; every peer starts active",
                path.display()
            );
            SavedPeers::new()
        }
    }
}

/// Write what operators said about `peers` to `path` (nothing while
/// nothing was ever said).
pub fn write<'a>(path: &Path, peers: impl Iterator<Item = &'a Peer>) -> io::Result<()> {
    let peers = peers
        .filter_map(|peer| {
            let saved = SavedPeer {
                admin_state: peer.admin_state(),
                weight: peer.weight_override(),
            };
            (saved != SavedPeer::default()).then(|| Entry {
                upstream: peer.upstream.clone(),
                peer: peer.addr,
                saved,
            })
        })
        .collect::<Vec<_>>();
    if peers.is_empty() && !path.exists() {
        return Ok(());
    }
    let mut text = serde_json::to_string_pretty(&StateFile { peers }).map_err(io::Error::other)?;
    text.push('\n');
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::health::PeerHealth;

    #[test]
    fn what_is_written_is_read_back() {
        let dir = std::env::temp_dir().join(format!("switchyard-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:10".parse().unwrap();
        let weight = Some(WeightOverride {
            configured: 1,
            weight: 3,
        });
        let drained = Peer::new("u", addr, PeerHealth::new(), AdminState::Draining, weight);
        let active = Peer::new("u", other, PeerHealth::new(), AdminState::Active, None);
        write(&path, [&drained, &active].into_iter()).unwrap();
        let saved = read(&path);
        assert_eq!(
            saved.len(),
            1,
            "an active peer without a weight is not saved"
        );
        let entry = saved[&("u".to_string(), addr)];
        assert_eq!(entry.admin_state, AdminState::Draining);
        assert_eq!(entry.weight, weight);
        std::fs::write(&path, "{not json").unwrap();
        assert!(read(&path).is_empty());
        assert!(read(&dir.join("missing")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
