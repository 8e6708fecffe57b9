//! `/check`: the lua-resty-upstream-healthcheck text format, byte for byte,
//! the JSON view with the full health record, and `switchyard healthcheck`.

mod common;

use common::{upstream_section, Backend, Balancer};
use std::net::SocketAddr;
use std::time::Duration;

#[test]
fn text_page_matches_lua_resty_upstream_healthcheck_exactly() {
    let b1 = Backend::start("b1", 0);
    let b2 = Backend::start("b2", 0);
    let b3 = Backend::start("b3", 0);
    let spare = Backend::start("spare", 0);
    let backend = upstream_section(
        "backend",
        "round_robin",
        &[
            b1.addr.to_string(),
            b2.addr.to_string(),
            format!("{{ addr: {}, backup: true }}", spare.addr),
        ],
        100,
    );
    let mut images = upstream_section("images", "random", &[b3.addr.to_string()], 100);
    images.push_str("    path_prefix: /img\n");
    let balancer = Balancer::start(&format!("{backend}{images}"));

    b2.switch();
    balancer.wait_for_state(b2.addr, "DOWN");

    let expected = format!(
        "Upstream backend\n    Primary Peers\n        {} UP\n        {} DOWN\n    Backup Peers\n        {} UP\n\nUpstream images\n    Primary Peers\n        {} UP\n    Backup Peers\n",
        b1.addr, b2.addr, spare.addr, b3.addr
    );
    assert_eq!(balancer.check(), expected);

    // The status page is answered by the balancer itself, never routed.
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let response = agent.get(&balancer.url("/check")).call().unwrap();
    let content_type = response.headers().get("content-type").unwrap();
    assert_eq!(content_type, "text/plain; charset=utf-8");

    // ?format=prometheus: lua-resty's prometheus_status_page(), byte for
    // byte: two series per peer, three per upstream.
    let (status, page) = common::get(&balancer.url("/check?format=prometheus"));
    assert_eq!(status, 200);
    let mut expected = String::from(
        "# HELP nginx_upstream_status_info The running status of nginx upstream\n\
         # TYPE nginx_upstream_status_info gauge\n",
    );
    let peer = |upstream: &str, addr: SocketAddr, up: bool, role: &str| {
        format!(
            "nginx_upstream_status_info{{name=\"{upstream}\",endpoint=\"{addr}\",status=\"UP\",role=\"{role}\"}} {}\n\
             nginx_upstream_status_info{{name=\"{upstream}\",endpoint=\"{addr}\",status=\"DOWN\",role=\"{role}\"}} {}\n",
            u8::from(up),
            u8::from(!up)
        )
    };
    let upstream = |name: &str| {
        format!(
            "nginx_upstream_status_info{{name=\"{name}\",status=\"UP\"}} 1\n\
             nginx_upstream_status_info{{name=\"{name}\",status=\"DOWN\"}} 0\n\
             nginx_upstream_status_info{{name=\"{name}\",status=\"UNKNOWN\"}} 0\n"
        )
    };
    expected += &peer("backend", b1.addr, true, "PRIMARY");
    expected += &peer("backend", b2.addr, false, "PRIMARY");
    expected += &peer("backend", spare.addr, true, "BACKUP");
    expected += &upstream("backend");
    expected += &peer("images", b3.addr, true, "PRIMARY");
    expected += &upstream("images");
    assert_eq!(page, expected);
    // ... which a Prometheus parser reads: one UP series valued 1 or 0
    // per peer and per upstream.
    let scrape = common::Scrape::parse(&page);
    for (addr, up) in [
        (b1.addr, 1.0),
        (b2.addr, 0.0),
        (spare.addr, 1.0),
        (b3.addr, 1.0),
    ] {
        let endpoint = addr.to_string();
        let labels = [("endpoint", endpoint.as_str()), ("status", "UP")];
        assert_eq!(
            scrape.sum("nginx_upstream_status_info", &labels),
            Some(up),
            "{addr}"
        );
    }
    // Per upstream, its own UP series (1) and those of its UP peers.
    for (name, up) in [("backend", 1.0 + 2.0), ("images", 1.0 + 1.0)] {
        let labels = [("name", name), ("status", "UP")];
        assert_eq!(
            scrape.sum("nginx_upstream_status_info", &labels),
            Some(up),
            "{name}"
        );
    }
}

#[test]
fn json_page_carries_the_health_record() {
    let b1 = Backend::start("b1", 0);
    let b2 = Backend::start("b2", 0);
    let peers = vec![
        b1.addr.to_string(),
        format!("{{ addr: {}, weight: 3 }}", b2.addr),
    ];
    let balancer = Balancer::start(&upstream_section("backend", "round_robin", &peers, 100));
    for _ in 0..8 {
        assert_eq!(common::get(&balancer.url("/api/data")).0, 200);
    }
    b1.switch();
    balancer.wait_for_state(b1.addr, "DOWN");

    let json = balancer.check_json();
    let upstream = &json["upstreams"][0];
    assert_eq!(upstream["name"], "backend");
    let down = &upstream["peers"][0];
    let up = &upstream["peers"][1];
    assert_eq!(down["address"], b1.addr.to_string());
    assert_eq!(down["state"], "down");
    assert_eq!(down["weight"], 1);
    assert_eq!(down["backup"], false);
    assert_eq!(down["consecutive_successes"], 0);
    assert!(down["consecutive_failures"].as_u64().unwrap() >= 2);
    assert_eq!(down["last_error"], "HTTP 500");
    assert!(down["last_state_change"].is_string());
    assert_eq!(
        down["requests"], 2,
        "b1 served 2 of the 8 requests (weights 1:3)"
    );

    assert_eq!(up["state"], "up");
    assert_eq!(up["weight"], 3);
    assert_eq!(up["requests"], 6);
    assert_eq!(up["last_error"], serde_json::Value::Null);
    assert!(up["consecutive_successes"].as_u64().unwrap() >= 1);
    assert!(up["last_probe"].as_str().unwrap().ends_with('Z'));
    assert!(up["last_probe_latency_ms"].as_f64().unwrap() > 0.0);

    // Accept: application/json asks for the same page.
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let mut response = agent
        .get(&balancer.url("/check"))
        .header("Accept", "application/json")
        .call()
        .unwrap();
    let body = response.body_mut().read_to_string().unwrap();
    let again: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(again["upstreams"][0]["peers"][0]["state"], "down");
}

