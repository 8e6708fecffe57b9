//! Requests are spread across peers as the algorithm and weights say (the
//! load-aware algorithms by the requests each peer has in flight), backup
//! peers stand by, a retry never goes back to a peer it tried, and the
//! request reaches the peer with its forwarding headers, on a kept-alive
//! connection. The load-aware scenarios print their figures.

mod common;

use common::raw_backend::{RawBackend, Received};
use common::{
    count, single_peer, upstream_section, wait_until, Backend, Balancer, Client, Load, Site,
};
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

/// Three backends as peers with weights 1, 2 and 1.
fn weighted_1_2_1(backends: &[Backend]) -> Vec<String> {
    vec![
        backends[0].addr.to_string(),
        format!("{{ addr: {}, weight: 2 }}", backends[1].addr),
        backends[2].addr.to_string(),
    ]
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
    let peers = weighted_1_2_1(&backends);
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
fn consistent_hash_keeps_a_user_on_one_peer_by_header_or_cookie() {
    let backends = three_backends();
    for (hash_key, header) in [("header:X-User", "x-user"), ("cookie:session", "cookie")] {
        let mut upstreams =
            upstream_section("backend", "consistent_hash", &plain_peers(&backends), 500);
        upstreams.push_str(&format!("    hash_key: {hash_key}\n"));
        let balancer = Balancer::start(&upstreams);
        let client = Client::new();
        let mut owners = std::collections::BTreeSet::new();
        for user in 0..20 {
            let value = match header {
                "cookie" => format!("theme=dark; session=user-{user}"),
                _ => format!("user-{user}"),
            };
            let first = client.data_backend(&balancer, &[(header, &value)]);
            for _ in 1..10 {
                let again = client.data_backend(&balancer, &[(header, &value)]);
                assert_eq!(again, first, "{hash_key}: user {user} moved");
            }
            owners.insert(first);
        }
        println!("{hash_key}: 20 users x 10 requests, each on one peer; peers used: {owners:?}");
        assert!(owners.iter().all(|o| o.starts_with('b')), "{owners:?}");
        assert!(owners.len() >= 2, "{hash_key}: 20 users on {owners:?}");
        // Without the header or cookie: an eligible peer at random.
        let keyless = client.data_backends(&balancer, 30);
        assert!(keyless.iter().all(|b| b.starts_with('b')), "{keyless:?}");
    }
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

/// Each backend's share of the `/api/data` requests it answered (its own
/// count) since `before` (the counts then), in percent.
fn shares_since(backends: &[Backend], before: &[f64]) -> Vec<f64> {
    let served: Vec<f64> = backends
        .iter()
        .zip(before)
        .map(|(b, before)| b.data_requests() - before)
        .collect();
    let total: f64 = served.iter().sum();
    served.iter().map(|n| 100.0 * n / total).collect()
}

/// Under `algorithm`, with peers at 5, 5 and 100 ms and 16 clients for 3
/// s: the slow peer's share of the requests, in percent; every request
/// succeeds, and the in-flight gauges count the requests at the peers.
fn slow_peer_share(algorithm: &str) -> f64 {
    const CLIENTS: usize = 16;
    let backends = [
        Backend::start("fast1", 5),
        Backend::start("fast2", 5),
        Backend::start("slow", 100),
    ];
    let balancer = Balancer::start(&upstream_section(
        "backend",
        algorithm,
        &plain_peers(&backends),
        1000,
    ));
    let before: Vec<f64> = backends.iter().map(Backend::data_requests).collect();
    let load = Load::start(&balancer.url("/api/data"), CLIENTS);
    std::thread::sleep(Duration::from_millis(1500));
    // The peers' in-flight gauges add up to the clients' requests that are
    // at a peer now.
    let in_flight = balancer.scrape().sum(
        "switchyard_peer_requests_in_flight",
        &[("upstream", "backend")],
    );
    std::thread::sleep(Duration::from_millis(1500));
    let report = load.finish();
    let shares = shares_since(&backends, &before);
    println!(
        "{algorithm}, {CLIENTS} clients, peers at 5, 5 and 100 ms: {} requests, {} errors, \
         shares {:.1} % / {:.1} % / {:.1} % (slow last), {in_flight:?} in flight mid-run",
        report.requests, report.errors, shares[0], shares[1], shares[2]
    );
    assert_eq!(report.errors, 0, "{:?}", report.samples);
    let in_flight = in_flight.expect("switchyard_peer_requests_in_flight is exported");
    assert!((1.0..=CLIENTS as f64).contains(&in_flight), "{in_flight}");
    // Every request has ended: every gauge is back to 0.
    let idle = |scrape: &common::Scrape| {
        scrape.sum(
            "switchyard_peer_requests_in_flight",
            &[("upstream", "backend")],
        ) == Some(0.0)
    };
    assert!(idle(&balancer.scrape_when(idle)), "in flight after the run");
    // /check shows how fast each peer answers (its latency estimate).
    let check = balancer.check_json();
    let latency = |peer: &Backend| {
        let peers = check["upstreams"][0]["peers"].as_array().expect("peers");
        let shown = peers.iter().find(|p| p["address"] == peer.addr.to_string());
        shown
            .and_then(|p| p["latency_ewma_ms"].as_f64())
            .expect("latency_ewma_ms")
    };
    let (fast, slow) = (latency(&backends[0]), latency(&backends[2]));
    assert!(slow >= 90.0 && fast < slow, "{fast} ms and {slow} ms");
    shares[2]
}

#[test]
fn least_conn_keeps_most_requests_off_a_slow_peer() {
    let slow = slow_peer_share("least_conn");
    assert!(slow < 10.0, "the slow peer got {slow:.1} %");
}

#[test]
fn ewma_keeps_nearly_every_request_off_a_slow_peer() {
    let slow = slow_peer_share("ewma");
    assert!(slow < 2.0, "the slow peer got {slow:.1} %");
}

/// Under `algorithm`, peers of one speed with weights 1, 2 and 1 get their
/// shares within 5 % over 3,000 requests in turn, and so do weights 3, 2, 1
/// set through the admin API, from the next request.
fn weights_hold_among_peers_of_one_speed(algorithm: &str) {
    let backends = three_backends();
    let section = upstream_section("backend", algorithm, &weighted_1_2_1(&backends), 500);
    let balancer = Balancer::start_site(Site::with_admin(&section, "", None));
    let client = Client::new();
    let shares_of = |weights: [usize; 3], requests: usize| {
        let seen = client.data_backends(&balancer, requests);
        let counts = ["b1", "b2", "b3"].map(|name| count(&seen, name));
        println!("{algorithm}, weights {weights:?}, {requests} requests in turn: {counts:?}");
        let total: usize = weights.iter().sum();
        for (n, weight) in counts.into_iter().zip(weights) {
            let expected = requests * weight / total;
            assert!(
                n.abs_diff(expected) * 20 <= expected,
                "{algorithm}: {n} for weight {weight}, not {expected} ± 5 %: {counts:?}"
            );
        }
    };
    shares_of([1, 2, 1], 3000);
    // A weight set through the admin API counts from the next request.
    let path = format!("/upstreams/backend/peers/{}/weight", backends[0].addr);
    let (status, answer) = balancer.admin("PUT", &path, r#"{"weight": 3}"#);
    assert_eq!(status, 200, "{answer}");
    shares_of([3, 2, 1], 1200);
}

#[test]
fn least_request_gives_equal_speed_peers_their_weights_shares() {
    weights_hold_among_peers_of_one_speed("least_request");
}

#[test]
fn ewma_gives_equal_speed_peers_their_weights_shares() {
    weights_hold_among_peers_of_one_speed("ewma");
}

/// Requests the balancer has counted for `peer` (answered or failed).
fn requests_of(balancer: &Balancer, peer: std::net::SocketAddr) -> f64 {
    let scrape = balancer.scrape();
    let peer = peer.to_string();
    scrape
        .sum("switchyard_requests_total", &[("peer", &peer)])
        .unwrap_or(0.0)
}

#[test]
fn ewma_moves_traffic_off_a_peer_that_stalls_and_back_when_it_recovers() {
    const CLIENTS: usize = 16;
    let backends = [
        Backend::start("b1", 5),
        Backend::start("b2", 5),
        Backend::start("b3", 5),
    ];
    let stalling = backends[2].addr;
    let mut section = upstream_section("backend", "ewma", &plain_peers(&backends), 1000);
    // Probes and passive health would take the stalled peer out on their
    // own; this is about selection. A short decay brings it back soon.
    section.push_str(
        "    ewma_decay: 1s
    passive_health: { max_fails: 0 }
",
    );
    section = section.replace("interval: 1000ms", "interval: 60s");
    let balancer = Balancer::start(&section);
    let load = Load::start(&balancer.url("/api/data"), CLIENTS);
    std::thread::sleep(Duration::from_millis(500));
    let in_flight_on_it = || {
        let peer = stalling.to_string();
        let scrape = balancer.scrape();
        scrape
            .sum("switchyard_peer_requests_in_flight", &[("peer", &peer)])
            .unwrap_or(0.0)
    };
    backends[2].process.signal("STOP");
    // Nothing comes back from it: its in-flight count is what was sent.
    std::thread::sleep(Duration::from_secs(1));
    let sent_in_first_second = in_flight_on_it();
    std::thread::sleep(Duration::from_secs(1));
    let sent_in_two_seconds = in_flight_on_it();
    backends[2].process.signal("CONT");
    // Back: within a few decays, a third of the traffic again.
    let back_after = wait_until(Duration::from_secs(10), || {
        let before = requests_of(&balancer, stalling);
        let total_before: f64 = backends
            .iter()
            .map(|b| requests_of(&balancer, b.addr))
            .sum();
        std::thread::sleep(Duration::from_millis(500));
        let its = requests_of(&balancer, stalling) - before;
        let total: f64 = backends
            .iter()
            .map(|b| requests_of(&balancer, b.addr))
            .sum();
        its / (total - total_before) > 0.2
    });
    let report = load.finish();
    println!(
        "ewma, {CLIENTS} clients, one of three peers stopped for 2 s: {sent_in_first_second} \
         requests sent to it in the first second, {sent_in_two_seconds} in both, \
         a fifth of the traffic again {back_after:?} after it resumed; {} requests, {} errors",
        report.requests, report.errors
    );
    assert_eq!(report.errors, 0, "{:?}", report.samples);
    assert_eq!(
        sent_in_two_seconds, sent_in_first_second,
        "sent to it in the second second"
    );
    assert!(
        sent_in_first_second <= CLIENTS as f64 / 2.0,
        "{sent_in_first_second}"
    );
    assert!(back_after.is_some(), "its traffic did not come back");
}

#[test]
fn slow_start_ramps_a_peer_enabled_again() {
    const WINDOW_MS: u64 = 4000;
    let backends = three_backends();
    let returning = backends[2].addr;
    let mut section = upstream_section("backend", "round_robin", &plain_peers(&backends), 500);
    section.push_str(&format!(
        "    slow_start: {WINDOW_MS}ms
"
    ));
    let balancer = Balancer::start_site(Site::with_admin(&section, "", None));
    let client = Client::new();
    // A peer present at startup does not ramp: a third at once.
    let seen = client.data_backends(&balancer, 300);
    assert_eq!(count(&seen, "b3"), 100, "{seen:?}");
    balancer.peer_action(returning, "disable");
    balancer.peer_action(returning, "enable");
    let enabled = std::time::Instant::now();
    // Its first tenth of the window: from 10 % to 19 % of its full share.
    let mut first_tenth = Vec::new();
    while enabled.elapsed() < Duration::from_millis(WINDOW_MS / 10) {
        first_tenth.extend(client.data_backends(&balancer, 10));
    }
    let early = count(&first_tenth, "b3") as f64 / first_tenth.len() as f64;
    // After the window: its full share.
    std::thread::sleep(Duration::from_millis(WINDOW_MS).saturating_sub(enabled.elapsed()));
    let after = client.data_backends(&balancer, 300);
    println!(
        "slow start, {WINDOW_MS} ms: {:.1} % of {} requests in the first tenth of the window, \
         {} of 300 after it",
        early * 100.0,
        first_tenth.len(),
        count(&after, "b3")
    );
    assert!(first_tenth.len() >= 30, "{} requests", first_tenth.len());
    assert!(
        early < 1.0 / 9.0,
        "{:.1} %: not under a third of its share",
        early * 100.0
    );
    assert_eq!(count(&after, "b3"), 100, "{after:?}");
}

#[test]
fn a_retry_never_goes_back_to_a_peer_it_tried() {
    const CLIENTS: usize = 8;
    let mut backends = three_backends();
    let dead = backends[2].addr;
    // Passive health off and the next probe a minute away: the dead peer
    // stays UP, and only the request's own tried peers keep a retry off it.
    let balancers: Vec<(&str, Balancer, std::path::PathBuf)> = [
        "round_robin",
        "random",
        "consistent_hash",
        "least_conn",
        "least_request",
        "ewma",
    ]
    .into_iter()
    .map(|algorithm| {
        let mut upstreams = upstream_section("backend", algorithm, &plain_peers(&backends), 60_000);
        upstreams.push_str("    retries: 2\n    passive_health: { max_fails: 0 }\n");
        let site = Site::new(&upstreams, "");
        let log = site.dir.path().join("access.log");
        let extra = format!("access_log: {{ path: \"{}\" }}\n", log.display());
        site.write_config(&site.config_path, &upstreams, &extra);
        (algorithm, Balancer::start_site(site), log)
    })
    .collect();
    backends[2].process.kill();
    for (algorithm, balancer, log) in &balancers {
        let load = Load::start(&balancer.url("/api/data"), CLIENTS);
        std::thread::sleep(Duration::from_millis(600));
        let report = load.finish();
        let lines = || std::fs::read_to_string(log).unwrap_or_default();
        wait_until(Duration::from_secs(5), || {
            lines().lines().count() >= report.requests
        });
        let attempts: Vec<u64> = lines()
            .lines()
            .map(|line| {
                let entry: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                assert_ne!(entry["peer"], dead.to_string(), "{line}");
                entry["attempts"].as_u64().expect("attempts")
            })
            .collect();
        let retried = attempts.iter().filter(|&&a| a == 2).count();
        let refused = balancer.scrape().sum(
            "switchyard_upstream_errors_total",
            &[("peer", &dead.to_string()), ("kind", "connect_refused")],
        );
        println!(
            "{algorithm}, one of three peers refusing connections: {} requests, {} errors, \
             {retried} of {} logged requests retried once, {refused:?} refused attempts",
            report.requests,
            report.errors,
            attempts.len()
        );
        assert_eq!(report.errors, 0, "{algorithm}: {:?}", report.samples);
        // The dead peer is the only one that fails: a second attempt would
        // have been a return to it.
        assert!(
            attempts.iter().all(|&a| a <= 2),
            "{algorithm}: {attempts:?}"
        );
        assert_eq!(refused, Some(retried as f64), "{algorithm}");
        // A hash of one URL keeps to one peer, maybe a live one.
        if *algorithm != "consistent_hash" {
            assert!(retried > 0, "{algorithm} never tried the dead peer");
        }
    }
}
