//! This host's own limits: the open-file budget a configuration needs, and
//! the errors that mean the host, not a peer, ran out of something.
//!
//! A balancer out of file descriptors fails to connect to its peers and to
//! probe them; taken at face value, every peer goes DOWN and every client
//! gets 503 although nothing is wrong with them. Such errors
//! ([`is_exhausted`]) never count against a peer.

use crate::config::Config;
use pingora_error::Error;
use std::io;

/// Whether `error` means this host ran out of something (file descriptors,
/// local ports, buffer memory): no peer's fault.
pub fn is_exhausted(error: &Error) -> bool {
    error
        .root_cause()
        .downcast_ref::<io::Error>()
        .and_then(io::Error::raw_os_error)
        .is_some_and(|code| {
            matches!(
                code,
                libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EADDRNOTAVAIL
            )
        })
}

/// File descriptors a process needs besides its connections: listeners,
/// log files, the runtimes' own (epoll, eventfd, timers), the metrics
/// listener's clients.
const RESERVED_DESCRIPTORS: u64 = 64;

/// How many file descriptors `config` may need at its busiest: every client
/// connection with a peer connection of its own, the idle keep-alive pool,
/// one probe per peer, and a reserve.
pub fn open_files_needed(config: &Config) -> u64 {
    let clients = config.limits.max_connections.0 as u64;
    let pool = config.server.upstream_keepalive_pool_size.0 as u64;
    let probes: u64 = config
        .upstreams
        .0
        .values()
        .map(|u| u.peers.0.len() as u64)
        .sum();
    2 * clients + pool + probes + RESERVED_DESCRIPTORS
}

/// A warning when `config` may need more file descriptors than `limit`.
pub fn open_files_warning(config: &Config, limit: u64) -> Option<String> {
    let needed = open_files_needed(config);
    (needed > limit).then(|| {
        format!(
            "limits.max_connections {} may need up to {needed} open files (a client and a peer \
             connection each, the idle pool, the probes), but the open-file limit is {limit}: \
             raise it (ulimit -n, systemd LimitNOFILE=) or lower limits.max_connections",
            config.limits.max_connections.0
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora_error::ErrorType;

    #[test]
    fn a_full_descriptor_table_is_this_hosts_problem() {
        let emfile = Error::because(
            ErrorType::ConnectError,
            "connecting",
            io::Error::from_raw_os_error(libc::EMFILE),
        );
        assert!(is_exhausted(&emfile));
        let refused = Error::because(
            ErrorType::ConnectRefused,
            "connecting",
            io::Error::from_raw_os_error(libc::ECONNREFUSED),
        );
        assert!(!is_exhausted(&refused));
    }

    #[test]
    fn the_budget_counts_both_sides_of_a_connection() {
        let config = Config::parse(
            "limits: { max_connections: 100 }\nupstreams: { b: { peers: [127.0.0.1:1, 127.0.0.1:2] } }\n",
            "test.yaml",
        )
        .unwrap();
        assert_eq!(open_files_needed(&config), 200 + 128 + 2 + 64);
        assert!(open_files_warning(&config, 1024).is_none());
        let warning = open_files_warning(&config, 256).unwrap();
        assert!(warning.contains("up to 394 open files"), "{warning}");
    }
}