#[test]
fn the_healthcheck_command_asks_the_status_page_of_the_running_balancer() {
    let b1 = Backend::start("b1", 0);
    let balancer = Balancer::start(&upstream_section(
        "backend",
        "round_robin",
        &[b1.addr.to_string()],
        500,
    ));
    let config = balancer.site.config_path.clone();
    let healthcheck = || {
        common::run_switchyard(
            &["healthcheck".as_ref(), "-c".as_ref(), config.as_os_str()],
            Duration::from_secs(10),
        )
    };
    let healthy = healthcheck();
    assert!(
        healthy.status.success(),
        "{}",
        common::output_text(&healthy)
    );
    let said = common::output_text(&healthy);
    let url = balancer.url("/check");
    assert!(said.contains(&format!("healthy: GET {url}: 200")), "{said}");

    // Its peer DOWN: the balancer still serves (its /check says why).
    b1.switch();
    balancer.wait_for_state(b1.addr, "DOWN");
    assert!(healthcheck().status.success());

    let site = balancer.stop();
    let gone = healthcheck();
    assert!(!gone.status.success());
    let said = common::output_text(&gone);
    assert!(
        said.contains("not healthy: GET") && said.contains(&site.listen.to_string()),
        "{said}"
    );
}

#[test]
fn unrouted_paths_get_a_404_not_a_crash() {
    let b1 = Backend::start("b1", 0);
    let mut upstream = upstream_section("api", "round_robin", &[b1.addr.to_string()], 500);
    upstream.push_str("    path_prefix: /api\n");
    let balancer = Balancer::start(&upstream);
    let (status, body) = common::get(&balancer.url("/elsewhere"));
    assert_eq!(status, 404);
    assert_eq!(body, "404 Not Found: no route serves this request\n");
    assert_eq!(common::get(&balancer.url("/api/data")).0, 200);
}

/// Run headless Chromium with `args` on `url` (at most 60 s); its stdout.
fn chromium(args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium (Debian's chromium) is installed by scripts/test.sh");
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("chromium {args:?} did not finish");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_browser_gets_the_html_page_with_every_peer_and_its_state() {
    let b1 = Backend::start("b1", 0);
    let b2 = Backend::start("b2", 0);
    let spare = Backend::start("spare", 0);
    let peers = vec![
        b1.addr.to_string(),
        format!("{{ addr: {}, weight: 2 }}", b2.addr),
        format!("{{ addr: {}, backup: true }}", spare.addr),
    ];
    let balancer = Balancer::start(&upstream_section("backend", "round_robin", &peers, 100));
    for _ in 0..6 {
        assert_eq!(common::get(&balancer.url("/api/data")).0, 200);
    }
    b2.switch();
    balancer.wait_for_state(b2.addr, "DOWN");

    // Chromium asks with a browser's Accept header and renders the page.
    let dom = chromium(&["--dump-dom"], &balancer.url("/check"));
    assert!(
        dom.contains("switchyard: peer status"),
        "not the HTML page:\n{dom}"
    );
    assert!(dom.contains("Upstream backend"), "{dom}");
    assert!(dom.contains("(2 of 3 peers up)"), "{dom}");
    let row = |peer: std::net::SocketAddr| {
        let start = dom
            .find(&format!("data-peer=\"{peer}\""))
            .unwrap_or_else(|| panic!("no row for {peer}:\n{dom}"));
        let end = start + dom[start..].find("</tr>").unwrap();
        dom[start..end].to_string()
    };
    let down = row(b2.addr);
    assert!(down.contains("data-state=\"down\""), "{down}");
    assert!(down.contains("<span class=\"state\">DOWN</span>"), "{down}");
    assert!(down.contains("HTTP 500"), "last error shown: {down}");
    assert!(
        down.contains("<td class=\"num\">2</td>"),
        "weight 2: {down}"
    );
    let up = row(b1.addr);
    assert!(up.contains("data-state=\"up\""), "{up}");
    assert!(up.contains("<span class=\"state\">UP</span>"), "{up}");
    // Weights 1:2 over 6 requests: b1 served 2.
    assert!(
        up.ends_with("<td class=\"num\">2</td>"),
        "requests served: {up}"
    );
    assert!(row(spare.addr).contains("<td>backup</td>"));
    assert!(
        dom.contains("http-equiv=\"refresh\""),
        "the page refreshes itself"
    );
    assert!(
        !dom.contains("http://") && !dom.contains("https://"),
        "no external assets"
    );

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let screenshot = dir.join("status-page.png");
    let _ = std::fs::remove_file(&screenshot);
    chromium(
        &[
            &format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,480",
        ],
        &balancer.url("/check"),
    );
    let size = std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "no screenshot at {}", screenshot.display());
    println!("screenshot: {}", screenshot.display());
}
