//! Hooks: the built-in `api_key` (401 without a known key, keys re-read
//! on reload) and `rate_limit` (429 with `Retry-After` at the configured
//! rate; buckets kept across a reload that leaves their settings alone),
//! config errors for hooks, and a balancer built on the library with a hook
//! of its own (`examples/custom_hook.rs`).

mod common;

use common::raw_backend::RawBackend;
use common::{
    example_bin, exchange, output_text, run_switchyard, status_line, Backend, Balancer, Client,
    Scrape, Site,
};
use std::path::Path;
use std::time::{Duration, Instant};

fn echo_upstream(echo: &RawBackend) -> String {
    format!(
        "  echo:\n    peers: [\"{}\"]\n    health_check: {{ path: /api/status, interval: 200ms }}\n",
        echo.addr
    )
}

/// Hooks and routes over the upstream `echo`; `slow_burst` is the burst of
/// the `slow` limiter (changing it changes its settings).
fn hooked_routes(keys: &Path, slow_burst: u32) -> String {
    format!(
        r#"hooks:
  partner_keys: {{ type: api_key, keys_file: "{}", header: x-api-key }}
  fast: {{ type: rate_limit, rate: 20/s, burst: 5, key: client_ip }}
  slow: {{ type: rate_limit, rate: 1/m, burst: {slow_burst}, key: "header:x-user" }}
routes:
  - name: partners
    match: {{ path_prefix: /partners/ }}
    upstream: echo
    hooks: [partner_keys]
  - name: fast
    match: {{ path_prefix: /fast/ }}
    upstream: echo
    hooks: [fast]
  - name: slow
    match: {{ path_prefix: /slow/ }}
    upstream: echo
    hooks: [slow]
  - upstream: echo
"#,
        keys.display()
    )
}

/// `GET path` with `headers` (lines) on a connection of its own.
fn get(site: &Site, path: &str, headers: &str) -> String {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n");
    exchange(site.listen, raw.as_bytes(), Duration::from_secs(5))
}

