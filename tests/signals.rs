//! Stopping: SIGINT (Ctrl-C) stops at once; SIGTERM lets in-flight requests
//! finish within the grace period and refuses new connections.

mod common;

use common::{single_peer, Backend, Balancer, Daemon, Site};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn sigint_stops_at_once() {
    let backend = Backend::start("b1", 0);
    let mut balancer = Balancer::start(&single_peer(backend.addr));
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
    let mut balancer = Balancer::start(&single_peer(backend.addr));
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

#[test]
fn sighup_reloads_and_sigusr1_leave_the_balancer_serving() {
    let backend = Backend::start("b1", 0);
    let balancer = Balancer::start(&single_peer(backend.addr));
    for signal in ["HUP", "USR1", "HUP"] {
        balancer.process.signal(signal);
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            common::alive(balancer.process.pid()),
            "SIG{signal} killed it"
        );
        assert_eq!(common::get(&balancer.url("/api/data")).0, 200);
    }
    let log = balancer.process.log();
    assert!(
        log.contains("reloaded") && log.contains("0 peers added, 0 removed, 0 changed"),
        "{log}"
    );
    assert!(log.contains("SIGUSR1: logging to stderr"), "{log}");
}

#[test]
fn sigusr1_reopens_the_error_log_after_a_rotation() {
    let backend = Backend::start("b1", 0);
    let (output, daemon) = Daemon::start(Site::new(&single_peer(backend.addr), ""));
    let daemon = daemon.unwrap_or_else(|| panic!("{}", common::output_text(&output)));
    let pid = daemon.current_pid();
    // What logrotate does: move the file away, then signal.
    let rotated = daemon.dir.path().join("error.log.1");
    std::fs::rename(daemon.error_log(), &rotated).unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-USR1", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let reopened = common::wait_until(Duration::from_secs(5), || {
        daemon.log().contains("SIGUSR1: reopened")
    });
    assert!(reopened.is_some(), "no new log file");
    assert!(common::alive(pid));
    // New lines go to the new file, the old ones stay in the rotated one.
    assert_eq!(common::get(&daemon.url("/check")).0, 200);
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(old.contains("switchyard is ready"), "{old}");
    assert!(!old.contains("SIGUSR1: reopened"), "{old}");
}
