//! Property tests, bounded so the suite stays fast: the config loader and
//! the request path take arbitrary input without panicking.

mod common;

use common::{single_peer, Backend, Balancer};
use proptest::prelude::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use switchyard::config::Config;

const SAMPLE: &str = "server: { threads: 2, grace_period_seconds: 1 }
listen: 127.0.0.1:18080
metrics: 127.0.0.1:16192
limits: { max_body_bytes: 1000, header_timeout: 2s }
deny: [{ path_prefix: /api/switch, allow: [127.0.0.0/8] }]
upstreams:
  backend:
    algorithm: consistent_hash
    peers:
      - 127.0.0.1:8001
      - { addr: 127.0.0.1:8002, weight: 2, backup: true }
    retry_on_status: [502]
    timeouts: { connect: 1s, read: 2s }
    health_check: { path: /api/status, interval: 1s, expected_status: [200] }
";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_config_loader_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        let _ = Config::parse(&text, "fuzz.yaml");
    }

    #[test]
    fn the_config_loader_never_panics_on_mutated_configs(
        at in 0usize..SAMPLE.len(),
        cut in 0usize..40,
        insert in "[ -~\\n]{0,20}",
    ) {
        let mut text = SAMPLE.to_string();
        let start = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + cut).min(text.len());
        let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text.replace_range(start..end, &insert);
        match Config::parse(&text, "fuzz.yaml") {
            Ok(_) => {}
            Err(e) => prop_assert!(e.to_string().starts_with("fuzz.yaml: ")),
        }
    }
}

/// A request made of arbitrary, often broken, parts.
fn raw_request() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![
        Just("GET".to_string()),
        Just("POST".to_string()),
        Just("HEAD".to_string()),
        Just("CONNECT".to_string()),
        "[A-Z]{1,8}",
        "\\PC{0,6}",
    ];
    let path = prop_oneof![
        Just("/api/data".to_string()),
        Just("/check".to_string()),
        Just("/api/switch".to_string()),
        "/[ -~]{0,30}",
        "\\PC{0,20}",
    ];
    let version = prop_oneof![
        Just("HTTP/1.1"),
        Just("HTTP/1.0"),
        Just("HTTP/2.0"),
        Just("HTTP/1")
    ];
    let header = prop_oneof![
        Just("Host: x".to_string()),
        Just("Transfer-Encoding: chunked".to_string()),
        Just("Content-Length: 5".to_string()),
        Just("Content-Length: 99999999999999999999".to_string()),
        Just("Expect: 100-continue".to_string()),
        "[A-Za-z-]{1,12}: [ -~]{0,40}",
        "[ -~]{0,30}",
    ];
    let body = proptest::collection::vec(any::<u8>(), 0..64);
    (
        method,
        path,
        version,
        proptest::collection::vec(header, 0..8),
        body,
    )
        .prop_map(|(method, path, version, headers, body)| {
            let mut raw = format!("{method} {path} {version}\r\n").into_bytes();
            for header in headers {
                raw.extend_from_slice(header.as_bytes());
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"\r\n");
            raw.extend_from_slice(&body);
            raw
        })
}

#[test]
fn the_request_path_answers_arbitrary_requests_without_falling_over() {
    let backend = Backend::start("b1", 0);
    let balancer = Balancer::start_with(
        &single_peer(backend.addr),
        // The switch would turn the backend off and spoil the check at the end.
        "limits: { header_timeout: 1s }\ndeny: [{ path_prefix: /api/switch }]\n",
    );
    let listen = balancer.listen;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(150));
    runner
        .run(&raw_request(), |raw| {
            let mut stream = TcpStream::connect(listen).expect("the balancer accepts");
            stream
                .set_read_timeout(Some(Duration::from_secs(3)))
                .unwrap();
            let _ = stream.write_all(&raw);
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            // Either an HTTP answer with a status, or a closed connection.
            if !answer.is_empty() {
                let line = String::from_utf8_lossy(&answer[..answer.len().min(12)]).into_owned();
                prop_assert!(
                    line.starts_with("HTTP/1.1 ") || line.starts_with("HTTP/1.0 "),
                    "{line:?} for {:?}",
                    String::from_utf8_lossy(&raw)
                );
            }
            Ok(())
        })
        .unwrap();
    // Still alive and serving.
    assert_eq!(common::get(&balancer.url("/api/data")).0, 200);
    assert!(common::alive(balancer.process.pid()));
}

/// A request path made of the pieces that path normalization must see
/// through.
fn tricky_path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/"),
        Just("//"),
        Just("."),
        Just(".."),
        Just("%2e"),
        Just("%2E%2e"),
        Just("%2f"),
        Just("%2F"),
        Just("api"),
        Just("API"),
        Just("%61pi"),
        Just("switch"),
        Just("%73witch"),
        Just("Switch"),
        Just(";x"),
        Just(";"),
        Just("%3b"),
        Just("%5c"),
        Just("\\"),
        Just("%00"),
        Just("%"),
        Just("a"),
        Just("%7e"),
    ];
    proptest::collection::vec(piece, 1..10).prop_map(|pieces| format!("/{}", pieces.concat()))
}

/// The readings backends could make of a request target: every escape
/// decoded, `\` taken as `/`, path parameters dropped, case ignored, and
/// dot segments resolved (Tomcat, Express after `path.normalize`) or not
/// (Go's ServeMux leaves `..;` alone).
fn readings(target: &str) -> [String; 2] {
    [reading(target, true), reading(target, false)]
}

fn reading(target: &str, resolve_dots: bool) -> String {
    let path = target.split('?').next().unwrap_or_default().as_bytes();
    let mut decoded = Vec::new();
    let mut at = 0;
    while at < path.len() {
        let escape = path
            .get(at + 1..at + 3)
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match (path[at], escape) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                at += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                at += 1;
            }
        }
    }
    let text = String::from_utf8_lossy(&decoded).replace('\\', "/");
    let mut segments: Vec<&str> = Vec::new();
    for segment in text.split('/') {
        match segment.split(';').next().unwrap_or_default() {
            "" => {}
            "." if resolve_dots => {}
            ".." if resolve_dots => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    format!("/{}", segments.join("/")).to_ascii_lowercase()
}

#[test]
fn no_generated_spelling_of_a_denied_path_reaches_the_peer() {
    let peer = common::raw_backend::RawBackend::start(None);
    let balancer = Balancer::start_with(
        &single_peer(peer.addr),
        "deny: [{ path_prefix: /api/switch }]\n",
    );
    let listen = balancer.listen;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(300));
    runner
        .run(&tricky_path(), |path| {
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let answer = common::exchange(listen, request.as_bytes(), Duration::from_secs(3));
            let status = common::status_line(&answer);
            prop_assert!(
                ["200", "400", "403"]
                    .iter()
                    .any(|s| status.starts_with(&format!("HTTP/1.1 {s} "))),
                "{status} for {path}"
            );
            Ok(())
        })
        .unwrap();
    let leaked: Vec<String> = peer
        .received()
        .into_iter()
        .map(|r| r.target)
        .filter(|t| readings(t).iter().any(|r| r.starts_with("/api/switch")))
        .collect();
    assert!(leaked.is_empty(), "reached the peer: {leaked:?}");
    assert!(peer.received().len() > 10, "nothing got through at all");
}
