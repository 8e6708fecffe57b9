//! The admin API, as an operator uses it: drain, enable, disable and
//! reweight peers of a balancer under load; what it set survives a reload
//! and a restart (the state file); bad requests get 4xx with a JSON error;
//! with a token, nothing gets in without it.

mod common;

use common::{
    count, output_text, upstream_section, wait_until, Backend, Balancer, Client, Load, Site,
};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
use switchyard::config::Config;

fn weight_path(peer: SocketAddr) -> String {
    format!("/upstreams/backend/peers/{peer}/weight")
}

/// `switchyard_peer_admin_state{peer, state}`.
fn admin_state_metric(balancer: &Balancer, peer: SocketAddr, state: &str) -> Option<f64> {
    let label = peer.to_string();
    balancer.scrape().sum(
        "switchyard_peer_admin_state",
        &[("peer", label.as_str()), ("state", state)],
    )
}

#[test]
fn operators_drain_disable_and_reweight_peers_under_load() {
    let backends: Vec<Backend> = (1..=3)
        .map(|i| Backend::start(&format!("b{i}"), 5))
        .collect();
    let (b1, b2, b3) = (&backends[0], &backends[1], &backends[2]);
    let peers: Vec<String> = backends.iter().map(|b| b.addr.to_string()).collect();
    let section = upstream_section("backend", "round_robin", &peers, 200);
    let balancer = Balancer::start_site(Site::with_admin(&section, "", None));

    // Drain b1 under load: no request fails, and once its in-flight
    // requests are done it gets no more.
    let load = Load::start(&balancer.url("/api/data"), 8);
    assert!(wait_until(Duration::from_secs(5), || b1.data_requests() > 20.0).is_some());
    let drained = balancer.peer_action(b1.addr, "drain");
    assert_eq!(drained["admin_state"], "draining", "{drained}");
    assert_eq!(drained["state"], "up", "probes go on: {drained}");
    let idle = wait_until(Duration::from_secs(5), || {
        balancer.admin_peer(b1.addr)["in_flight"] == 0
    });
    assert!(idle.is_some(), "{}", balancer.admin_peer(b1.addr));
    let at_drain = b1.data_requests();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        b1.data_requests(),
        at_drain,
        "a drained peer got new requests"
    );
    assert!(b2.data_requests() > 0.0 && b3.data_requests() > 0.0);
    assert_eq!(
        balancer.peer_state(b1.addr),
        "DOWN",
        "as lua-resty shows it"
    );
    assert_eq!(
        admin_state_metric(&balancer, b1.addr, "draining"),
        Some(1.0)
    );
    assert_eq!(admin_state_metric(&balancer, b1.addr, "active"), Some(0.0));

    // Enabled again, it takes traffic at once.
    let enabled = balancer.peer_action(b1.addr, "enable");
    assert_eq!(enabled["admin_state"], "active");
    let back = wait_until(Duration::from_secs(2), || b1.data_requests() > at_drain);
    assert!(back.is_some(), "an enabled peer got no traffic");
    let report = load.finish();
    println!(
        "drain under load: {} requests, {} failed; b1 served {at_drain} before the drain, none while drained",
        report.requests, report.errors
    );
    assert_eq!(report.errors, 0, "{:?}", report.samples);
    assert_eq!(balancer.peer_state(b1.addr), "UP");

    // Weight 1 -> 3: the next requests split 3:1:1.
    let (status, answer) = balancer.admin("PUT", &weight_path(b2.addr), r#"{"weight": 3}"#);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            answer["weight"].as_u64(),
            answer["configured_weight"].as_u64()
        ),
        (Some(3), Some(1))
    );
    let seen = Client::new().data_backends(&balancer, 400);
    let split = [count(&seen, "b1"), count(&seen, "b2"), count(&seen, "b3")];
    println!("weights 1:3:1 over 400 requests: {split:?}");
    assert!((220..=260).contains(&split[1]), "{split:?}");
    assert!(split[0] >= 60 && split[2] >= 60, "{split:?}");

    // What the API refuses, with a JSON error.
    let refused = [
        ("PUT", weight_path(b2.addr), r#"{"weight": 0}"#, 400),
        ("PUT", weight_path(b2.addr), r#"{"weight": 1001}"#, 400),
        ("PUT", weight_path(b2.addr), "three", 400),
        (
            "POST",
            "/upstreams/backend/peers/127.0.0.1:1/drain".to_string(),
            "",
            404,
        ),
        (
            "POST",
            format!("/upstreams/nothing/peers/{}/drain", b1.addr),
            "",
            404,
        ),
        ("GET", "/nothing".to_string(), "", 404),
        (
            "GET",
            format!("/upstreams/backend/peers/{}/drain", b1.addr),
            "",
            405,
        ),
    ];
    for (method, path, body, expected) in refused {
        let (status, answer) = balancer.admin(method, &path, body);
        assert_eq!(status, expected, "{method} {path} {body}: {answer}");
        assert!(answer["error"].is_string(), "{method} {path}: {answer}");
    }
    assert_eq!(balancer.admin_peer(b2.addr)["weight"], 3);

    // GET /config: the running config, defaults filled in, which reads back.
    let (status, yaml) = balancer.admin("GET", "/config", "");
    assert_eq!(status, 200);
    let yaml = yaml.as_str().expect("YAML text");
    let config = Config::parse(yaml, "GET /config").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(config.listen.first(), balancer.listen);
    assert_eq!(
        config.upstreams.0["backend"].retries.0, 2,
        "defaults are filled in"
    );

    // Disabled, b3 stays out through a reload (which changes b1's weight in
    // the file) and b2 keeps the weight set at runtime.
    assert_eq!(
        balancer.peer_action(b3.addr, "disable")["admin_state"],
        "disabled"
    );
    let peers = [
        format!("{{ addr: {}, weight: 2 }}", b1.addr),
        b2.addr.to_string(),
        b3.addr.to_string(),
    ];
    let section = upstream_section("backend", "round_robin", &peers, 200);
    balancer.write_config(&balancer.config_path, &section, "");
    let (status, answer) = balancer.admin("POST", "/reload", "");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["reloaded"], "0 peers added, 0 removed, 1 changed");
    let served_by_b3 = b3.data_requests();
    let seen = Client::new().data_backends(&balancer, 30);
    assert_eq!(count(&seen, "b3"), 0, "{seen:?}");
    assert_eq!(b3.data_requests(), served_by_b3);
    assert_eq!(balancer.admin_peer(b3.addr)["admin_state"], "disabled");
    assert_eq!(balancer.admin_peer(b2.addr)["weight"], 3);
    assert_eq!(balancer.admin_peer(b1.addr)["weight"], 2);

    // ... and through a restart: the state file.
    let site = balancer.stop();
    let state = std::fs::read_to_string(site.dir.path().join("switchyard.state")).unwrap();
    assert!(state.contains("disabled"), "{state}");
    let balancer = Balancer::start_site(site);
    assert_eq!(balancer.admin_peer(b3.addr)["admin_state"], "disabled");
    assert_eq!(balancer.admin_peer(b2.addr)["weight"], 3);
    assert_eq!(balancer.peer_state(b3.addr), "DOWN");
    let seen = Client::new().data_backends(&balancer, 30);
    assert_eq!(count(&seen, "b3"), 0, "{seen:?}");

    // A reload that changes b2's weight in the file wins over the one set
    // at runtime.
    let peers = [
        format!("{{ addr: {}, weight: 2 }}", b1.addr),
        format!("{{ addr: {}, weight: 5 }}", b2.addr),
        b3.addr.to_string(),
    ];
    let section = upstream_section("backend", "round_robin", &peers, 200);
    balancer.write_config(&balancer.config_path, &section, "");
    let (status, answer) = balancer.admin("POST", "/reload", "");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(balancer.admin_peer(b2.addr)["weight"], 5);
}

