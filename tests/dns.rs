//! Peers by name: switchyard resolves `host:port` and SRV entries through
//! a DNS server the test controls (on a loopback port), follows changes of
//! the records while it serves, keeps serving when DNS fails, and resolves
//! `localhost` through the system's resolver (`/etc/hosts`). Backends
//! listen on distinct loopback addresses that share one port.

mod common;

use common::{
    free_port, output_text, run_switchyard, upstream_section, wait_until, Backend, Balancer,
    Client, DnsServer, Load, Site,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// `resolver:` for `dns`, resolving every second.
fn resolver_section(dns: &DnsServer) -> String {
    format!(
        "resolver:\n  nameservers: [\"{}\"]\n  refresh: 1s\n  timeout: 500ms\n  hold_removed: 2s\n",
        dns.addr
    )
}

/// The addresses of the peers of `upstream` on the `/check` JSON page, and
/// the name each comes from.
fn peers_of(balancer: &Balancer, upstream: &str) -> Vec<(String, Option<String>)> {
    let upstream = balancer.upstream_json(upstream);
    let peers = upstream["peers"].as_array().cloned().unwrap_or_default();
    peers
        .iter()
        .map(|p| {
            let address = p["address"].as_str().unwrap_or_default().to_string();
            (address, p["name"].as_str().map(str::to_string))
        })
        .collect()
}

/// How the (first) name of `upstream` stands, on the `/check` JSON page.
fn name_status(balancer: &Balancer, upstream: &str) -> serde_json::Value {
    balancer.upstream_json(upstream)["names"][0].clone()
}

fn on(ip: [u8; 4], port: u16) -> SocketAddr {
    (ip, port).into()
}

#[test]
fn a_name_follows_its_records_under_load_and_outlives_its_dns_server() {
    let port = free_port();
    let b2 = Backend::start_on("b2", on([127, 0, 0, 2], port), 20);
    let b3 = Backend::start_on("b3", on([127, 0, 0, 3], port), 20);
    let b4 = Backend::start_on("b4", on([127, 0, 0, 4], port), 20);
    let mut dns = DnsServer::start();
    dns.set_a("pool.test", &["127.0.0.2", "127.0.0.3"]);
    let name = format!("pool.test:{port}");
    let balancer = Balancer::start_with(
        &upstream_section("backend", "round_robin", std::slice::from_ref(&name), 200),
        &resolver_section(&dns),
    );

    // Two A records: two peers, both named, both serving.
    let peers = peers_of(&balancer, "backend");
    assert_eq!(
        peers,
        [
            (b2.addr.to_string(), Some(name.clone())),
            (b3.addr.to_string(), Some(name.clone()))
        ]
    );
    let served = Client::new().data_backends(&balancer, 20);
    for backend in ["b2", "b3"] {
        assert!(
            served.iter().any(|b| b == backend),
            "{backend} got nothing: {served:?}"
        );
    }
    let text = balancer.check();
    assert!(
        text.contains(&format!("        {} ({name}) UP", b2.addr)),
        "{text}"
    );

    // Under load, a third record: it gets requests within a refresh and a
    // probe round or two.
    let load = Load::start(&balancer.url("/api/data"), 8);
    std::thread::sleep(Duration::from_millis(500));
    dns.set_a("pool.test", &["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    let added = Instant::now();
    let joined = wait_until(Duration::from_secs(10), || b4.data_requests() > 0.0);
    assert!(
        joined.is_some(),
        "the added address got no request:\n{}",
        balancer.check()
    );
    println!("added address served after {:.1?}", added.elapsed());
    assert!(added.elapsed() < Duration::from_secs(5));

    // A record removed: no new requests once its in-flight ones are done.
    dns.set_a("pool.test", &["127.0.0.3", "127.0.0.4"]);
    let gone = wait_until(Duration::from_secs(10), || {
        !peers_of(&balancer, "backend")
            .iter()
            .any(|(a, _)| *a == b2.addr.to_string())
    });
    assert!(
        gone.is_some(),
        "the removed address is still a peer:\n{}",
        balancer.check()
    );
    std::thread::sleep(Duration::from_millis(300));
    let before = b2.data_requests();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        b2.data_requests(),
        before,
        "the removed address got new requests"
    );
    let report = load.finish();
    println!(
        "under load: {} requests, {} failed; b2 {}, b3 {}, b4 {}",
        report.requests,
        report.errors,
        b2.data_requests(),
        b3.data_requests(),
        b4.data_requests()
    );
    assert_eq!(report.errors, 0, "{:?}", report.samples);
    assert!(report.requests > 100, "{report:?}");

    // SERVFAIL for longer than hold_removed (2 s): a failure, not "no such
    // name": the addresses stay.
    dns.fail("pool.test");
    std::thread::sleep(Duration::from_millis(3500));
    let status = name_status(&balancer, "backend");
    assert_eq!(status["condition"], "failing", "{status}");
    assert_eq!(status["addresses"].as_array().unwrap().len(), 2, "{status}");

    // The DNS server goes away: the known peers keep serving, the failures
    // are counted, the name keeps its addresses.
    dns.stop();
    let labels = [("upstream", "backend"), ("name", name.as_str())];
    let failed = wait_until(Duration::from_secs(10), || {
        let scrape = balancer.scrape();
        let failure = [labels[0], labels[1], ("result", "failure")];
        scrape
            .sum("switchyard_dns_resolutions_total", &failure)
            .unwrap_or(0.0)
            >= 2.0
    });
    assert!(failed.is_some(), "no failed resolution counted");
    let served = Client::new().data_backends(&balancer, 20);
    assert!(served.iter().all(|b| b == "b3" || b == "b4"), "{served:?}");
    let status = name_status(&balancer, "backend");
    assert_eq!(status["condition"], "failing", "{status}");
    assert_eq!(status["addresses"].as_array().unwrap().len(), 2, "{status}");
    assert_eq!(
        balancer.scrape().sum("switchyard_dns_addresses", &labels),
        Some(2.0)
    );
    let log = balancer.process.log();
    let warnings = log.matches("cannot resolve it").count();
    assert_eq!(warnings, 1, "a failing name is logged once:\n{log}");
}

#[test]
fn a_name_unknown_at_start_is_picked_up_and_srv_records_give_ports() {
    let port = free_port();
    let other = Backend::start_on("other", on([127, 0, 0, 1], port), 0);
    let _late = Backend::start_on("late", on([127, 0, 0, 5], port), 0);
    let (srv_port1, srv_port2) = (free_port(), free_port());
    let primary = Backend::start_on("primary", on([127, 0, 0, 6], srv_port1), 0);
    let backup = Backend::start_on("backup", on([127, 0, 0, 7], srv_port2), 0);
    let dns = DnsServer::start();
    dns.set_a("primary.test", &["127.0.0.6"]);
    dns.set_a("backup.test", &["127.0.0.7"]);
    dns.set_srv(
        "_http._tcp.app.test",
        &[
            (10, 0, srv_port1, "primary.test"),
            (20, 5, srv_port2, "backup.test"),
        ],
    );
    let late_name = format!("late.test:{port}");
    let upstreams = format!(
        "{}{}    path_prefix: /api/\n{}    path_prefix: /srv/\n",
        upstream_section("other", "round_robin", &[other.addr.to_string()], 200),
        upstream_section("late", "round_robin", std::slice::from_ref(&late_name), 200),
        upstream_section(
            "app",
            "round_robin",
            &["{ srv: _http._tcp.app.test }".to_string()],
            200
        ),
    );
    let site = Site::with_admin(&upstreams, &resolver_section(&dns), None);

    // -t warns about the name, and passes.
    let output = run_switchyard(
        &["-t".as_ref(), "-c".as_ref(), site.config_path.as_os_str()],
        Duration::from_secs(10),
    );
    let text = output_text(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "warning: upstream late: {late_name} gives no peer now (no such name)"
        )),
        "{text}"
    );

    // It starts anyway: the other upstreams serve, this one has no peer.
    let balancer = Balancer::start_site(site);
    let (status, _) = Client::new().get(&balancer.url("/metrics"));
    assert_eq!(status, 200, "the other upstream serves");
    let status = name_status(&balancer, "late");
    assert_eq!(status["name"], late_name.as_str());
    assert_eq!(status["addresses"], serde_json::json!([]));
    assert_eq!(status["condition"], "not_found", "{status}");
    let (status, _) = Client::new().get(&balancer.url("/api/data"));
    assert!(status >= 500, "no peer: {status}");

    // SRV: each target's address with the record's port; the lowest
    // priority is the primary, weight 0 counts as 1.
    let app = balancer.upstream_json("app");
    let peers: Vec<(String, bool, u64)> = app["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["address"].as_str().unwrap().to_string(),
                p["backup"].as_bool().unwrap(),
                p["weight"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        peers,
        [
            (primary.addr.to_string(), false, 1),
            (backup.addr.to_string(), true, 5)
        ]
    );
    let (status, _) = Client::new().get(&balancer.url("/srv/x"));
    assert_eq!(
        status, 404,
        "the SRV peer answers (the demo backend has no /srv/x)"
    );

    // The name appears: its peer is probed, then serves.
    dns.set_a("late.test", &["127.0.0.5"]);
    let served = wait_until(Duration::from_secs(10), || {
        Client::new().data_backends(&balancer, 1) == ["late"]
    });
    assert!(
        served.is_some(),
        "late.test never served:\n{}",
        balancer.check()
    );
    println!(
        "a name unknown at start served {:.1?} after it appeared",
        served.unwrap()
    );
    assert_eq!(name_status(&balancer, "late")["condition"], "resolved");

    // The name is gone ("no such name"): its peer stays for hold_removed
    // (2 s), then goes.
    dns.set_a("late.test", &[]);
    let vanished = Instant::now();
    let removed = wait_until(Duration::from_secs(8), || {
        peers_of(&balancer, "late").is_empty()
    });
    assert!(removed.is_some(), "{}", balancer.check());
    let held = vanished.elapsed();
    println!("a vanished name kept its peer for {held:.1?}");
    assert!(held >= Duration::from_secs(2), "removed after {held:?}");

    // A reload that adds a name resolves it before it applies it: the
    // answer counts its peer.
    let more = upstream_section(
        "more",
        "round_robin",
        &[format!("primary.test:{srv_port1}")],
        200,
    );
    let upstreams = format!("{upstreams}{more}    path_prefix: /more/\n");
    balancer.write_config(&balancer.config_path, &upstreams, &resolver_section(&dns));
    let (status, answer) = balancer.admin("POST", "/reload", "");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["added"], 1, "{answer}");
    assert_eq!(
        peers_of(&balancer, "more"),
        [(
            primary.addr.to_string(),
            Some(format!("primary.test:{srv_port1}"))
        )]
    );
}

#[test]
fn localhost_resolves_through_the_system_resolver() {
    let backend = Backend::start("local", 0);
    let name = format!("localhost:{}", backend.addr.port());
    let balancer = Balancer::start(&upstream_section(
        "backend",
        "round_robin",
        std::slice::from_ref(&name),
        200,
    ));
    assert_eq!(
        peers_of(&balancer, "backend"),
        [(backend.addr.to_string(), Some(name.clone()))],
        "prefer_ipv4: one peer, 127.0.0.1"
    );
    assert_eq!(Client::new().data_backends(&balancer, 3), ["local"; 3]);
    let scrape = balancer.scrape();
    let peer = backend.addr.to_string();
    assert!(
        scrape
            .sum(
                "switchyard_peer_up",
                &[("upstream", "backend"), ("peer", peer.as_str())]
            )
            .is_some(),
        "the peer label is ip:port"
    );
}
