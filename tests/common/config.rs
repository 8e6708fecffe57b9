//! Config text for the balancers of the tests.

use std::net::SocketAddr;
use std::path::Path;

/// A one-upstream config over the single peer at `peer`, probed once a
/// minute (the first probe decides its state; few probes, so a test can
/// count the peer's connections).
pub fn single_peer(peer: SocketAddr) -> String {
    upstream_section("backend", "round_robin", &[peer.to_string()], 60_000)
}

/// The `server:` section tests use: short grace periods, files in `dir`.
pub fn server_section(dir: &Path) -> String {
    format!(
        "server:\n  threads: 2\n  pid_file: {}\n  upgrade_sock: {}\n  grace_period_seconds: 2\n  graceful_shutdown_timeout_seconds: 1\n",
        dir.join("switchyard.pid").display(),
        dir.join("upgrade.sock").display()
    )
}

/// A one-upstream config over `peers` (YAML list items, e.g. `127.0.0.1:1`
/// or `{ addr: ..., backup: true }`), probing every `interval_ms` with
/// rise = fall = 2.
pub fn upstream_section(name: &str, algorithm: &str, peers: &[String], interval_ms: u64) -> String {
    let mut text = format!("  {name}:\n    algorithm: {algorithm}\n    peers:\n");
    for peer in peers {
        text.push_str(&format!("      - {peer}\n"));
    }
    text.push_str(&format!(
        "    health_check:\n      path: /api/status\n      interval: {interval_ms}ms\n      timeout: 500ms\n      rise: 2\n      fall: 2\n"
    ));
    text
}
