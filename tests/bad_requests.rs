//! A malformed request gets a 4xx and the balancer keeps serving everyone
//! else. (The full hostile-input suite lives with the resilience work.)

mod common;

use common::{single_peer, Backend, Balancer};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn send_raw(balancer: &Balancer, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(balancer.listen).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(raw).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn malformed_requests_get_400_and_do_not_disturb_others() {
    let backend = Backend::start("b1", 0);
    let balancer = Balancer::start(&single_peer(backend.addr));
    let cases: &[&[u8]] = &[
        b"GARBAGE\r\n\r\n",
        b"GET /api/data HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
        b"GET /api/data HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET /api/data HTTP/9.9\r\n\r\n",
    ];
    for raw in cases {
        let answer = send_raw(&balancer, raw);
        assert!(
            answer.starts_with("HTTP/1.1 400 ") || answer.is_empty(),
            "{:?} -> {answer}",
            String::from_utf8_lossy(raw)
        );
        assert_eq!(common::get(&balancer.url("/api/data")).0, 200);
    }
}
