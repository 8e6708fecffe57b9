//! Failover under load: a backend dies, fails, freezes, or all of them go
//! away, while several keep-alive clients keep asking. Each scenario prints
//! its request and error counts.

mod common;

use common::{Backend, Balancer, Load, LoadReport};
use std::time::{Duration, Instant};

const CLIENTS: usize = 6;

fn backends() -> Vec<Backend> {
    ["b1", "b2", "b3"]
        .iter()
        .map(|name| Backend::start(name, 10))
        .collect()
}

/// An upstream over `backends` with short timeouts and the given extra keys
/// (indented four spaces, under the upstream).
fn upstream(backends: &[Backend], interval: &str, extra: &str) -> String {
    let peers: Vec<String> = backends.iter().map(|b| b.addr.to_string()).collect();
    format!(
        "  backend:\n    peers: [{}]\n    health_check: {{ path: /api/status, interval: {interval}, timeout: 500ms, rise: 2, fall: 2 }}\n    timeouts: {{ connect: 300ms, read: 1s, write: 1s, request: 5s }}\n{extra}",
        peers.join(", ")
    )
}

fn report(scenario: &str, report: &LoadReport) {
    println!(
        "{scenario}: {} requests, {} errors ({} 5xx), slowest {:?}",
        report.requests, report.errors, report.server_errors, report.max_latency
    );
}

/// Run `load` for `before`, do `act`, keep it running for `after`.
fn under_load(
    balancer: &Balancer,
    before: Duration,
    act: impl FnOnce(),
    after: Duration,
) -> LoadReport {
    let load = Load::start(&balancer.url("/api/data"), CLIENTS);
    std::thread::sleep(before);
    act();
    std::thread::sleep(after);
    load.finish()
}

#[test]
fn killing_a_backend_under_load_costs_no_request() {
    let mut backends = backends();
    let balancer = Balancer::start(&upstream(&backends, "200ms", ""));
    let killed = backends[1].addr;
    let result = under_load(
        &balancer,
        Duration::from_millis(800),
        || backends[1].process.kill(),
        Duration::from_millis(1500),
    );
    report("kill -9 one backend", &result);
    assert_eq!(result.errors, 0, "{:?}", result.samples);
    assert!(result.requests > 200, "too little load");
    assert_eq!(balancer.peer_state(killed), "DOWN");
}

#[test]
fn a_backend_switched_to_500_is_hidden_by_status_retries() {
    let backends = backends();
    // Probes every 5 s: only retries (and passive health) can react in time.
    let balancer = Balancer::start(&upstream(&backends, "5s", "    retry_on_status: [500]\n"));
    let result = under_load(
        &balancer,
        Duration::from_millis(800),
        || assert_eq!(backends[0].switch(), 500),
        Duration::from_millis(1500),
    );
    report("switch one backend to 500, retry_on_status on", &result);
    assert_eq!(result.server_errors, 0, "{:?}", result.samples);
    assert_eq!(result.errors, 0, "{:?}", result.samples);
}

#[test]
fn without_retries_passive_health_stops_the_500s_within_its_threshold() {
    let backends = backends();
    const MAX_FAILS: usize = 3;
    let extra =
        format!("    passive_health: {{ max_fails: {MAX_FAILS}, fail_on_status: [500] }}\n");
    let balancer = Balancer::start(&upstream(&backends, "5s", &extra));
    let switched = Instant::now();
    let result = under_load(
        &balancer,
        Duration::from_millis(800),
        || assert_eq!(backends[0].switch(), 500),
        Duration::from_millis(1500),
    );
    report("switch one backend to 500, no status retries", &result);
    // At most `max_fails` failures in a row, plus what the other clients
    // had in flight to it at that moment.
    assert!(result.server_errors >= 1, "the switch had no effect");
    assert!(
        result.server_errors <= MAX_FAILS + CLIENTS,
        "{} 500s for max_fails {MAX_FAILS}",
        result.server_errors
    );
    // Passive health took it down, long before a probe could (5 s x 2).
    assert!(switched.elapsed() < Duration::from_secs(5));
    let json = balancer.check_json();
    let peer = &json["upstreams"][0]["peers"][0];
    assert_eq!(peer["state"], "down");
    let reason = peer["down_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("passive: 3 failed requests in a row"),
        "{reason}"
    );
}