/// The value of header `name` in a raw answer.
fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    answer.split("\r\n\r\n").next()?.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn api_keys_and_rate_limits_guard_their_routes() {
    let echo = RawBackend::start(None);
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = keys_dir.path().join("keys.txt");
    std::fs::write(&keys, "# partners\nkey-one\nkey-two\n").unwrap();
    let balancer = Balancer::start_site(Site::with_admin(
        &echo_upstream(&echo),
        &hooked_routes(&keys, 2),
        None,
    ));

    // api_key: 401 without a key or with an unknown one; the peer sees none
    // of those.
    let twice = "x-api-key: key-one\r\nx-api-key: someone-else\r\n";
    for headers in [
        "",
        "x-api-key: key-three\r\n",
        "x-api-key: key-on\r\n",
        twice,
    ] {
        let answer = get(&balancer, "/partners/a", headers);
        assert_eq!(
            status_line(&answer),
            "HTTP/1.1 401 Unauthorized",
            "{answer}"
        );
        assert_eq!(header(&answer, "www-authenticate"), Some("ApiKey"));
    }
    let proxied = || {
        let received = echo.received();
        received
            .iter()
            .filter(|r| r.target != "/api/status")
            .count()
    };
    assert_eq!(proxied(), 0, "{:?}", echo.received());
    let answer = get(&balancer, "/partners/a", "x-api-key: key-two\r\n");
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    assert_eq!(proxied(), 1);
    // Routes without the hook do not ask.
    assert_eq!(
        status_line(&get(&balancer, "/other", "")),
        "HTTP/1.1 200 OK"
    );

    // rate_limit at 20/s with a burst of 5, from one client as fast as it
    // can for 2 s: 5 + 20 per second pass, the rest get 429.
    let client = Client::new();
    let start = Instant::now();
    let (mut passed, mut limited) = (0u32, 0u32);
    while start.elapsed() < Duration::from_secs(2) {
        match client.get(&balancer.url("/fast/x")).0 {
            200 => passed += 1,
            429 => limited += 1,
            other => panic!("status {other}"),
        }
    }
    let expected = 5.0 + 20.0 * start.elapsed().as_secs_f64();
    println!("rate_limit 20/s burst 5 over 2 s: {passed} passed (expected {expected:.1}), {limited} limited");
    assert!(
        (f64::from(passed) - expected).abs() <= expected * 0.1,
        "{passed} passed, expected {expected:.1} +- 10 %"
    );
    assert!(limited > 100, "{limited} limited");
    let answer = get(&balancer, "/fast/x", "");
    if status_line(&answer) == "HTTP/1.1 429 Too Many Requests" {
        assert_eq!(header(&answer, "retry-after"), Some("1"), "{answer}");
    }

    // A bucket per header value: `slow` allows 2 a minute per user.
    for _ in 0..2 {
        let answer = get(&balancer, "/slow/x", "x-user: ann\r\n");
        assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    }
    let answer = get(&balancer, "/slow/x", "x-user: ann\r\n");
    assert_eq!(
        status_line(&answer),
        "HTTP/1.1 429 Too Many Requests",
        "{answer}"
    );
    let wait: u64 = header(&answer, "retry-after").unwrap().parse().unwrap();
    assert!((25..=60).contains(&wait), "Retry-After: {wait}");
    let answer = get(&balancer, "/slow/x", "x-user: bob\r\n");
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");

    // A reload: the keys file is read again; `slow`, unchanged, keeps its
    // buckets (ann is still limited).
    std::fs::write(&keys, "key-three\n").unwrap();
    let (status, answer) = balancer.admin("POST", "/reload", "");
    assert_eq!(status, 200, "{answer}");
    let answer = get(&balancer, "/partners/a", "x-api-key: key-two\r\n");
    assert_eq!(
        status_line(&answer),
        "HTTP/1.1 401 Unauthorized",
        "{answer}"
    );
    let answer = get(&balancer, "/partners/a", "x-api-key: key-three\r\n");
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    let answer = get(&balancer, "/slow/x", "x-user: ann\r\n");
    assert_eq!(
        status_line(&answer),
        "HTTP/1.1 429 Too Many Requests",
        "a reload reset an unchanged limiter: {answer}"
    );

    // Changed settings make a new instance, with fresh buckets.
    balancer.write_config(
        &balancer.config_path,
        &echo_upstream(&echo),
        &hooked_routes(&keys, 3),
    );
    let (status, answer) = balancer.admin("POST", "/reload", "");
    assert_eq!(status, 200, "{answer}");
    let answer = get(&balancer, "/slow/x", "x-user: ann\r\n");
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");

    // A keys file that cannot be read refuses the reload; the running
    // configuration stays.
    std::fs::remove_file(&keys).unwrap();
    let (status, answer) = balancer.admin("POST", "/reload", "");
    assert_eq!(status, 400, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    let text = std::fs::read_to_string(&balancer.config_path).unwrap();
    let line = 1 + text
        .lines()
        .position(|l| l.starts_with("  partner_keys:"))
        .unwrap();
    assert!(
        error.contains("hooks.partner_keys.keys_file: cannot read")
            && error.ends_with(&format!(" at line {line}")),
        "{error}"
    );
    let answer = get(&balancer, "/partners/a", "x-api-key: key-three\r\n");
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
}

#[test]
fn hook_errors_name_the_file_the_key_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hooks.yaml");
    let upstreams = "upstreams:\n  a:\n    peers: [127.0.0.1:1]\n";
    let check = |text: &str| {
        std::fs::write(&path, format!("{text}{upstreams}")).unwrap();
        let output = run_switchyard(
            &["-t".as_ref(), "-c".as_ref(), path.as_os_str()],
            Duration::from_secs(10),
        );
        (output.status.success(), output_text(&output))
    };
    let file = path.display().to_string();
    let cases = [
        (
            "hooks:\n  k: { type: api_keys, keys_file: /x }\n",
            format!("{file}: hooks.k.type: no hook type `api_keys` in this binary (it has: api_key, rate_limit) at line 2"),
        ),
        (
            "hooks:\n  r:\n    type: rate_limit\n    rate: fast\n",
            format!("{file}: hooks.r.rate: `fast` is not a rate (`100/s`, `600/m`) at line 2"),
        ),
        (
            "hooks:\n  k: { type: api_key, keys_file: /nonexistent/keys }\n",
            format!("{file}: hooks.k.keys_file: cannot read /nonexistent/keys"),
        ),
        (
            "hooks:\n  r: { type: rate_limit, rate: 1/s, burst: 0 }\n",
            format!("{file}: hooks.r.burst: "),
        ),
        (
            "hooks:\n  r: { type: rate_limit, rate: 1/s }\nroutes:\n  - upstream: a\n    hooks: [r, r]\n",
            format!("{file}: routes[0].hooks[1]: `r` is named twice (it would run twice) at line 4"),
        ),
        (
            "hooks:\n  r: { type: rate_limit, rate: 1/s }\nroutes:\n  - upstream: a\n    hooks: [q]\n",
            format!("{file}: routes[0].hooks: no hook `q` (hooks: r) at line 4"),
        ),
    ];
    for (text, expected) in cases {
        let (ok, output) = check(text);
        assert!(!ok && output.contains(&expected), "{text}\n{output}");
        assert!(output.contains("test failed"), "{output}");
    }
    let (ok, output) = check(
        "hooks:\n  r: { type: rate_limit, rate: 1/s }\nroutes:\n  - upstream: a\n    hooks: [r]\n",
    );
    assert!(ok, "{output}");
    assert!(
        output.contains("hook types: api_key, rate_limit"),
        "{output}"
    );
}

