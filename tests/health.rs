//! Active health checks: a switched-off or dead peer leaves the rotation
//! within `interval x fall` (+ one interval), comes back within
//! `interval x rise` (+ one interval), and a peer down at startup never
//! sees a request.

mod common;

use common::{count, upstream_section, Backend, Balancer, Client};
use std::time::{Duration, Instant};

const INTERVAL_MS: u64 = 200;
/// rise = fall = 2 (see `upstream_section`).
const THRESHOLD: u64 = 2;
/// Scheduling slack on a loaded 2-core machine.
const SLACK_MS: u64 = 400;

fn flip_limit() -> Duration {
    Duration::from_millis(INTERVAL_MS * THRESHOLD + INTERVAL_MS + SLACK_MS)
}

fn setup() -> (Vec<Backend>, Balancer) {
    let backends: Vec<Backend> = ["b1", "b2", "b3"]
        .iter()
        .map(|name| Backend::start(name, 0))
        .collect();
    let peers: Vec<String> = backends.iter().map(|b| b.addr.to_string()).collect();
    let balancer = Balancer::start(&upstream_section(
        "backend",
        "round_robin",
        &peers,
        INTERVAL_MS,
    ));
    (backends, balancer)
}

/// `switchyard_peer_up` of `backend`, once it reads `expected` (the gauge is
/// set a moment after the state flips).
fn peer_up_gauge(balancer: &Balancer, backend: &Backend, expected: f64) -> Option<f64> {
    let peer = backend.addr.to_string();
    let labels = [("upstream", "backend"), ("peer", peer.as_str())];
    balancer
        .scrape_when(|s| s.sum("switchyard_peer_up", &labels) == Some(expected))
        .sum("switchyard_peer_up", &labels)
}

#[test]
fn a_switched_off_peer_leaves_and_rejoins_the_rotation() {
    let (backends, balancer) = setup();
    let client = Client::new();
    let b2 = &backends[1];

    assert_eq!(b2.switch(), 500);
    let switched = Instant::now();
    balancer.wait_for_state(b2.addr, "DOWN");
    let took = switched.elapsed();
    assert!(
        took <= flip_limit(),
        "DOWN after {took:?}, limit {:?}",
        flip_limit()
    );
    assert_eq!(peer_up_gauge(&balancer, b2, 0.0), Some(0.0));
    let seen = client.data_backends(&balancer, 30);
    assert_eq!(count(&seen, "b2"), 0, "a DOWN peer got traffic: {seen:?}");
    assert!(seen.iter().all(|b| b == "b1" || b == "b3"), "{seen:?}");

    let json = balancer.check_json();
    let record = &json["upstreams"][0]["peers"][1];
    assert_eq!(record["state"], "down");
    assert_eq!(record["last_error"], "HTTP 500");
    assert!(record["consecutive_failures"].as_u64().unwrap() >= THRESHOLD);

    assert_eq!(b2.switch(), 200);
    let switched = Instant::now();
    balancer.wait_for_state(b2.addr, "UP");
    let took = switched.elapsed();
    assert!(
        took <= flip_limit(),
        "UP after {took:?}, limit {:?}",
        flip_limit()
    );
    assert_eq!(peer_up_gauge(&balancer, b2, 1.0), Some(1.0));
    let seen = client.data_backends(&balancer, 30);
    assert_eq!(count(&seen, "b2"), 10, "{seen:?}");
}

#[test]
fn a_killed_peer_goes_down_and_gets_no_traffic() {
    let (mut backends, balancer) = setup();
    let client = Client::new();
    let killed_addr = backends[2].addr;
    backends[2].process.kill();
    let killed = Instant::now();
    balancer.wait_for_state(killed_addr, "DOWN");
    assert!(
        killed.elapsed() <= flip_limit(),
        "DOWN after {:?}",
        killed.elapsed()
    );
    let json = balancer.check_json();
    let error = json["upstreams"][0]["peers"][2]["last_error"]
        .as_str()
        .unwrap();
    assert!(error.contains("ConnectRefused"), "{error}");

    let seen = client.data_backends(&balancer, 30);
    assert_eq!(count(&seen, "b3"), 0, "{seen:?}");
    assert!(
        seen.iter().all(|b| b == "b1" || b == "b2"),
        "client errors: {seen:?}"
    );

    // Restarted on the same port, it rejoins.
    backends[2] = Backend::start_at("b3", killed_addr.port(), 0);
    balancer.wait_for_state(killed_addr, "UP");
    let seen = client.data_backends(&balancer, 30);
    assert_eq!(count(&seen, "b3"), 10, "{seen:?}");
}

#[test]
fn a_peer_down_at_startup_never_gets_a_request() {
    let live = Backend::start("live", 0);
    let dead_port = common::free_port();
    let peers = vec![live.addr.to_string(), format!("127.0.0.1:{dead_port}")];
    // A long interval: only the first probe round can have run.
    let balancer = Balancer::start(&upstream_section("backend", "round_robin", &peers, 5_000));
    let dead: std::net::SocketAddr = ([127, 0, 0, 1], dead_port).into();
    assert_eq!(balancer.peer_state(dead), "DOWN");
    let seen = Client::new().data_backends(&balancer, 20);
    assert_eq!(count(&seen, "live"), 20, "{seen:?}");
}

#[test]
fn with_every_peer_down_the_answer_is_a_fast_503() {
    let (mut backends, balancer) = setup();
    for backend in &mut backends {
        backend.process.kill();
    }
    for backend in &backends {
        balancer.wait_for_state(backend.addr, "DOWN");
    }
    for _ in 0..5 {
        let started = Instant::now();
        let (status, body) = common::get(&balancer.url("/api/data"));
        let took = started.elapsed();
        assert_eq!(status, 503, "{body}");
        assert_eq!(body, "503 Service Unavailable: no peer is up\n");
        assert!(took < Duration::from_millis(100), "503 took {took:?}");
    }
    let labels = [("upstream", "backend"), ("peer", "none"), ("status", "503")];
    let unrouted = |s: &common::Scrape| s.sum("switchyard_requests_total", &labels);
    let scrape = balancer.scrape_when(|s| unrouted(s) == Some(5.0));
    assert_eq!(unrouted(&scrape), Some(5.0));
}
