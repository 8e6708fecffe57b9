//! Running switchyard as a service: daemon mode, hot upgrade under load with
//! zero failed requests, a failed upgrade that changes nothing, and a
//! daemon that cannot start saying why.

mod common;

use common::{
    alive, output_text, run_switchyard, single_peer, upstream_section, wait_until, Backend, Daemon,
    Load, Site,
};

use std::net::TcpListener;
use std::time::{Duration, Instant};

fn peers_of(backends: &[Backend]) -> Vec<String> {
    backends.iter().map(|b| b.addr.to_string()).collect()
}

fn start_daemon(site: Site) -> Daemon {
    let started = Instant::now();
    let (output, daemon) = Daemon::start(site);
    let daemon = daemon.unwrap_or_else(|| panic!("-d failed:\n{}", output_text(&output)));
    // `-d` returns only once the proxy accepts: no waiting needed.
    let (status, body) = common::get(&daemon.url("/api/data"));
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(10));
    daemon
}

#[test]
fn daemon_detaches_writes_its_pid_and_logs_with_timestamps() {
    let backend = Backend::start("b1", 0);
    let daemon = start_daemon(Site::new(&single_peer(backend.addr), ""));
    let pid = daemon.current_pid();
    assert!(alive(pid));
    let log = daemon.log();
    let ready = log
        .lines()
        .find(|l| l.contains(&format!("switchyard is ready (pid {pid})")))
        .unwrap_or_else(|| panic!("no readiness line in the error log:\n{log}"));
    assert!(ready.starts_with("[20"), "no timestamp: {ready}");
    assert!(
        log.contains(&format!("peer {} is UP", backend.addr)),
        "{log}"
    );

    // SIGTERM: drains and exits (grace 2 s + shutdown 1 s).
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    assert!(
        wait_until(Duration::from_secs(6), || !alive(pid)).is_some(),
        "daemon still running after SIGTERM"
    );
}

