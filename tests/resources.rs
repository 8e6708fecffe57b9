//! The balancer's own resources: running out of file descriptors is never
//! blamed on the peers, the open-file limit is raised as far as allowed,
//! and memory goes back to the system after a burst.

mod common;

use common::raw_backend::RawBackend;
use common::{switchyard_bin, upstream_section, wait_until, Balancer, Process, Site};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

/// Start a balancer for `site` with the open-file limit at `soft`/`hard`.
fn start_limited(site: Site, soft: u64, hard: u64) -> Balancer {
    let mut command = Command::new(switchyard_bin());
    command
        .arg("-c")
        .arg(&site.config_path)
        .env("RUST_LOG", "info");
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the
    // child before exec.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let log = site.dir.path().join("switchyard.log");
    let balancer = Balancer {
        process: Process::spawn(&mut command, log),
        site,
    };
    let up = wait_until(Duration::from_secs(15), || {
        TcpStream::connect(balancer.listen).is_ok()
    });
    assert!(up.is_some(), "did not start:\n{}", balancer.process.log());
    balancer
}

/// Open `n` keep-alive connections that each send one request; they stay
/// open until dropped.
fn crowd(balancer: &Balancer, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| TcpStream::connect(balancer.listen).ok())
        .map(|mut stream| {
            let _ = stream.write_all(b"GET /api/data HTTP/1.1\r\nHost: x\r\n\r\n");
            stream
        })
        .collect()
}

/// How many of `streams` got a `200` within two seconds (all told).
fn answered(streams: &mut [TcpStream]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut buffer = [0u8; 512];
    let mut count = 0;
    for stream in streams.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = stream.set_nonblocking(true);
        } else {
            let _ = stream.set_read_timeout(Some(left));
        }
        if stream
            .read(&mut buffer)
            .is_ok_and(|n| buffer[..n].starts_with(b"HTTP/1.1 200"))
        {
            count += 1;
        }
    }
    count
}

fn three_peers() -> (Vec<RawBackend>, String) {
    let peers: Vec<RawBackend> = (0..3).map(|_| RawBackend::start(None)).collect();
    let addrs: Vec<String> = peers.iter().map(|p| p.addr.to_string()).collect();
    let section = upstream_section("backend", "round_robin", &addrs, 300);
    (peers, section)
}

#[test]
fn running_out_of_file_descriptors_takes_no_peer_down() {
    let (peers, section) = three_peers();
    let balancer = start_limited(Site::new(&section, ""), 256, 256);
    let log = balancer.process.log();
    assert!(
        log.contains("may need up to"),
        "no open-file warning:\n{log}"
    );

    // 400 clients against 256 descriptors, held for several probe rounds.
    let mut clients = crowd(&balancer, 400);
    let served = answered(&mut clients);
    std::thread::sleep(Duration::from_millis(1500));
    println!("400 clients, 256 file descriptors: {served} served while full");
    drop(clients);

    let recovered = wait_until(Duration::from_secs(5), || {
        common::try_get(&balancer.url("/api/data")).is_ok_and(|(s, _)| s == 200)
    });
    assert!(
        recovered.is_some(),
        "not serving again:\n{}",
        balancer.process.log()
    );
    for peer in &peers {
        assert_eq!(balancer.peer_state(peer.addr), "UP");
    }
    let scrape = balancer.scrape();
    assert_eq!(
        scrape.sum("switchyard_peer_state_changes_total", &[]),
        Some(0.0),
        "{}",
        balancer.process.log()
    );
    assert_eq!(
        scrape.sum("switchyard_health_checks_total", &[("result", "failure")]),
        Some(0.0)
    );
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let (_peers, section) = three_peers();
    let site = Site::new(&section, "limits: { max_connections: 1000 }\n");
    let balancer = start_limited(site, 256, 4096);
    let mut clients = crowd(&balancer, 400);
    assert_eq!(answered(&mut clients), 400);
    let log = balancer.process.log();
    assert!(!log.contains("may need up to"), "{log}");
}

/// The resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn memory_goes_back_after_a_burst_of_connections() {
    let (_peers, section) = three_peers();
    let balancer = Balancer::start(&section);
    let pid = balancer.process.pid();
    let baseline = rss_kib(pid);
    let mut clients = crowd(&balancer, 3000);
    answered(&mut clients);
    let peak = rss_kib(pid);
    drop(clients);
    let started = Instant::now();
    let settled = wait_until(Duration::from_secs(6), || {
        rss_kib(pid) < baseline + (peak - baseline) / 4
    });
    println!(
        "RSS {} KiB idle, {} KiB with 3000 connections, {} KiB after {:?}",
        baseline,
        peak,
        rss_kib(pid),
        started.elapsed()
    );
    assert!(peak > baseline + 20_000, "the burst did not show");
    assert!(settled.is_some(), "memory stayed at {} KiB", rss_kib(pid));
}
