//! Requests are spread across peers as the algorithm and weights say, backup
//! peers stand by, and the request reaches the peer with X-Forwarded-For.

mod common;

use common::{count, upstream_section, Backend, Balancer, Client};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;
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
            "    Backup Peers\n        {} up\n",
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
    balancer.wait_for_state(backends[0].addr, "up");
    let seen = client.data_backends(&balancer, 20);
    assert_eq!(count(&seen, "b1"), 20, "{seen:?}");
}

/// A peer that answers 200 to everything and reports each `/api/data`
/// request head it got, with the number of the connection it came on.
fn recording_peer() -> (std::net::SocketAddr, mpsc::Receiver<(usize, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (heads, received) = mpsc::channel();
    std::thread::spawn(move || {
        for (connection, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            let heads = heads.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    if head.starts_with("GET /api/data") {
                        let _ = heads.send((connection, head));
                    }
                    let reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                    if writer.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, received)
}

#[test]
fn the_peer_sees_x_forwarded_for() {
    let (peer, heads) = recording_peer();
    let balancer = Balancer::start(&upstream_section(
        "backend",
        "round_robin",
        &[peer.to_string()],
        500,
    ));
    let (status, _) = common::get(&balancer.url("/api/data"));
    assert_eq!(status, 200);
    let (_, head) = heads
        .recv_timeout(Duration::from_secs(5))
        .expect("peer got the request");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-forwarded-for: 127.0.0.1\r\n"),
        "{head}"
    );

    // An existing header is extended, not replaced.
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    agent
        .get(&balancer.url("/api/data"))
        .header("X-Forwarded-For", "203.0.113.7")
        .call()
        .expect("request through the balancer");
    let (_, head) = heads
        .recv_timeout(Duration::from_secs(5))
        .expect("peer got the request");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-forwarded-for: 203.0.113.7, 127.0.0.1\r\n"),
        "{head}"
    );
}

#[test]
fn connections_to_the_peer_are_kept_alive_and_reused() {
    let (peer, heads) = recording_peer();
    let balancer = Balancer::start(&upstream_section(
        "backend",
        "round_robin",
        &[peer.to_string()],
        60_000,
    ));
    // Each client request on a connection of its own: only the balancer's
    // side can keep connections.
    for _ in 0..20 {
        assert_eq!(common::get(&balancer.url("/api/data")).0, 200);
    }
    let connections: std::collections::BTreeSet<usize> = (0..20)
        .map(|_| {
            heads
                .recv_timeout(Duration::from_secs(5))
                .expect("request")
                .0
        })
        .collect();
    // One per worker thread at most (the config runs two).
    assert!(
        connections.len() <= 2,
        "20 requests took {} connections",
        connections.len()
    );
}