#[test]
fn hot_upgrade_under_load_drops_no_request() {
    let mut backends: Vec<Backend> = ["b1", "b2", "b3"]
        .iter()
        .map(|name| Backend::start(name, 10))
        .collect();
    let site = Site::new(
        &upstream_section("backend", "round_robin", &peers_of(&backends), 200),
        "",
    );
    let daemon = start_daemon(site);
    let old_pid = daemon.current_pid();

    // The new config: b1 weighs 3, and a fourth peer joins.
    backends.push(Backend::start("b4", 10));
    let mut peers = peers_of(&backends);
    peers[0] = format!("{{ addr: {}, weight: 3 }}", backends[0].addr);
    let new_config = daemon.dir.path().join("new.yaml");
    daemon.write_config(
        &new_config,
        &upstream_section("backend", "round_robin", &peers, 200),
        "",
    );

    let load = Load::start(&daemon.url("/api/data"), 8);
    std::thread::sleep(Duration::from_millis(1500));
    let upgrade = run_switchyard(
        &["upgrade".as_ref(), "-c".as_ref(), new_config.as_os_str()],
        Duration::from_secs(60),
    );
    let upgrade_text = output_text(&upgrade);
    assert!(upgrade.status.success(), "upgrade failed:\n{upgrade_text}");
    // Keep the load on the new process for a moment.
    std::thread::sleep(Duration::from_millis(1000));
    let report = load.finish();
    println!(
        "upgrade under load: {} requests, {} errors\n{upgrade_text}",
        report.requests, report.errors
    );
    assert_eq!(report.errors, 0, "failed requests: {:?}", report.samples);
    assert!(
        report.requests > 500,
        "too little load: {}",
        report.requests
    );

    let new_pid = daemon.current_pid();
    assert_ne!(new_pid, old_pid);
    assert!(alive(new_pid), "the new process is not running");
    assert!(!alive(old_pid), "the old process is still running");
    assert!(
        upgrade_text.contains(&format!("pid {old_pid} -> {new_pid}")),
        "{upgrade_text}"
    );

    let json = daemon.check_json();
    let peers = json["upstreams"][0]["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 4, "{json}");
    assert_eq!(peers[0]["weight"], 3);
    assert_eq!(peers[3]["address"], backends[3].addr.to_string());
    let b4 = backends[3].addr.to_string();
    let scrape = daemon.scrape();
    assert_eq!(
        scrape.sum("switchyard_peer_up", &[("peer", b4.as_str())]),
        Some(1.0)
    );
    let seen = common::Client::new().data_backends(&daemon, 12);
    assert_eq!(common::count(&seen, "b1"), 6, "weight 3 of 6: {seen:?}");
}

#[test]
fn a_failed_upgrade_leaves_the_old_process_serving() {
    let backend = Backend::start("b1", 0);
    let daemon = start_daemon(Site::new(&single_peer(backend.addr), ""));
    let pid = daemon.current_pid();

    let bad = daemon.dir.path().join("bad.yaml");
    daemon.write_config(&bad, "  backend:\n    peers: [not-an-address]\n", "");
    let upgrade = run_switchyard(
        &["upgrade".as_ref(), "-c".as_ref(), bad.as_os_str()],
        Duration::from_secs(30),
    );
    let text = output_text(&upgrade);
    assert!(!upgrade.status.success(), "{text}");
    assert!(
        text.contains("upstreams.backend.peers[0]: `not-an-address`"),
        "{text}"
    );
    assert!(
        text.contains("the running switchyard was not touched"),
        "{text}"
    );

    assert_eq!(daemon.current_pid(), pid);
    assert!(alive(pid));
    assert_eq!(common::get(&daemon.url("/api/data")).0, 200);
}

#[test]
fn a_daemon_that_cannot_start_says_why() {
    let backend = Backend::start("b1", 0);
    let site = Site::new(&single_peer(backend.addr), "");
    let squatter = TcpListener::bind(site.listen).expect("take the port");
    let started = Instant::now();
    let (output, daemon) = Daemon::start(site);
    let text = output_text(&output);
    assert!(daemon.is_none(), "started on a taken port:\n{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        text.contains(&format!(
            "listen: cannot listen on {}: Address already in use",
            squatter.local_addr().unwrap()
        )),
        "{text}"
    );

    // A bad config fails before detaching, too.
    let broken = Site::new("  backend:\n    peers: []\n", "");
    let (output, daemon) = Daemon::start(broken);
    assert!(daemon.is_none());
    assert!(output_text(&output).contains("an upstream needs at least one peer"));
}

#[test]
fn upgrade_signals_nothing_but_the_switchyard_of_its_config() {
    let backend = Backend::start("b1", 0);
    let section = single_peer(backend.addr);
    let upgrade_with = |config: &std::path::Path| {
        let upgrade = run_switchyard(
            &["upgrade".as_ref(), "-c".as_ref(), config.as_os_str()],
            Duration::from_secs(30),
        );
        (upgrade.status.success(), output_text(&upgrade))
    };

    // The pid file names a process that is not switchyard (a stale pid
    // file whose number was taken by something else).
    let site = Site::new(&section, "");
    let mut bystander = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("start a bystander");
    std::fs::write(site.pid_file(), bystander.id().to_string()).unwrap();
    let (upgraded, text) = upgrade_with(&site.config_path);
    assert!(!upgraded, "{text}");
    assert!(
        text.contains("not switchyard") && text.contains("nothing was sent"),
        "{text}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "the bystander got a signal"
    );
    let _ = bystander.kill();
    let _ = bystander.wait();

    // It names a switchyard, but one serving another configuration.
    let other = start_daemon(Site::new(&section, ""));
    let other_pid = other.current_pid();
    std::fs::write(site.pid_file(), other_pid.to_string()).unwrap();
    let (upgraded, text) = upgrade_with(&site.config_path);
    assert!(!upgraded, "{text}");
    assert!(
        text.contains(&format!(
            "does not hold this configuration's listen socket {}",
            site.listen
        )),
        "{text}"
    );
    assert!(alive(other_pid));
    assert_eq!(common::get(&other.url("/api/data")).0, 200);
}
