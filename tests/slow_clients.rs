//! A slow client is the client's problem: a stalled body gets 408 and
//! counts against no peer, every request header on a keep-alive connection
//! has its deadline, and the request budget runs from the end of the body
//! to the response header, however a peer trickles it.

mod common;

use common::raw_backend::RawBackend;
use common::{exchange, single_peer, status_line, upstream_section, Balancer, Load};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Send `head` and `body_start`, then nothing; the answer and when it came.
fn stall(listen: SocketAddr, head: &str, body_start: &[u8]) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(listen).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(8)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body_start).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_client_that_stalls_its_body_takes_no_peer_down() {
    let peers: Vec<RawBackend> = (0..3).map(|_| RawBackend::start(None)).collect();
    let addrs: Vec<String> = peers.iter().map(|p| p.addr.to_string()).collect();
    let mut section = upstream_section("backend", "round_robin", &addrs, 500);
    section.push_str("    timeouts: { read: 1s }\n");
    let balancer = Balancer::start_with(
        &section,
        "limits: { body_timeout: 1s, buffer_body_bytes: 64 }\n",
    );
    let load = Load::start(&balancer.url("/api/data"), 2);

    let head = |framing: &str| format!("POST /api/data HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n");
    let stalls: Vec<_> = (0..12)
        .map(|i| {
            let listen = balancer.listen;
            // Read before a peer is chosen; streamed (larger than
            // buffer_body_bytes); chunked.
            let (head, start): (String, &[u8]) = match i % 3 {
                0 => (head("Content-Length: 60"), b"0123456789"),
                1 => (head("Content-Length: 1000"), b"0123456789"),
                _ => (head("Transfer-Encoding: chunked"), b"5\r\nhello\r\n"),
            };
            std::thread::spawn(move || stall(listen, &head, start))
        })
        .collect();
    for stalled in stalls {
        let (answer, took) = stalled.join().expect("stalling client");
        assert_eq!(
            status_line(&answer),
            "HTTP/1.1 408 Request Timeout",
            "{answer}"
        );
        assert!(took < Duration::from_secs(4), "408 after {took:?}");
    }

    let report = load.finish();
    println!(
        "well-behaved clients beside 12 stalling ones: {} requests, {} errors, slowest {:?}",
        report.requests, report.errors, report.max_latency
    );
    assert_eq!(report.errors, 0, "{:?}", report.samples);
    for peer in &peers {
        assert_eq!(balancer.peer_state(peer.addr), "UP");
    }
    let scrape = balancer.scrape();
    assert_eq!(
        scrape.sum("switchyard_upstream_errors_total", &[]),
        Some(0.0)
    );
    assert_eq!(
        scrape.sum("switchyard_peer_state_changes_total", &[]),
        Some(0.0)
    );
    // A body read before any peer was chosen never reached one.
    let small_bodies = peers
        .iter()
        .flat_map(|p| p.received_under("/api/data"))
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(small_bodies, 0);
}

