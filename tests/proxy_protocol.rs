//! The PROXY protocol: on a listener with `proxy_protocol: true` the client
//! address is the header's (v1 and v2, IPv4 and IPv6, before TLS), for the
//! forwarding headers and the status page's `status_allow` alike; a
//! connection without the header is closed within `limits.header_timeout`;
//! a listener without `proxy_protocol` does not honor one.

mod common;

use common::raw_backend::RawBackend;
use common::{exchange, single_peer, status_line, wait_until, Balancer, CertFiles, Site, TestCa};
use openssl::ssl::{SslConnector, SslMethod};
use ppp::v2;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a test waits for an answer or a close.
const LIMIT: Duration = Duration::from_secs(4);

/// A balancer with its plain listener (no PROXY protocol), a plain one and
/// a TLS one (a certificate for `a.test`) with `proxy_protocol: true`, over
/// one recording backend.
struct ProxiedSite {
    balancer: Balancer,
    backend: RawBackend,
    plain: SocketAddr,
    tls: SocketAddr,
    /// The test CA's certificate file; the directory holds the files.
    ca: PathBuf,
    /// The TLS listener's certificate.
    files: CertFiles,
    _certs: tempfile::TempDir,
}

/// The listeners after the plain one: `plain` and `tls` (serving `files`),
/// both with `proxy_protocol` as given.
fn listeners(
    plain: SocketAddr,
    tls: SocketAddr,
    files: &CertFiles,
    proxy_protocol: bool,
) -> String {
    format!(
        "  - {{ addr: \"{plain}\", proxy_protocol: {proxy_protocol} }}\n  \
         - {{ addr: \"{tls}\", proxy_protocol: {proxy_protocol}, tls: {{ certificates: [ {{ cert: {}, key: {} }} ] }} }}\n",
        files.cert.display(),
        files.key.display()
    )
}

fn limits() -> String {
    format!(
        "limits: {{ header_timeout: {}s }}\n",
        HEADER_TIMEOUT.as_secs()
    )
}

impl ProxiedSite {
    fn start() -> ProxiedSite {
        let backend = RawBackend::start(None);
        let certs = tempfile::tempdir().expect("temp dir");
        let ca = TestCa::new("switchyard test CA");
        let files = ca.issue(certs.path(), "a", &["a.test"], 90);
        let [plain, tls] = [0; 2].map(|_| SocketAddr::from(([127, 0, 0, 1], common::free_port())));
        let upstreams = single_peer(backend.addr);
        let more = listeners(plain, tls, &files, true);
        let site = Site::with_listeners(&upstreams, &limits(), &more);
        ProxiedSite {
            balancer: Balancer::start_site(site),
            backend,
            plain,
            tls,
            ca: ca.write(certs.path(), "ca"),
            files,
            _certs: certs,
        }
    }

    /// Rewrite the configuration with `proxy_protocol` as given on both
    /// listeners, and reload it.
    fn reload_with(&mut self, proxy_protocol: bool) {
        let site = &mut self.balancer.site;
        site.more_listeners = listeners(self.plain, self.tls, &self.files, proxy_protocol);
        let upstreams = single_peer(self.backend.addr);
        site.write_config(&site.config_path, &upstreams, &limits());
        self.balancer.process.signal("HUP");
    }

    /// The forwarding headers the backend got with the request for `path`.
    fn forwarded(&self, path: &str) -> (Option<String>, Option<String>) {
        let received = self.backend.received_under(path);
        assert_eq!(received.len(), 1, "{path}: {received:?}");
        (
            received[0].header("x-forwarded-for"),
            received[0].header("x-real-ip"),
        )
    }
}

/// A `GET path` closing its connection.
fn request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n").into_bytes()
}

/// `header` then `GET path` on one connection to `addr`; the status line.
fn proxied_get(addr: SocketAddr, header: &[u8], path: &str) -> String {
    let answer = exchange(addr, &[header, &request(path)].concat(), LIMIT);
    status_line(&answer).to_string()
}

fn v1(source: &str) -> Vec<u8> {
    let source: SocketAddr = source.parse().expect("an address");
    let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    let destination = if source.is_ipv4() {
        "192.0.2.1"
    } else {
        "2001:db8::1"
    };
    format!(
        "PROXY {family} {} {destination} {} 443\r\n",
        source.ip(),
        source.port()
    )
    .into_bytes()
}

fn v2(command: v2::Command, source: &str) -> Vec<u8> {
    let source: SocketAddr = source.parse().expect("an address");
    let destination: SocketAddr = if source.is_ipv4() {
        "192.0.2.1:443".parse().expect("an address")
    } else {
        "[2001:db8::1]:443".parse().expect("an address")
    };
    v2::Builder::with_addresses(
        v2::Version::Two | command,
        v2::Protocol::Stream,
        (source, destination),
    )
    .build()
    .expect("a v2 header")
}

