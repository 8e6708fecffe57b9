//! What a change of configuration changed, and why one is refused.

use super::Snapshot;
use crate::config::{Config, DEFAULT_BUFFER};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;

/// A refused change: nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadError {
    /// The new configuration is invalid (the text `-t` prints).
    Invalid(String),
    /// It changes a key that only a restart (or `switchyard upgrade`) can:
    /// the key.
    NeedsRestart(&'static str),
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadError::Invalid(text) => f.write_str(text),
            ReloadError::NeedsRestart(key) => write!(
                f,
                "{key} changed: restart or run 'switchyard upgrade' to apply it"
            ),
        }
    }
}

impl std::error::Error for ReloadError {}

/// Refuse a change of what is fixed while the process runs: its
/// listeners' addresses and which are TLS (the admin listener and its token included), the connection cap (a listener's), the `server:` settings,
/// the access log's queue (its path and format do change).
pub fn check_restartless(old: &Config, new: &Config) -> Result<(), ReloadError> {
    let queue = |config: &Config| {
        config
            .access_log
            .as_ref()
            .map_or(DEFAULT_BUFFER, |a| a.buffer.0)
    };
    let fixed: [(&'static str, bool); 6] = [
        ("listen", old.listen.sockets() == new.listen.sockets()),
        ("metrics", old.metrics == new.metrics),
        ("admin", old.admin == new.admin),
        ("server", old.server == new.server),
        (
            "limits.max_connections",
            old.limits.max_connections == new.limits.max_connections,
        ),
        ("access_log.buffer", queue(old) == queue(new)),
    ];
    match fixed.iter().find(|(_, same)| !same) {
        Some((key, _)) => Err(ReloadError::NeedsRestart(key)),
        None => Ok(()),
    }
}

/// Peers added, removed, and changed (weight or role) by a change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
}

impl Changes {
    /// What going from `old` to `new` changes about peers.
    pub fn between(old: &Snapshot, new: &Snapshot) -> Changes {
        let settings = |snapshot: &Snapshot| -> HashMap<(String, SocketAddr), (u16, bool)> {
            snapshot
                .upstreams
                .iter()
                .flat_map(|u| {
                    u.peers
                        .iter()
                        .map(move |m| ((u.name.clone(), m.peer.addr), (m.weight, m.backup)))
                })
                .collect()
        };
        let (before, after) = (settings(old), settings(new));
        let mut changes = Changes::default();
        for (peer, now) in &after {
            match before.get(peer) {
                None => changes.added += 1,
                Some(then) if then != now => changes.changed += 1,
                Some(_) => {}
            }
        }
        changes.removed = before.keys().filter(|p| !after.contains_key(*p)).count();
        changes
    }
}

impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = if self.added == 1 { "peer" } else { "peers" };
        write!(
            f,
            "{} {noun} added, {} removed, {} changed",
            self.added, self.removed, self.changed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = format!("{extra}upstreams:\n  a:\n    peers: [127.0.0.1:1]\n");
        Config::parse(&text, "test.yaml").unwrap()
    }

    #[test]
    fn the_access_log_changes_while_running_but_not_its_queue() {
        let off = config("");
        let on = config("access_log: { path: /tmp/a.log }\n");
        let moved = config("access_log: { path: /tmp/b.log, format: combined }\n");
        assert_eq!(check_restartless(&off, &on), Ok(()));
        assert_eq!(check_restartless(&on, &moved), Ok(()));
        assert_eq!(check_restartless(&on, &off), Ok(()));
        let bigger = config("access_log: { path: /tmp/a.log, buffer: 8192 }\n");
        assert_eq!(
            check_restartless(&on, &bigger),
            Err(ReloadError::NeedsRestart("access_log.buffer"))
        );
        assert!(check_restartless(&off, &bigger).is_err());
    }
}
