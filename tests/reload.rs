//! Changing the configuration of a running balancer: SIGHUP re-reads its
//! file and applies it live, under load, without a failed request; a peer
//! that stays keeps its state and series; a broken file or a change that
//! needs a restart changes nothing.

mod common;

use common::{
    output_text, run_switchyard, upstream_section, wait_until, Backend, Balancer, Load, Site,
};
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

/// `switchyard reload -c <config>`.
fn reload_command(config: &Path) -> std::process::Output {
    let args: [&OsStr; 3] = ["reload".as_ref(), "-c".as_ref(), config.as_os_str()];
    run_switchyard(&args, Duration::from_secs(40))
}

fn peers_of(backends: &[&Backend]) -> Vec<String> {
    backends.iter().map(|b| b.addr.to_string()).collect()
}

/// Send SIGHUP and wait until the log says `expected` one more time.
fn reload_and_wait(balancer: &Balancer, expected: &str) {
    let before = balancer.process.log().matches(expected).count();
    balancer.process.signal("HUP");
    let logged = wait_until(Duration::from_secs(5), || {
        balancer.process.log().matches(expected).count() > before
    });
    assert!(
        logged.is_some(),
        "no `{expected}` after SIGHUP:\n{}",
        balancer.process.log()
    );
}

#[test]
fn a_reload_under_load_swaps_peers_without_a_failed_request() {
    let b1 = Backend::start("b1", 20);
    let b2 = Backend::start("b2", 20);
    let slow = Backend::start("slow", 300);
    let b4 = Backend::start("b4", 20);
    // b4 starts switched off: a new peer gets no request before a probe
    // has passed.
    assert_eq!(b4.switch(), 500);
    let balancer = Balancer::start(&upstream_section(
        "backend",
        "round_robin",
        &peers_of(&[&b1, &b2, &slow]),
        200,
    ));
    let pid = balancer.process.pid();
    let load = Load::start(&balancer.url("/api/data"), 8);
    std::thread::sleep(Duration::from_millis(800));
    let b1_label = b1.addr.to_string();
    let probes_of_b1 = |scrape: &common::Scrape| {
        scrape
            .sum(
                "switchyard_health_checks_total",
                &[("peer", b1_label.as_str())],
            )
            .unwrap_or(0.0)
    };
    let before = probes_of_b1(&balancer.scrape());

    // The new file: the slow peer goes, b4 comes.
    balancer.write_config(
        &balancer.config_path,
        &upstream_section("backend", "round_robin", &peers_of(&[&b1, &b2, &b4]), 200),
        "",
    );
    reload_and_wait(&balancer, "1 peer added, 1 removed, 0 changed");
    assert_eq!(balancer.peer_state(b4.addr), "DOWN", "{}", balancer.check());
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        b4.data_requests(),
        0.0,
        "a peer that never passed a probe got traffic"
    );
    // Switched on, b4 passes its probe and takes its share.
    assert_eq!(b4.switch(), 200);
    balancer.wait_for_state(b4.addr, "UP");
    std::thread::sleep(Duration::from_millis(800));
    let report = load.finish();
    println!(
        "reload under load: {} requests, {} failed; b4 served {}",
        report.requests,
        report.errors,
        b4.data_requests()
    );
    assert_eq!(report.errors, 0, "{:?}", report.samples);
    assert!(b4.data_requests() > 0.0);

    assert_eq!(balancer.process.pid(), pid);
    assert!(common::alive(pid));
    let page = balancer.check();
    assert!(!page.contains(&slow.addr.to_string()), "{page}");
    let scrape = balancer.scrape_when(|s| {
        s.sum("switchyard_peer_up", &[("peer", &slow.addr.to_string())])
            .is_none()
    });
    assert_eq!(
        scrape.sum("switchyard_peer_up", &[("peer", &slow.addr.to_string())]),
        None,
        "the removed peer's series are gone"
    );
    // The peer that stayed never went DOWN, and its probe count went on.
    assert_eq!(
        scrape.sum(
            "switchyard_peer_state_changes_total",
            &[("peer", b1_label.as_str())]
        ),
        Some(0.0)
    );
    assert!(
        probes_of_b1(&scrape) > before,
        "b1's probe series restarted"
    );
    assert_eq!(
        scrape.sum("switchyard_config_reloads_total", &[("result", "success")]),
        Some(1.0)
    );
}