#[test]
fn the_client_address_comes_from_the_proxy_header() {
    let site = ProxiedSite::start();
    let ok = "HTTP/1.1 200 OK";
    for (header, path, client) in [
        (v1("203.0.113.7:51000"), "/v1", "203.0.113.7"),
        (v1("[2001:db8::7]:51000"), "/v1-ipv6", "2001:db8::7"),
        (
            v2(v2::Command::Proxy, "203.0.113.8:51000"),
            "/v2",
            "203.0.113.8",
        ),
        (
            v2(v2::Command::Proxy, "[2001:db8::8]:51000"),
            "/v2-ipv6",
            "2001:db8::8",
        ),
        // No address given: the connection's own.
        (b"PROXY UNKNOWN\r\n".to_vec(), "/unknown", "127.0.0.1"),
        (v2(v2::Command::Local, "10.0.0.1:1"), "/local", "127.0.0.1"),
    ] {
        assert_eq!(proxied_get(site.plain, &header, path), ok, "{path}");
        let client = Some(client.to_string());
        assert_eq!(site.forwarded(path), (client.clone(), client), "{path}");
    }

    // Before TLS.
    let mut tcp = TcpStream::connect(site.tls).expect("connect");
    tcp.set_read_timeout(Some(LIMIT)).expect("read timeout");
    tcp.write_all(&v2(v2::Command::Proxy, "[2001:db8::9]:51000"))
        .expect("header");
    let mut connector = SslConnector::builder(SslMethod::tls()).expect("connector");
    connector.set_ca_file(&site.ca).expect("the test CA");
    let mut tls = connector
        .build()
        .connect("a.test", tcp)
        .expect("TLS after the PROXY header");
    tls.write_all(&request("/tls")).expect("request");
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    assert_eq!(status_line(&String::from_utf8_lossy(&answer)), ok);
    let client = Some("2001:db8::9".to_string());
    assert_eq!(site.forwarded("/tls"), (client.clone(), client));

    // status_allow (loopback and private networks) sees the header's address.
    let forbidden = "HTTP/1.1 403 Forbidden";
    assert_eq!(
        proxied_get(site.plain, &v1("203.0.113.7:1"), "/check"),
        forbidden
    );
    assert_eq!(proxied_get(site.plain, &v1("127.0.0.1:1"), "/check"), ok);
    assert_eq!(proxied_get(site.balancer.listen, b"", "/check"), ok);
}

#[test]
fn a_missing_header_closes_and_a_foreign_one_is_not_honored() {
    let site = ProxiedSite::start();
    // Nothing sent: closed at the header timeout.
    let started = Instant::now();
    let answer = exchange(site.plain, b"", LIMIT);
    let closed = started.elapsed();
    assert!(answer.is_empty(), "{answer}");
    assert!(
        closed >= HEADER_TIMEOUT - Duration::from_millis(300) && closed < LIMIT,
        "closed after {closed:?}"
    );
    // HTTP without the header, a bad header: closed at once.
    for (sent, what) in [
        (request("/no-header"), "no header"),
        (
            [
                b"PROXY TCP4 203.0.113.7\r\n".as_slice(),
                &request("/bad-header"),
            ]
            .concat(),
            "a bad header",
        ),
    ] {
        let started = Instant::now();
        let answer = exchange(site.plain, &sent, LIMIT);
        assert!(answer.is_empty(), "{what}: {answer}");
        assert!(
            started.elapsed() < HEADER_TIMEOUT,
            "{what}: {:?}",
            started.elapsed()
        );
    }
    // A PROXY header on a listener without proxy_protocol is bad HTTP.
    for header in [
        v1("203.0.113.7:51000"),
        v2(v2::Command::Proxy, "203.0.113.7:51000"),
    ] {
        let answer = exchange(
            site.balancer.listen,
            &[header, request("/spoofed")].concat(),
            LIMIT,
        );
        assert_eq!(status_line(&answer), "HTTP/1.1 400 Bad Request");
    }
    assert!(site.backend.received_under("/no-header").is_empty());
    assert!(site.backend.received_under("/bad-header").is_empty());
    assert!(site.backend.received_under("/spoofed").is_empty());
}

#[test]
fn a_reload_turns_proxy_protocol_off_for_new_connections() {
    let mut site = ProxiedSite::start();
    let ok = "HTTP/1.1 200 OK";
    assert_eq!(proxied_get(site.plain, &v1("203.0.113.7:1"), "/before"), ok);
    site.reload_with(false);
    let plain_http = wait_until(Duration::from_secs(5), || {
        proxied_get(site.plain, b"", "/after") == ok
    });
    assert!(
        plain_http.is_some(),
        "the listener still wants a PROXY header"
    );
    assert_eq!(
        proxied_get(site.plain, &v1("203.0.113.7:1"), "/spoofed"),
        "HTTP/1.1 400 Bad Request"
    );
    assert!(site.backend.received_under("/spoofed").is_empty());
    let client = Some("127.0.0.1".to_string());
    assert_eq!(
        site.backend.received_under("/after")[0].header("x-real-ip"),
        client
    );
}