#[test]
fn a_balancer_built_on_the_library_runs_its_own_hook() {
    let blue = Backend::start("blue", 0);
    let green = Backend::start("green", 0);
    let mut upstreams = String::new();
    for (name, backend) in [("blue", &blue), ("green", &green)] {
        upstreams.push_str(&format!(
            "  {name}:\n    peers: [\"{}\"]\n    health_check: {{ path: /api/status, interval: 200ms }}\n",
            backend.addr
        ));
    }
    let routes = "hooks:\n  tenants: { type: tenant, upstreams: { acme: blue, globex: green, ghost: gone } }\nroutes:\n  - upstream: blue\n    hooks: [tenants]\n";
    let program = example_bin("custom_hook");
    let site = Site::with_admin(&upstreams, routes, None);

    // Its -t knows its own hook type besides the built-in ones.
    let output = std::process::Command::new(&program)
        .args(["-t", "-c"])
        .arg(&site.config_path)
        .output()
        .unwrap();
    let text = output_text(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("hook types: api_key, rate_limit, tenant"),
        "{text}"
    );

    let balancer = Balancer::start_program(&program, site);
    for (tenant, expected) in [("acme", "blue"), ("globex", "green")] {
        for _ in 0..3 {
            let answer = get(&balancer, "/api/data", &format!("x-tenant: {tenant}\r\n"));
            assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
            assert!(answer.contains(expected), "{tenant}: {answer}");
        }
    }
    for headers in ["", "x-tenant: initech\r\n"] {
        let answer = get(&balancer, "/api/data", headers);
        assert_eq!(status_line(&answer), "HTTP/1.1 403 Forbidden", "{answer}");
        assert!(answer.ends_with("unknown tenant\n"), "{answer}");
    }
    let answer = get(&balancer, "/api/data", "x-tenant: ghost\r\n");
    assert_eq!(status_line(&answer), "HTTP/1.1 502 Bad Gateway", "{answer}");
    // The route counts what its hook sent elsewhere under its own name,
    // by the upstream the request went to; the hook's answers count nowhere.
    let route = |s: &Scrape, upstream: &str| {
        let labels = [("route", "route-1"), ("upstream", upstream)];
        s.sum("switchyard_requests_total", &labels)
    };
    let total = |s: &Scrape| s.sum("switchyard_requests_total", &[]);
    let scrape = balancer.scrape_when(|s| total(s) == Some(6.0));
    assert_eq!(route(&scrape, "blue"), Some(3.0));
    assert_eq!(route(&scrape, "green"), Some(3.0));
    assert_eq!(total(&scrape), Some(6.0));
    // Everything else is switchyard's: the status page, the admin API.
    assert!(balancer.check().contains("UP"), "{}", balancer.check());
    let (status, _) = balancer.admin("GET", "/routes", "");
    assert_eq!(status, 200);
}
