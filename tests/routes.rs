//! Routes: the first route whose `match` holds serves a request (host,
//! path prefix, exact path or regex, methods, headers, query), by sending
//! it to an upstream (or a weighted split), redirecting it or answering
//! it; what the peer sees (`strip_prefix`, request headers) and what the
//! client gets (response headers); 404 when no route takes a request; the
//! `route` label of the request metrics; a reload that changes the routes
//! under load. One balancer serves most of it.

mod common;

use common::raw_backend::RawBackend;
use common::{exchange, status_line, Backend, Balancer, Client, Load, Scrape, Site};
use std::time::Duration;

/// The routes under test, over upstreams `echo` (a recording backend), `b1`
/// and `b2` (demo backends); `split` is the weight of b1 against b2.
fn routes(split: u32) -> String {
    format!(
        r#"routes:
  - name: canary
    match:
      host: api.example.com
      path_prefix: /v2/
      methods: [GET]
      headers: {{ x-canary: "1" }}
    upstream: echo
    strip_prefix: /v2
    request_headers:  {{ set: {{ x-env: prod }}, add: {{ x-tag: a }}, remove: [x-debug] }}
    response_headers: {{ set: {{ strict-transport-security: "max-age=31536000" }}, remove: [x-powered-by] }}
  - name: wildcard
    match: {{ host: "*.example.org" }}
    respond: {{ status: 200, body: wildcard }}
  - name: beta
    match: {{ query: {{ beta: "1" }} }}
    respond: {{ status: 200, body: beta }}
  - name: versioned
    match: {{ path_regex: "^/v[0-9]+/" }}
    respond: {{ status: 200, body: regex }}
  - match: {{ path_prefix: /old/ }}
    redirect: {{ to: "https://new.example.com/", status: 301 }}
  - match: {{ path_prefix: /internal/, case_sensitive: false }}
    respond: {{ status: 403, body: forbidden }}
  - name: split
    match: {{ path_prefix: /api/ }}
    split:
      - {{ upstream: b1, weight: {split} }}
      - {{ upstream: b2, weight: {} }}
"#,
        100 - split
    )
}

fn upstreams(echo: &RawBackend, b1: &Backend, b2: &Backend) -> String {
    let mut text = String::new();
    for (name, addr) in [("echo", echo.addr), ("b1", b1.addr), ("b2", b2.addr)] {
        text.push_str(&format!(
            "  {name}:\n    peers: [\"{addr}\"]\n    health_check: {{ path: /api/status, interval: 200ms }}\n"
        ));
    }
    text
}

/// `GET path` with `Host: host` and `headers` (lines), on a connection of
/// its own; the whole answer.
fn get(site: &Site, method: &str, path: &str, host: &str, headers: &str) -> String {
    let raw =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n");
    exchange(site.listen, raw.as_bytes(), Duration::from_secs(5))
}

fn body(answer: &str) -> &str {
    answer.split("\r\n\r\n").nth(1).unwrap_or_default()
}