#[test]
fn every_request_header_on_a_connection_has_its_deadline() {
    let peer = RawBackend::start(None);
    let balancer =
        Balancer::start_with(&single_peer(peer.addr), "limits: { header_timeout: 1s }\n");
    let mut stream = TcpStream::connect(balancer.listen).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let request = b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n";
    let read_answer = |stream: &mut TcpStream| {
        let mut answer = Vec::new();
        let mut buffer = [0u8; 1024];
        let waited = Instant::now();
        while !answer.ends_with(b"ok") && waited.elapsed() < Duration::from_secs(5) {
            if let Ok(n) = stream.read(&mut buffer) {
                answer.extend_from_slice(&buffer[..n]);
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    };
    stream.write_all(request).unwrap();
    assert_eq!(status_line(&read_answer(&mut stream)), "HTTP/1.1 200 OK");
    // Idle between requests is not header time, even after the empty line
    // some clients send after a request.
    stream.write_all(b"\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    stream.write_all(request).unwrap();
    assert_eq!(status_line(&read_answer(&mut stream)), "HTTP/1.1 200 OK");

    // The next header, a byte every 200 ms: cut about 1 s after its start.
    let closed_after = common::cut_off_after(&mut stream, b'G', Duration::from_millis(200));
    println!("slowloris on a kept-alive connection: closed after {closed_after:?}");
    assert!(
        closed_after >= Duration::from_millis(900),
        "{closed_after:?}"
    );
    assert!(
        closed_after < Duration::from_millis(2500),
        "{closed_after:?}"
    );
}

#[test]
fn the_budget_runs_from_the_end_of_the_body_to_the_response_header() {
    let peer = RawBackend::start(None);
    let mut section = single_peer(peer.addr);
    section.push_str("    retries: 0\n    timeouts: { request: 1s, read: 2s }\n");
    let balancer = Balancer::start_with(&section, "limits: { body_timeout: 2s }\n");

    // A peer that sends its header a byte every 200 ms (8 s in all) never
    // trips the 2 s read timeout; the 1 s budget cuts it.
    let started = Instant::now();
    let answer = exchange(
        balancer.listen,
        b"GET /trickle HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(10),
    );
    let took = started.elapsed();
    assert_eq!(
        status_line(&answer),
        "HTTP/1.1 504 Gateway Timeout",
        "{answer}"
    );
    assert!(took < Duration::from_millis(1800), "504 after {took:?}");
    let timeouts = balancer.scrape_when(|s| {
        s.sum(
            "switchyard_upstream_errors_total",
            &[("kind", "read_timeout")],
        ) == Some(1.0)
    });
    assert_eq!(
        timeouts.sum(
            "switchyard_upstream_errors_total",
            &[("kind", "read_timeout")]
        ),
        Some(1.0),
        "a slow peer is a failed peer"
    );

    // A body sent a byte every 250 ms takes longer than the budget, which
    // only starts once it is complete: no 504 for a slow upload.
    let mut stream = TcpStream::connect(balancer.listen).unwrap();
    stream
        .write_all(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    for byte in b"slowbody" {
        std::thread::sleep(Duration::from_millis(250));
        stream.write_all(&[*byte]).unwrap();
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    let upload = peer.received_under("/upload");
    assert_eq!(upload.len(), 1);
    assert_eq!(upload[0].body, b"slowbody");
}

#[test]
fn a_client_waiting_for_100_continue_gets_it_at_once() {
    let peer = RawBackend::start(None);
    let balancer = Balancer::start(&single_peer(peer.addr));
    let mut stream = TcpStream::connect(balancer.listen).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    stream
        .write_all(
            b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let mut interim = [0u8; 25];
    stream
        .read_exact(&mut interim)
        .expect("100 Continue within 500 ms");
    assert!(interim.starts_with(b"HTTP/1.1 100 Continue\r\n"));
    stream.write_all(b"hello").unwrap();
    // The connection stays open for the next request.
    stream
        .write_all(b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 2, "{answer}");
    assert_eq!(peer.received_under("/after").len(), 1);
    let form = &peer.received_under("/form")[0];
    assert_eq!(form.body, b"hello");
    assert_eq!(form.header("expect"), None);
}

#[test]
fn an_upgrade_that_is_no_websocket_keeps_the_body_timeout() {
    let peer = RawBackend::start(None);
    let balancer = Balancer::start_with(&single_peer(peer.addr), "limits: { body_timeout: 1s }\n");
    let (answer, took) = stall(
        balancer.listen,
        "POST /x HTTP/1.1\r\nHost: x\r\nUpgrade: x\r\nConnection: Upgrade\r\nContent-Length: 60\r\n\r\n",
        b"0123456789",
    );
    assert_eq!(
        status_line(&answer),
        "HTTP/1.1 408 Request Timeout",
        "{answer}"
    );
    assert!(took < Duration::from_secs(4), "{took:?}");
}