#[test]
fn a_reload_that_cannot_apply_changes_nothing() {
    let b1 = Backend::start("b1", 0);
    let section = upstream_section("backend", "round_robin", &peers_of(&[&b1]), 500);
    let balancer = Balancer::start(&section);

    // A broken file.
    std::fs::write(
        &balancer.config_path,
        "upstreams:\n  backend:\n    peers: [not-an-address]\n",
    )
    .unwrap();
    reload_and_wait(&balancer, "reload refused");
    let log = balancer.process.log();
    assert!(
        log.contains("upstreams.backend.peers[0]: `not-an-address`") && log.contains("line 3"),
        "{log}"
    );
    assert_eq!(common::get(&balancer.url("/api/data")).0, 200);

    // A change only a restart can make.
    let mut moved = balancer.site.listen;
    moved.set_port(common::free_port());
    let text = std::fs::read_to_string(&balancer.config_path).unwrap();
    balancer.write_config(&balancer.config_path, &section, "");
    let config = std::fs::read_to_string(&balancer.config_path)
        .unwrap()
        .replace(&balancer.listen.to_string(), &moved.to_string());
    assert_ne!(config, text);
    std::fs::write(&balancer.config_path, config).unwrap();
    reload_and_wait(
        &balancer,
        "listen changed: restart or run 'switchyard upgrade' to apply it",
    );
    assert_eq!(common::get(&balancer.url("/api/data")).0, 200);
    assert_eq!(
        balancer
            .scrape()
            .sum("switchyard_config_reloads_total", &[("result", "failure")]),
        Some(2.0)
    );

    // Without an admin API, `switchyard reload` sends SIGHUP and reads the
    // outcome off the reload counters.
    let output = reload_command(&balancer.config_path);
    let text = output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("refused the reload"), "{text}");
    balancer.write_config(&balancer.config_path, &section, "");
    let output = reload_command(&balancer.config_path);
    let text = output_text(&output);
    assert!(output.status.success(), "{text}");
    let pid = balancer.process.pid();
    assert!(
        text.contains(&format!("switchyard: reloaded: pid {pid} applied the file")),
        "{text}"
    );
}

#[test]
fn switchyard_reload_checks_the_file_and_prints_the_outcome() {
    let b1 = Backend::start("b1", 0);
    let b2 = Backend::start("b2", 0);
    let one = upstream_section("backend", "round_robin", &peers_of(&[&b1]), 200);
    let balancer = Balancer::start_site(Site::with_admin(&one, "", None));
    let path = &balancer.config_path;

    let two = upstream_section("backend", "round_robin", &peers_of(&[&b1, &b2]), 200);
    balancer.write_config(path, &two, "");
    let output = reload_command(path);
    let text = output_text(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("switchyard: reloaded: 1 peer added, 0 removed, 0 changed"),
        "{text}"
    );
    balancer.wait_for_state(b2.addr, "UP");

    // A broken file: the command says what is wrong and where, and the
    // process is not even asked.
    std::fs::write(
        path,
        "upstreams:\n  backend:\n    peers: [127.0.0.1:99999]\n",
    )
    .unwrap();
    let output = reload_command(path);
    let text = output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("switchyard.yaml: upstreams.backend.peers[0]") && text.contains("line 3"),
        "{text}"
    );
    assert!(
        text.contains("the running switchyard was not touched"),
        "{text}"
    );
    let scrape = balancer.scrape();
    assert_eq!(
        scrape.sum("switchyard_config_reloads_total", &[("result", "failure")]),
        Some(0.0)
    );
    assert_eq!(
        scrape.sum("switchyard_config_reloads_total", &[("result", "success")]),
        Some(1.0)
    );
    assert_eq!(common::get(&balancer.url("/api/data")).0, 200);

    // Another file than the one the process runs.
    let other = balancer.dir.path().join("other.yaml");
    balancer.write_config(&other, &two, "");
    let output = reload_command(&other);
    let text = output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains(&format!("it runs {}", path.display())),
        "{text}"
    );

    // A change that needs a restart: the running process's own words.
    balancer.write_config(path, &two, "");
    let moved = std::fs::read_to_string(path).unwrap().replace(
        &balancer.metrics.to_string(),
        &format!("127.0.0.1:{}", common::free_port()),
    );
    std::fs::write(path, moved).unwrap();
    let output = reload_command(path);
    let text = output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("metrics changed: restart or run 'switchyard upgrade' to apply it"),
        "{text}"
    );
    assert_eq!(balancer.peer_state(b2.addr), "UP");
}
