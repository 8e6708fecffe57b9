//! The request path as rules see it and as peers get it: no spelling of a
//! denied path gets through, the peer receives a minimally normalized path,
//! and what cannot be made safe is refused with 400.

mod common;

use common::raw_backend::RawBackend;
use common::{exchange, single_peer, status_line, Balancer, Load};
use std::time::Duration;

const DENY: &str = "deny: [{ path_prefix: /api/switch, allow: [10.0.0.0/8] }]\n";

fn balancer_over(peer: &RawBackend, extra: &str) -> Balancer {
    Balancer::start_with(&single_peer(peer.addr), extra)
}

/// Each of `targets` gets `status` (a status line) from `balancer`.
fn assert_each_gets(balancer: &Balancer, targets: &[&str], status: &str) {
    for target in targets {
        let answer = get_raw(balancer, target, "x");
        assert_eq!(status_line(&answer), status, "{target}");
    }
}

/// `GET target` with `Host: host` on a connection of its own; the answer.
fn get_raw(balancer: &Balancer, target: &str, host: &str) -> String {
    let request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    exchange(balancer.listen, request.as_bytes(), Duration::from_secs(5))
}

#[test]
fn no_spelling_of_a_denied_path_reaches_the_peer() {
    let peer = RawBackend::start(None);
    let balancer = balancer_over(&peer, DENY);
    let load = Load::start(&balancer.url("/api/data"), 1);
    assert_each_gets(
        &balancer,
        &[
            // The list: nginx refuses all but the case change.
            "/api/switch",
            "//api/switch",
            "/api//switch",
            "/api/./switch",
            "/./api/switch",
            "/x/../api/switch",
            "/api/%73witch",
            "/%61pi/switch",
            "/api%2fswitch",
            "http://x//api/switch",
            "/API/switch",
            // And more.
            "/Api/SWITCH/on",
            "/api/switch;jsessionid=1",
            "/api/;x/switch",
            "/api/%2e/switch",
            "/api/x/%2E%2E/switch",
            "/%2fapi/switch",
            "/api/switch?next=/",
        ],
        "HTTP/1.1 403 Forbidden",
    );
    // Dot segments hidden from a first reading, which backends resolve
    // differently (`/api/switch/..;/` is `/api/` to Tomcat, under
    // `/api/switch/` to Go): refused outright.
    assert_each_gets(
        &balancer,
        &[
            "/api/switch/..;/",
            "/api/switch/%2F..",
            "/api/switch/..%3B",
            "/x/..;/api/switch",
            "/api/x%2F..%2Fswitch",
        ],
        "HTTP/1.1 400 Bad Request",
    );
    // Two spaces: Pingora rewrites the target to `%20/api/switch`.
    let answer = exchange(
        balancer.listen,
        b"GET  /api/switch HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(status_line(&answer), "HTTP/1.1 400 Bad Request");

    let report = load.finish();
    assert_eq!(report.errors, 0, "{:?}", report.samples);
    let leaked: Vec<String> = peer
        .received()
        .into_iter()
        .map(|r| r.target)
        .filter(|t| t.to_ascii_lowercase().contains("switch"))
        .collect();
    assert!(leaked.is_empty(), "reached the peer: {leaked:?}");
}

#[test]
fn the_peer_gets_a_minimally_normalized_path() {
    let peer = RawBackend::start(None);
    let balancer = balancer_over(&peer, "");
    for (target, host, forwarded) in [
        ("/a/./b/../c%41?x=%2e", "x", "/a/cA?x=%2e"),
        ("/%7Euser/%41%42", "x", "/~user/AB"),
        // Empty segments and encoded slashes mean something: kept.
        ("/group%2Fproject//raw", "x", "/group%2Fproject//raw"),
        ("/plain/path.json?q=1", "x", "/plain/path.json?q=1"),
        // Absolute form: the peer gets origin form, Host from the target.
        ("http://example.com/a/../b?q", "example.com", "/b?q"),
    ] {
        let answer = get_raw(&balancer, target, host);
        assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{target}");
        let seen = peer
            .received()
            .into_iter()
            .rfind(|r| r.target != "/api/status")
            .expect("the peer got the request");
        assert_eq!(seen.target, forwarded, "{target}");
        assert_eq!(seen.header("host").as_deref(), Some(host));
    }
}

#[test]
fn what_cannot_be_made_safe_is_refused() {
    let peer = RawBackend::start(None);
    let balancer = balancer_over(&peer, "limits: { max_header_bytes: 4096 }\n");
    assert_each_gets(
        &balancer,
        &[
            "/api\\data",
            "/api%5cdata",
            "/api%5Cdata",
            "/api/data%00",
            "/api/data%0d%0aSet-Cookie:%20x=1",
            "/api/%zz",
            "/..",
            "/a/../../etc/passwd",
            "/..%2fetc/passwd",
        ],
        "HTTP/1.1 400 Bad Request",
    );
    let long = format!("/{}", "a".repeat(5000));
    let answer = get_raw(&balancer, &long, "x");
    assert_eq!(status_line(&answer), "HTTP/1.1 414 URI Too Long");
    let probes_only = peer.received().iter().all(|r| r.target == "/api/status");
    assert!(probes_only, "a refused request reached the peer");

    let strict = balancer_over(&peer, "escaped_slashes: reject\n");
    let answer = get_raw(&strict, "/group%2Fproject", "x");
    assert_eq!(status_line(&answer), "HTTP/1.1 400 Bad Request");
    assert!(answer.contains("encoded slash"), "{answer}");
    let answer = get_raw(&strict, "/group/project", "x");
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK");
}