#[test]
fn the_first_matching_route_serves_each_request() {
    let echo = RawBackend::start(None);
    let b1 = Backend::start("b1", 0);
    let b2 = Backend::start("b2", 0);
    let balancer = Balancer::start_site(Site::with_admin(
        &upstreams(&echo, &b1, &b2),
        &routes(90),
        None,
    ));
    let canary = "x-canary: 1\r\nx-debug: yes\r\nx-tag: z\r\n";

    // Host (case and port ignored), prefix, method and header: the canary
    // route. The peer sees the stripped path and the edited headers.
    let answer = get(
        &balancer,
        "GET",
        "/v2/users?id=7",
        "API.Example.com:8080",
        canary,
    );
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{answer}"
    );
    let seen = echo.received();
    let request = seen.last().expect("the echo backend got the request");
    assert_eq!(request.target, "/users?id=7");
    assert_eq!(request.header("x-env").as_deref(), Some("prod"));
    assert_eq!(
        request.header("x-tag").as_deref(),
        Some("z, a"),
        "added to the client's"
    );
    assert_eq!(request.header("x-debug"), None);
    let answer = get(&balancer, "GET", "/v2/powered", "api.example.com", canary);
    assert!(
        !answer.to_ascii_lowercase().contains("x-powered-by"),
        "{answer}"
    );
    assert_eq!(echo.received().last().unwrap().target, "/powered");

    // One part off and the next route that matches serves: the regex.
    for (method, host, headers) in [
        ("GET", "www.example.com", canary),
        ("POST", "api.example.com", canary),
        ("GET", "api.example.com", ""),
    ] {
        let answer = get(&balancer, method, "/v2/users", host, headers);
        assert_eq!(
            body(&answer),
            "regex",
            "{method} {host} {headers:?}: {answer}"
        );
    }
    // Wildcard host, query, redirect, respond, 404.
    assert_eq!(
        body(&get(&balancer, "GET", "/", "a.b.example.org", "")),
        "wildcard"
    );
    assert_eq!(
        body(&get(&balancer, "GET", "/", "example.org", "")).trim_end(),
        "404 Not Found: no route serves this request"
    );
    assert_eq!(
        body(&get(&balancer, "GET", "/q?a=2&beta=1", "x", "")),
        "beta"
    );
    assert_eq!(
        body(&get(&balancer, "GET", "/q?beta=10", "x", "")).trim_end(),
        "404 Not Found: no route serves this request"
    );
    let answer = get(&balancer, "GET", "/old/page", "x", "");
    assert_eq!(
        status_line(&answer),
        "HTTP/1.1 301 Moved Permanently",
        "{answer}"
    );
    assert!(
        answer.contains("location: https://new.example.com/")
            || answer.contains("Location: https://new.example.com/"),
        "{answer}"
    );
    // The canonical path decides: no spelling steps around the 403.
    for path in [
        "/internal/x",
        "/INTERNAL/x",
        "//internal/x",
        "/a/../internal/x",
        "/%69nternal/x",
    ] {
        let answer = get(&balancer, "GET", path, "x", "");
        assert_eq!(
            status_line(&answer),
            "HTTP/1.1 403 Forbidden",
            "{path}: {answer}"
        );
        assert_eq!(body(&answer), "forbidden");
    }

    // The admin API lists the routes in order, with their names.
    let (status, listed) = balancer.admin("GET", "/routes", "");
    assert_eq!(status, 200, "{listed}");
    let names: Vec<&str> = listed["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "canary",
            "wildcard",
            "beta",
            "versioned",
            "route-5",
            "route-6",
            "split"
        ]
    );

    // A 90/10 split over 2,000 requests.
    let served = Client::new().data_backends(&balancer, 2000);
    let to_b1 = served.iter().filter(|b| *b == "b1").count();
    let to_b2 = served.iter().filter(|b| *b == "b2").count();
    println!("split 90/10 over 2000 requests: b1 {to_b1}, b2 {to_b2}");
    assert_eq!(to_b1 + to_b2, 2000, "{served:?}");
    assert!((1740..=1860).contains(&to_b1), "b1 got {to_b1} of 2000");

    // Each request is counted under the route that took it, by upstream
    // and peer; routes that answer themselves count none.
    let (p1, p2) = (b1.addr.to_string(), b2.addr.to_string());
    let split_total = |s: &Scrape| s.sum("switchyard_requests_total", &[("route", "split")]);
    let scrape = balancer.scrape_when(|s| split_total(s) == Some(2000.0));
    let counted = |upstream: &str, peer: &str, status: &str| {
        let labels = [
            ("route", "split"),
            ("upstream", upstream),
            ("peer", peer),
            ("status", status),
        ];
        scrape.sum("switchyard_requests_total", &labels)
    };
    assert_eq!(counted("b1", &p1, "200"), Some(to_b1 as f64));
    assert_eq!(counted("b2", &p2, "200"), Some(to_b2 as f64));
    let timed = [("route", "split"), ("upstream", "b1")];
    assert_eq!(
        scrape.sum("switchyard_request_duration_seconds_count", &timed),
        Some(to_b1 as f64)
    );
    let canary = [("route", "canary"), ("upstream", "echo"), ("status", "200")];
    assert_eq!(scrape.sum("switchyard_requests_total", &canary), Some(2.0));
    for answered_here in ["wildcard", "beta", "versioned", "route-5", "route-6"] {
        let route = [("route", answered_here)];
        assert_eq!(scrape.sum("switchyard_requests_total", &route), None);
    }

    // With b2's peer out of rotation, the split's share for b2 is a 503
    // that reached no peer: peer="none", under the route.
    let b2_peer = format!("/upstreams/b2/peers/{}/", b2.addr);
    let (status, answer) = balancer.admin("POST", &format!("{b2_peer}disable"), "");
    assert_eq!(status, 200, "{answer}");
    let served = Client::new().data_backends(&balancer, 100);
    let refused = served.iter().filter(|b| *b == "<503>").count();
    assert!(refused > 0, "{served:?}");
    let (status, answer) = balancer.admin("POST", &format!("{b2_peer}enable"), "");
    assert_eq!(status, 200, "{answer}");
    let scrape = balancer.scrape_when(|s| split_total(s) == Some(2100.0));
    let without_peer = [
        ("route", "split"),
        ("upstream", "b2"),
        ("peer", "none"),
        ("status", "503"),
    ];
    assert_eq!(
        scrape.sum("switchyard_requests_total", &without_peer),
        Some(refused as f64)
    );

    // A reload that changes the split, under load: 0 failed requests.
    let load = Load::start(&balancer.url("/api/data"), 8);
    std::thread::sleep(Duration::from_millis(500));
    balancer.write_config(
        &balancer.config_path,
        &upstreams(&echo, &b1, &b2),
        &routes(50),
    );
    let (status, answer) = balancer.admin("POST", "/reload", "");
    assert_eq!(status, 200, "{answer}");
    std::thread::sleep(Duration::from_millis(500));
    let report = load.finish();
    println!(
        "reload of the routes under load: {} requests, {} failed",
        report.requests, report.errors
    );
    assert_eq!(report.errors, 0, "{:?}", report.samples);
    let served = Client::new().data_backends(&balancer, 200);
    let to_b1 = served.iter().filter(|b| *b == "b1").count();
    assert!(
        (90..=110).contains(&to_b1),
        "after the reload b1 got {to_b1} of 200"
    );
    // The route kept its series through the reload: nothing was lost.
    let expected = (2100 + report.requests + 200) as f64;
    let scrape = balancer.scrape_when(|s| split_total(s) == Some(expected));
    assert_eq!(split_total(&scrape), Some(expected));
}
