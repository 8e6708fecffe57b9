//! Requests are spread across peers as the algorithm and weights say, backup
//! peers stand by, and the request reaches the peer with its forwarding
//! headers, on a kept-alive connection.

mod common;

use common::raw_backend::{RawBackend, Received};
use common::{count, single_peer, upstream_section, Backend, Balancer, Client};
use std::time::Duration;

fn three_backends() -> Vec<Backend> {
    ["b1", "b2", "b3"]
        .iter()
        .map(|name| Backend::start(name, 0))
        .collect()
}

fn plain_peers(backends: &[Backend]) -> Vec<String> {
    backends.iter().map(|b| b.addr.to_string()).collect()
}

#[test]
fn round_robin_gives_each_peer_its_turn() {
    let backends = three_backends();
    let balancer = Balancer::start(&upstream_section(
        "backend",
        "round_robin",
        &plain_peers(&backends),
        500,
    ));
    let seen = Client::new().data_backends(&balancer, 300);
    for name in ["b1", "b2", "b3"] {
        assert_eq!(count(&seen, name), 100, "{name} in {seen:?}");
    }
    // Strict rotation: no peer twice in a row.
    assert!(seen.windows(2).all(|w| w[0] != w[1]), "{seen:?}");
}

#[test]
fn weights_shape_the_share() {
    let backends = three_backends();
    let peers = vec![
        backends[0].addr.to_string(),
        format!("{{ addr: {}, weight: 2 }}", backends[1].addr),
        backends[2].addr.to_string(),
    ];
    let balancer = Balancer::start(&upstream_section("backend", "round_robin", &peers, 500));
    let seen = Client::new().data_backends(&balancer, 400);
    assert_eq!(count(&seen, "b1"), 100, "{seen:?}");
    assert_eq!(count(&seen, "b2"), 200, "{seen:?}");
    assert_eq!(count(&seen, "b3"), 100, "{seen:?}");
}

#[test]
fn random_reaches_every_peer() {
    let backends = three_backends();
    let balancer = Balancer::start(&upstream_section(
        "backend",
        "random",
        &plain_peers(&backends),
        500,
    ));
    let seen = Client::new().data_backends(&balancer, 300);
    for name in ["b1", "b2", "b3"] {
        let n = count(&seen, name);
        assert!((60..=140).contains(&n), "{name} got {n} of 300");
    }
}

#[test]
fn consistent_hash_keeps_a_uri_on_one_peer() {
    let backends = three_backends();
    let balancer = Balancer::start(&upstream_section(
        "backend",
        "consistent_hash",
        &plain_peers(&backends),
        500,
    ));
    let client = Client::new();
    let mut owners = std::collections::HashSet::new();
    for key in 0..30 {
        let url = balancer.url(&format!("/api/data?user={key}"));
        let first = client.get(&url).1;
        for _ in 0..3 {
            assert_eq!(client.get(&url).1, first, "{url} moved");
        }
        let json: serde_json::Value = serde_json::from_str(&first).unwrap();
        owners.insert(json["backend"].as_str().unwrap().to_string());
    }
    assert_eq!(
        owners.len(),
        3,
        "30 keys should land on all 3 peers: {owners:?}"
    );
}

#[test]
fn backups_serve_only_while_every_primary_is_down() {
    let backends = three_backends();
    let peers = vec![
        backends[0].addr.to_string(),
        backends[1].addr.to_string(),
        format!("{{ addr: {}, backup: true }}", backends[2].addr),
    ];
    let balancer = Balancer::start(&upstream_section("backend", "round_robin", &peers, 100));
    let client = Client::new();
    let seen = client.data_backends(&balancer, 40);
    assert_eq!(count(&seen, "b3"), 0, "the backup took traffic: {seen:?}");
    let page = balancer.check();
    assert!(
        page.ends_with(&format!(
            "    Backup Peers\n        {} UP\n",
            backends[2].addr
        )),
        "{page}"
    );

    // One primary down: the other primary takes everything.
    backends[0].switch();
    balancer.wait_for_state(backends[0].addr, "DOWN");
    let seen = client.data_backends(&balancer, 20);
    assert_eq!(count(&seen, "b2"), 20, "{seen:?}");

    // Every primary down: the backup serves.
    backends[1].switch();
    balancer.wait_for_state(backends[1].addr, "DOWN");
    let seen = client.data_backends(&balancer, 20);
    assert_eq!(count(&seen, "b3"), 20, "{seen:?}");

    // A primary returns: the backup stands by again.
    backends[0].switch();
    balancer.wait_for_state(backends[0].addr, "UP");
    let seen = client.data_backends(&balancer, 20);
    assert_eq!(count(&seen, "b1"), 20, "{seen:?}");
}

#[test]
fn the_peer_sees_where_the_request_comes_from() {
    let peer = RawBackend::start(None);
    let section = single_peer(peer.addr);
    // From an untrusted client (no trusted_proxies), claims are replaced.
    let balancer = Balancer::start(&section);
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    agent
        .get(&balancer.url("/api/data"))
        .header("X-Forwarded-For", "203.0.113.7")
        .call()
        .expect("request through the balancer");
    let seen = wait_for_request(&peer, "/api/data", 0);
    assert_eq!(seen.header("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(seen.header("x-real-ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto").as_deref(), Some("http"));

    // From a trusted proxy, the chain is extended.
    let trusting = Balancer::start_with(&section, "trusted_proxies: [127.0.0.0/8]\n");
    agent
        .get(&trusting.url("/api/data"))
        .header("X-Forwarded-For", "203.0.113.7")
        .call()
        .expect("request through the balancer");
    let seen = wait_for_request(&peer, "/api/data", 1);
    assert_eq!(
        seen.header("x-forwarded-for").as_deref(),
        Some("203.0.113.7, 127.0.0.1")
    );
    assert_eq!(seen.header("x-real-ip").as_deref(), Some("203.0.113.7"));
}

/// The `n`th request (from 0) for `target` that `peer` got, waiting for it.
fn wait_for_request(peer: &RawBackend, target: &str, n: usize) -> Received {
    let arrived = common::wait_until(Duration::from_secs(5), || {
        peer.received_under(target).len() > n
    });
    assert!(
        arrived.is_some(),
        "the peer got no request {n} for {target}"
    );
    peer.received_under(target).swap_remove(n)
}

#[test]
fn connections_to_the_peer_are_kept_alive_and_reused() {
    let peer = RawBackend::start(None);
    let balancer = Balancer::start(&single_peer(peer.addr));
    // Each client request on a connection of its own: only the balancer's
    // side can keep connections.
    for _ in 0..20 {
        assert_eq!(common::get(&balancer.url("/api/data")).0, 200);
    }
    let connections: std::collections::BTreeSet<usize> = peer
        .received_under("/api/data")
        .iter()
        .map(|r| r.connection)
        .collect();
    // One per worker thread at most (the config runs two).
    assert!(
        connections.len() <= 2,
        "20 requests took {} connections",
        connections.len()
    );
}