#[test]
fn the_admin_api_lets_no_one_in_without_its_token() {
    const TOKEN: &str = "7f3c1e9a-admin-token";
    let b1 = Backend::start("b1", 0);
    let section = upstream_section("backend", "round_robin", &[b1.addr.to_string()], 500);
    let balancer = Balancer::start_site(Site::with_admin(&section, "", Some(TOKEN)));
    let drain = format!("/upstreams/backend/peers/{}/drain", b1.addr);
    for token in [
        None,
        Some("wrong"),
        Some(&TOKEN[..TOKEN.len() - 1]),
        Some("7f3c1e9a-admin-tokenx"),
    ] {
        for (method, path) in [
            ("GET", "/upstreams"),
            ("POST", drain.as_str()),
            ("GET", "/nothing"),
        ] {
            let (status, answer) = balancer.admin_as(token, method, path, "");
            assert_eq!(status, 401, "{method} {path} with {token:?}: {answer}");
            assert!(answer["error"].is_string());
        }
    }
    assert_eq!(balancer.admin_peer(b1.addr)["admin_state"], "active");
    assert_eq!(
        balancer.peer_action(b1.addr, "drain")["admin_state"],
        "draining"
    );
    let log = balancer.process.log();
    assert!(log.contains("is draining (was active)"), "{log}");
    assert!(!log.contains(TOKEN), "the token is in the log:\n{log}");

    // A listener others can reach needs a token: `-t` says so.
    let exposed = balancer.dir.path().join("exposed.yaml");
    let text = std::fs::read_to_string(&balancer.config_path).unwrap();
    let admin = balancer.admin.as_ref().unwrap().listen;
    let text = text
        .replace(
            &format!("\"{admin}\""),
            &format!("\"0.0.0.0:{}\"", admin.port()),
        )
        .lines()
        .filter(|l| !l.contains("token_file"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&exposed, &text).unwrap();
    let check = |token: Option<&str>| {
        let mut command = Command::new(common::switchyard_bin());
        command.arg("-t").arg("-c").arg(&exposed);
        command.env_remove("SWITCHYARD_ADMIN_TOKEN");
        if let Some(token) = token {
            command.env("SWITCHYARD_ADMIN_TOKEN", token);
        }
        command.output().expect("run switchyard -t")
    };
    let refused = check(None);
    let message = output_text(&refused);
    assert!(!refused.status.success(), "{message}");
    assert!(
        message.contains("exposed.yaml")
            && message.contains("admin: 0.0.0.0:")
            && message.contains("no token")
            && message.contains("line "),
        "{message}"
    );
    let accepted = check(Some(TOKEN));
    assert!(accepted.status.success(), "{}", output_text(&accepted));
}