#[test]
fn a_frozen_backend_costs_at_most_a_timeout_and_no_error() {
    let backends = backends();
    let balancer = Balancer::start(&upstream(&backends, "300ms", ""));
    let frozen = &backends[2];
    let result = under_load(
        &balancer,
        Duration::from_millis(800),
        || frozen.process.signal("STOP"),
        Duration::from_millis(2500),
    );
    report("SIGSTOP one backend", &result);
    assert_eq!(result.errors, 0, "{:?}", result.samples);
    // Read timeout 1 s, then the retry elsewhere answers at once.
    assert!(
        result.max_latency < Duration::from_millis(1800),
        "slowest {:?}",
        result.max_latency
    );
    assert_eq!(balancer.peer_state(frozen.addr), "DOWN");

    frozen.process.signal("CONT");
    balancer.wait_for_state(frozen.addr, "UP");
    let seen = common::Client::new().data_backends(&balancer, 30);
    assert!(
        seen.iter().any(|b| b == "b3"),
        "thawed peer gets traffic again: {seen:?}"
    );
}

#[test]
fn with_every_backend_gone_the_answer_is_a_fast_503_and_recovery_needs_no_restart() {
    let mut backends = backends();
    let balancer = Balancer::start(&upstream(&backends, "200ms", ""));
    let addrs: Vec<_> = backends.iter().map(|b| b.addr).collect();
    for backend in &mut backends {
        backend.process.kill();
    }
    for addr in &addrs {
        balancer.wait_for_state(*addr, "DOWN");
    }
    let load = Load::start(&balancer.url("/api/data"), CLIENTS);
    std::thread::sleep(Duration::from_millis(500));
    let down = load.finish();
    report("every backend killed", &down);
    assert_eq!(
        down.errors, down.server_errors,
        "only 503s: {:?}",
        down.samples
    );
    assert_eq!(
        down.server_errors, down.requests,
        "every request gets the 503"
    );
    assert!(
        down.max_latency < Duration::from_millis(100),
        "slowest 503 {:?}",
        down.max_latency
    );

    let restarted: Vec<Backend> = ["b1", "b2", "b3"]
        .iter()
        .zip(&addrs)
        .map(|(name, addr)| Backend::start_at(name, addr.port(), 10))
        .collect();
    for backend in &restarted {
        balancer.wait_for_state(backend.addr, "UP");
    }
    let load = Load::start(&balancer.url("/api/data"), CLIENTS);
    std::thread::sleep(Duration::from_millis(500));
    let up = load.finish();
    report("every backend restarted", &up);
    assert_eq!(up.errors, 0, "{:?}", up.samples);
    assert!(up.requests > 50);
}

#[test]
fn fail_open_keeps_serving_when_the_health_check_itself_is_broken() {
    let backends = backends();
    let peers: Vec<String> = backends.iter().map(|b| b.addr.to_string()).collect();
    // The probe asks for a path the backends do not have: every peer DOWN.
    let broken_probe = |fail_open: bool| {
        format!(
            "  backend:\n    peers: [{}]\n    fail_open: {fail_open}\n    health_check: {{ path: /no-such-path, interval: 200ms }}\n",
            peers.join(", ")
        )
    };
    let closed = Balancer::start(&broken_probe(false));
    let open = Balancer::start(&broken_probe(true));
    for backend in &backends {
        closed.wait_for_state(backend.addr, "DOWN");
        open.wait_for_state(backend.addr, "DOWN");
    }
    assert_eq!(common::get(&closed.url("/api/data")).0, 503);
    let seen = common::Client::new().data_backends(&open, 30);
    for name in ["b1", "b2", "b3"] {
        assert_eq!(
            common::count(&seen, name),
            10,
            "fail_open spreads over all peers: {seen:?}"
        );
    }
}
