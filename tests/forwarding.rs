//! Where a request comes from: forwarding headers are believed only from
//! trusted proxies (and then the client is the rightmost untrusted hop),
//! IPv4 clients of a dual-stack listener are IPv4, and every request a
//! peer gets names a Host.

mod common;

use common::raw_backend::{RawBackend, Received};
use common::{exchange, single_peer, status_line, Balancer, Site};
use std::net::SocketAddr;
use std::time::Duration;

fn balancer_over(peer: &RawBackend, extra: &str) -> Balancer {
    Balancer::start_with(&single_peer(peer.addr), extra)
}

/// `GET target` with extra header lines on a connection of its own to
/// `listen`; the status line.
fn get_with(listen: SocketAddr, target: &str, headers: &str) -> String {
    let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n");
    let answer = exchange(listen, request.as_bytes(), Duration::from_secs(5));
    status_line(&answer).to_string()
}

/// The last request for `target` that `peer` received.
fn last_for(peer: &RawBackend, target: &str) -> Received {
    peer.received_under(target)
        .pop()
        .unwrap_or_else(|| panic!("the peer got no {target}"))
}

#[test]
fn forwarding_headers_from_a_client_are_replaced() {
    let peer = RawBackend::start(None);
    let balancer = balancer_over(&peer, "");
    let spoofed = "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n\
                   X-Real-IP: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n\
                   X-Forwarded-Host: admin.internal\r\nForwarded: for=10.0.0.1\r\n\
                   X_Forwarded_For: 10.0.0.3\r\nTrue-Client-IP: 10.0.0.4\r\n";
    assert_eq!(
        get_with(balancer.listen, "/spoof", spoofed),
        "HTTP/1.1 200 OK"
    );
    let seen = last_for(&peer, "/spoof");
    assert_eq!(seen.header("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(seen.header("x-real-ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), None);
    assert_eq!(seen.header("forwarded"), None);
    assert_eq!(
        seen.header("x_forwarded_for"),
        None,
        "read as X-Forwarded-For by CGI"
    );
    assert_eq!(seen.header("true-client-ip"), None);
}

#[test]
fn behind_trusted_proxies_the_client_is_the_rightmost_untrusted_hop() {
    let peer = RawBackend::start(None);
    let balancer = balancer_over(
        &peer,
        "trusted_proxies: [127.0.0.0/8, 10.0.0.0/8]\n\
         deny: [{ path_prefix: /admin, allow: [198.51.100.0/24] }]\n",
    );
    let chain = "X-Forwarded-For: 203.0.113.66, 198.51.100.7\r\n\
                 X-Forwarded-For: 10.1.2.3\r\nX-Forwarded-Proto: https\r\n";
    assert_eq!(
        get_with(balancer.listen, "/chain", chain),
        "HTTP/1.1 200 OK"
    );
    let seen = last_for(&peer, "/chain");
    assert_eq!(
        seen.header("x-forwarded-for").as_deref(),
        Some("203.0.113.66, 198.51.100.7, 10.1.2.3, 127.0.0.1"),
        "both headers kept, in order, and extended"
    );
    assert_eq!(seen.header("x-real-ip").as_deref(), Some("198.51.100.7"));
    assert_eq!(seen.header("x-forwarded-proto").as_deref(), Some("https"));

    // Deny rules judge the client the trusted proxies vouch for.
    let from = |hops: &str| format!("X-Forwarded-For: {hops}\r\n");
    let listen = balancer.listen;
    assert_eq!(
        get_with(listen, "/admin", &from("198.51.100.7")),
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        get_with(listen, "/admin", &from("198.51.100.7, 203.0.113.9")),
        "HTTP/1.1 403 Forbidden",
        "an allowed address put in front by the client proves nothing"
    );
    // status_allow defaults to loopback and the private networks.
    assert_eq!(
        get_with(listen, "/check", &from("203.0.113.9")),
        "HTTP/1.1 403 Forbidden"
    );
    assert_eq!(
        get_with(listen, "/check", &from("192.168.1.20")),
        "HTTP/1.1 200 OK"
    );
}

#[test]
fn ipv4_clients_of_a_dual_stack_listener_are_ipv4() {
    let peer = RawBackend::start(None);
    let site = Site::listening_on(
        "::".parse().unwrap(),
        &single_peer(peer.addr),
        "deny: [{ path_prefix: /admin, allow: [127.0.0.0/8] }]\n",
    );
    let balancer = Balancer::start_site(site);
    let v4: SocketAddr = ([127, 0, 0, 1], balancer.listen.port()).into();
    assert_eq!(get_with(v4, "/admin", ""), "HTTP/1.1 200 OK");
    assert_eq!(get_with(v4, "/check", ""), "HTTP/1.1 200 OK");
    let seen = last_for(&peer, "/admin");
    assert_eq!(seen.header("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    let v6: SocketAddr = ([0, 0, 0, 0, 0, 0, 0, 1], balancer.listen.port()).into();
    assert_eq!(get_with(v6, "/admin", ""), "HTTP/1.1 403 Forbidden");
}

#[test]
fn every_request_to_a_peer_names_a_host() {
    let peer = RawBackend::start(None);
    let balancer = balancer_over(&peer, "");
    let answer = exchange(
        balancer.listen,
        b"GET /no-host HTTP/1.1\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(status_line(&answer), "HTTP/1.1 400 Bad Request");
    let answer = exchange(
        balancer.listen,
        b"GET /old HTTP/1.0\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(status_line(&answer).ends_with(" 200 OK"), "{answer}");
    let seen = last_for(&peer, "/old");
    assert_eq!(seen.header("host"), Some(peer.addr.to_string()));
    assert!(peer.received_under("/no-host").is_empty());
}
