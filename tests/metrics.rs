//! The Prometheus endpoint: every family is there, and the counters are
//! exact (after N proxied requests the per-peer counters sum to N).

mod common;

use common::{upstream_section, Backend, Balancer, Client};

#[test]
fn counters_match_the_requests_sent() {
    let b1 = Backend::start("b1", 0);
    let b2 = Backend::start("b2", 0);
    let peers = vec![b1.addr.to_string(), b2.addr.to_string()];
    let balancer = Balancer::start(&upstream_section("backend", "round_robin", &peers, 100));
    let (p1, p2) = (b1.addr.to_string(), b2.addr.to_string());
    let upstream = ("upstream", "backend");
    // Without `routes:`, each upstream's route is named after it.
    let route = ("route", "backend");

    const N: usize = 57;
    let client = Client::new();
    for _ in 0..N {
        assert_eq!(client.get(&balancer.url("/api/data")).0, 200);
    }
    // The status page is served locally and is not a proxied request.
    balancer.check();

    let total = |s: &common::Scrape| s.sum("switchyard_requests_total", &[upstream]);
    let scrape = balancer.scrape_when(|s| total(s) == Some(N as f64));
    let requests = |peer: &str| {
        scrape
            .sum(
                "switchyard_requests_total",
                &[route, upstream, ("peer", peer), ("status", "200")],
            )
            .unwrap_or(0.0)
    };
    // Round robin over two peers: 29 and 28, in whichever order the peers sort.
    let mut split = [requests(&p1), requests(&p2)];
    split.sort_by(f64::total_cmp);
    assert_eq!(split, [28.0, 29.0]);
    assert_eq!(
        scrape.sum("switchyard_requests_total", &[upstream]),
        Some(N as f64)
    );
    assert_eq!(
        scrape.sum(
            "switchyard_request_duration_seconds_count",
            &[route, upstream]
        ),
        Some(N as f64)
    );
    assert_eq!(
        scrape.sum(
            "switchyard_upstream_response_duration_seconds_count",
            &[upstream]
        ),
        Some(N as f64)
    );
    assert_eq!(
        scrape.sum("switchyard_requests_in_flight", &[upstream]),
        Some(0.0)
    );
    for peer in [&p1, &p2] {
        let labels = [upstream, ("peer", peer.as_str())];
        assert_eq!(scrape.sum("switchyard_peer_up", &labels), Some(1.0));
        assert_eq!(
            scrape.sum("switchyard_peer_requests_in_flight", &labels),
            Some(0.0)
        );
        assert_eq!(
            scrape.sum("switchyard_peer_state_changes_total", &labels),
            Some(0.0)
        );
        assert_eq!(
            scrape.sum("switchyard_upstream_errors_total", &labels),
            Some(0.0)
        );
        let probes_ok = [upstream, ("peer", peer.as_str()), ("result", "success")];
        assert!(
            scrape
                .sum("switchyard_health_checks_total", &probes_ok)
                .unwrap()
                >= 1.0
        );
    }

    // Switch b2 off: failed probes, one state change, peer_up 0.
    b2.switch();
    balancer.wait_for_state(b2.addr, "DOWN");
    let labels = [upstream, ("peer", p2.as_str())];
    let scrape = balancer.scrape_when(|s| s.sum("switchyard_peer_up", &labels) == Some(0.0));
    assert_eq!(scrape.sum("switchyard_peer_up", &labels), Some(0.0));
    assert_eq!(
        scrape.sum("switchyard_peer_state_changes_total", &labels),
        Some(1.0)
    );
    let failed = [upstream, ("peer", p2.as_str()), ("result", "failure")];
    assert!(
        scrape
            .sum("switchyard_health_checks_total", &failed)
            .unwrap()
            >= 2.0
    );
    assert!(
        scrape
            .sum("switchyard_health_check_duration_seconds_count", &labels)
            .unwrap()
            >= 3.0
    );
}

#[test]
fn failed_connections_are_counted_by_kind() {
    let b1 = Backend::start("b1", 0);
    let closed = common::free_port();
    let peers = vec![b1.addr.to_string(), format!("127.0.0.1:{closed}")];
    // The closed port goes DOWN at the first probe round; b1 is killed
    // right after it, so it is still UP (next probe in a minute) and the
    // request fails to connect.
    let mut b1 = b1;
    let balancer = Balancer::start(&upstream_section("backend", "round_robin", &peers, 60_000));
    b1.process.kill();
    let (status, body) = common::get(&balancer.url("/api/data"));
    assert_eq!(status, 502, "{body}");
    let p1 = b1.addr.to_string();
    let scrape = balancer
        .scrape_when(|s| s.sum("switchyard_requests_total", &[("peer", p1.as_str())]) == Some(1.0));
    let refused = [
        ("upstream", "backend"),
        ("peer", p1.as_str()),
        ("kind", "connect_refused"),
    ];
    assert!(
        scrape
            .sum("switchyard_upstream_errors_total", &refused)
            .unwrap()
            >= 1.0
    );
    let answered = [
        ("upstream", "backend"),
        ("peer", p1.as_str()),
        ("status", "502"),
    ];
    assert_eq!(
        scrape.sum("switchyard_requests_total", &answered),
        Some(1.0)
    );
}
