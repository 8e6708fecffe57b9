//! Stopping: SIGINT (Ctrl-C) stops at once; SIGTERM lets in-flight requests
//! finish within the grace period and refuses new connections.

mod common;

use common::{upstream_section, Backend, Balancer};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn sigint_stops_at_once() {
    let backend = Backend::start("b1", 0);
    let mut balancer = Balancer::start(&upstream_section(
        "backend",
        "round_robin",
        &[backend.addr.to_string()],
        500,
    ));
    let sent = Instant::now();
    balancer.process.signal("INT");
    let status = balancer
        .process
        .wait_exit(Duration::from_secs(2))
        .expect("switchyard exits on SIGINT");
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "took {:?}",
        sent.elapsed()
    );
    assert!(status.success(), "{status:?}");
}

#[test]
fn sigterm_drains_in_flight_requests() {
    let backend = Backend::start("slow", 1000);
    // grace_period_seconds: 2, graceful_shutdown_timeout_seconds: 1
    let mut balancer = Balancer::start(&upstream_section(
        "backend",
        "round_robin",
        &[backend.addr.to_string()],
        500,
    ));
    let url = balancer.url("/api/data");
    let in_flight = std::thread::spawn(move || common::get(&url));
    std::thread::sleep(Duration::from_millis(300));

    let sent = Instant::now();
    balancer.process.signal("TERM");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        TcpStream::connect_timeout(&balancer.listen, Duration::from_millis(200)).is_err(),
        "new connections are refused once SIGTERM arrived"
    );
    let (status, body) = in_flight.join().expect("request thread");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Response delay is 1000 ms"), "{body}");

    let exit = balancer
        .process
        .wait_exit(Duration::from_secs(5))
        .expect("switchyard exits after the grace period");
    assert!(exit.success(), "{exit:?}");
    let took = sent.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "grace 2 s + shutdown 1 s, took {took:?}"
    );
}
