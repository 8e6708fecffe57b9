//! Talking HTTP to the balancer: a small client (ureq), and raw exchanges
//! for what a well-behaved client would never send.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Send `raw` on a new connection to `addr` and read until the other side
/// closes it or `limit` passes; the answer as text (empty: closed at once).
pub fn exchange(addr: SocketAddr, raw: &[u8], limit: Duration) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(limit)).expect("read timeout");
    let _ = stream.write_all(raw);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Write `byte` to `stream` every `every` until the other side closes the
/// connection (at most 5 s); how long that took from the first byte. The
/// stream's read timeout must be short (it paces the checks).
pub fn cut_off_after(stream: &mut TcpStream, byte: u8, every: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let sent = stream.write_all(&[byte]).is_ok();
        let mut buffer = [0u8; 64];
        let closed = match stream.read(&mut buffer) {
            Ok(_) => true,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        if closed || !sent {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a slow header was never cut off"
        );
        std::thread::sleep(every);
    }
}

/// The status line of an answer, or `<closed>`.
pub fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or("<closed>")
}

pub fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// GET `url`: status and body. Panics on a transport error.
pub fn get(url: &str) -> (u16, String) {
    try_get(url).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// GET `url` with a fresh agent (a fresh connection).
pub fn try_get(url: &str) -> Result<(u16, String), ureq::Error> {
    request(&agent(), url)
}

pub fn request(agent: &ureq::Agent, url: &str) -> Result<(u16, String), ureq::Error> {
    request_with(agent, url, &[])
}

/// GET `url` with the extra request `headers`: status and body.
pub fn request_with(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String), ureq::Error> {
    let mut builder = agent.get(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut response = builder.call()?;
    let status = response.status().as_u16();
    let mut body = String::new();
    response
        .body_mut()
        .as_reader()
        .read_to_string(&mut body)
        .map_err(ureq::Error::Io)?;
    Ok((status, body))
}

/// A keep-alive client, like a browser or a load generator.
pub struct Client(ureq::Agent);

impl Client {
    pub fn new() -> Client {
        Client(agent())
    }

    pub fn get(&self, url: &str) -> (u16, String) {
        self.get_with(url, &[])
    }

    /// GET `url` with the extra request `headers`.
    pub fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> (u16, String) {
        request_with(&self.0, url, headers).unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }
}

/// How many times `name` appears in `names`.
pub fn count(names: &[String], name: &str) -> usize {
    names.iter().filter(|n| *n == name).count()
}
