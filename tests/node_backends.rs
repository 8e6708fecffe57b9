//! Backends as they are in production: Node closes idle keep-alive
//! connections after a few seconds, clients pipeline, WebSockets stay open
//! for long quiet stretches.

mod common;

use common::raw_backend::RawBackend;
use common::{exchange, single_peer, status_line, Balancer, Client};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn a_pooled_connection_the_peer_closed_costs_no_request() {
    // Like Node's keepAliveTimeout (5 s by default), 100 ms here; the
    // balancer keeps idle connections for 4 s, so requests about 100 ms
    // apart keep meeting connections that the peer is closing.
    let peer = RawBackend::start(Some(Duration::from_millis(100)));
    let balancer = Balancer::start(&single_peer(peer.addr));
    let client = Client::new();
    let mut failures = Vec::new();
    for i in 0..80u64 {
        std::thread::sleep(Duration::from_millis(94 + i % 13));
        let (status, body) = client.get(&balancer.url("/api/data"));
        if status != 200 {
            failures.push(format!("{status}: {body}"));
        }
    }
    println!(
        "80 requests ~100 ms apart to a peer closing idle connections after 100 ms: {} failed, {} connections",
        failures.len(),
        peer.connections()
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert!(
        peer.connections() > 10,
        "the peer did close idle connections"
    );
    // Not the peer's fault: no error counted, still UP.
    let scrape = balancer.scrape();
    assert_eq!(
        scrape.sum("switchyard_upstream_errors_total", &[]),
        Some(0.0)
    );
    assert_eq!(balancer.peer_state(peer.addr), "UP");
}

#[test]
fn idle_peer_connections_close_after_keepalive_timeout() {
    let peer = RawBackend::start(Some(Duration::from_millis(400)));
    let mut section = single_peer(peer.addr);
    section.push_str("    keepalive_timeout: 100ms\n");
    let balancer = Balancer::start(&section);
    let client = Client::new();
    for _ in 0..3 {
        assert_eq!(client.get(&balancer.url("/api/data")).0, 200);
    }
    let before = peer.connections();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(250));
        let answer = exchange(
            balancer.listen,
            b"POST /api/data HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
            Duration::from_secs(5),
        );
        assert_eq!(status_line(&answer), "HTTP/1.1 200 OK");
    }
    // Each POST after 250 ms idle found the pooled connection closed by
    // switchyard (100 ms) before the peer would close it (400 ms).
    assert_eq!(peer.connections() - before, 5);
}

#[test]
fn pipelined_requests_are_all_answered_in_order() {
    let peer = RawBackend::start(None);
    let balancer = Balancer::start(&single_peer(peer.addr));
    let mut stream = TcpStream::connect(balancer.listen).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    stream
        .write_all(
            b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\n\
              POST /p2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
              GET /p3 HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .unwrap();
    let answers = read_answers(&mut stream, 3);
    assert_eq!(answers.matches("HTTP/1.1 200 OK").count(), 3, "{answers}");
    assert!(!answers.contains("Connection: close"), "{answers}");
    // The connection is still good.
    stream
        .write_all(b"GET /p4 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_answers(&mut stream, 1).matches(" 200 OK").count(), 1);
    let order: Vec<String> = peer
        .received()
        .into_iter()
        .map(|r| r.target)
        .filter(|t| t.starts_with("/p"))
        .collect();
    assert_eq!(order, ["/p1", "/p2", "/p3", "/p4"]);
    assert_eq!(peer.received_under("/p2")[0].body, b"hello");
}

/// Read until `n` answers (each ending in the peer's `ok` body) came, or
/// 5 s pass.
fn read_answers(stream: &mut TcpStream, n: usize) -> String {
    let mut answers = String::new();
    let mut buffer = [0u8; 4096];
    let started = Instant::now();
    while answers.matches("\r\n\r\nok").count() < n && started.elapsed() < Duration::from_secs(5) {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => answers.push_str(&String::from_utf8_lossy(&buffer[..read])),
            Err(_) => {}
        }
    }
    answers
}

/// Open a WebSocket through `balancer`; the stream after the 101.
fn open_tunnel(balancer: &Balancer) -> TcpStream {
    let mut stream = TcpStream::connect(balancer.listen).unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "closed during the handshake"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    stream
}

/// Send `message` through the tunnel; whether it came back.
fn echoes(stream: &mut TcpStream, message: &[u8]) -> bool {
    if stream.write_all(message).is_err() {
        return false;
    }
    let mut back = vec![0u8; message.len()];
    stream.read_exact(&mut back).is_ok() && back == message
}

#[test]
fn an_upgraded_connection_idles_by_the_tunnel_timeout() {
    let peer = RawBackend::start(None);
    let mut section = single_peer(peer.addr);
    section.push_str("    timeouts: { read: 500ms, write: 500ms }\n");
    let limits = "limits: { header_timeout: 500ms, body_timeout: 500ms }\n";
    let balancer = Balancer::start_with(&section, limits);
    let mut tunnel = open_tunnel(&balancer);
    assert!(echoes(&mut tunnel, b"ping"));
    // Quiet for longer than every request timeout: the tunnel's own
    // timeout (1 h by default) applies.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(echoes(&mut tunnel, b"still there"));

    let mut short = section.clone();
    short = short.replace("write: 500ms }", "write: 500ms, tunnel: 1s }");
    let balancer = Balancer::start_with(&short, limits);
    let mut tunnel = open_tunnel(&balancer);
    assert!(echoes(&mut tunnel, b"ping"));
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        !echoes(&mut tunnel, b"gone"),
        "the idle tunnel outlived timeouts.tunnel"
    );
}
