//! HTTPS and HTTP/2 towards clients: TLS listeners with SNI, HTTP/2 by ALPN
//! and by prior knowledge (h2c), the redirect to HTTPS, certificates
//! reloaded under load, and what a hostile client can do to a TLS port or an
//! HTTP/2 connection. Certificates are made when the tests run (a test CA);
//! curl, openssl and h2load are the clients.

mod common;

use common::raw_backend::RawBackend;
use common::{single_peer, wait_until, Balancer, CertFiles, Site, TestCa};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A balancer with a TLS listener (certificates for `a.test`, `b.test` and
/// `*.w.test`, the last expiring in 5 days), a listener redirecting to it
/// and a plain one speaking h2c, over one raw backend.
struct TlsSite {
    balancer: Balancer,
    backend: RawBackend,
    /// The certificate files, and the test CA's (`ca.pem`).
    certs: tempfile::TempDir,
    ca: std::path::PathBuf,
    tls: SocketAddr,
    redirect: SocketAddr,
    h2c: SocketAddr,
}

impl TlsSite {
    fn start(limits: &str) -> TlsSite {
        let backend = RawBackend::start(None);
        let certs = tempfile::tempdir().expect("temp dir");
        let ca = TestCa::new("switchyard test CA");
        let files = [
            ca.issue(certs.path(), "a", &["a.test"], 90),
            ca.issue(certs.path(), "b", &["b.test"], 90),
            ca.issue(certs.path(), "w", &["*.w.test"], 5),
        ];
        let [tls, redirect, h2c] = [0; 3].map(|_| loopback(common::free_port()));
        let listeners = format!(
            "  - {{ addr: \"{tls}\", tls: {{ certificates: [ {} ] }} }}\n  \
             - {{ addr: \"{redirect}\", redirect_https: true }}\n  \
             - {{ addr: \"{h2c}\", http2: true }}\n",
            certificate_list(&files)
        );
        let site = Site::with_listeners(&single_peer(backend.addr), limits, &listeners);
        TlsSite {
            balancer: Balancer::start_site(site),
            backend,
            ca: ca.write(certs.path(), "ca"),
            certs,
            tls,
            redirect,
            h2c,
        }
    }

    /// curl to `https://NAME:PORT{path}` of the TLS listener, verifying
    /// against the test CA; its `-w` output.
    fn curl_https(&self, name: &str, path: &str, extra: &[&str]) -> String {
        let resolve = format!("{name}:{}:127.0.0.1", self.tls.port());
        let url = format!("https://{name}:{}{path}", self.tls.port());
        let ca = self.ca.display().to_string();
        let mut args = vec!["--cacert", &ca, "--resolve", &resolve];
        args.extend_from_slice(extra);
        args.push(&url);
        curl(&args)
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn certificate_list(files: &[CertFiles]) -> String {
    files
        .iter()
        .map(|f| format!("{{ cert: {}, key: {} }}", f.cert.display(), f.key.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn run(program: &str, args: &[&str], stdin_empty: bool) -> Output {
    let mut command = Command::new(program);
    command.args(args);
    if stdin_empty {
        command.stdin(std::process::Stdio::null());
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

/// `curl -s -o /dev/null -w '%{http_version} %{http_code} %{redirect_url}'`
/// with `args`.
fn curl(args: &[&str]) -> String {
    let mut all = vec![
        "-s",
        "-o",
        "/dev/null",
        "--max-time",
        "5",
        "-w",
        "%{http_version} %{http_code} %{redirect_url}",
    ];
    all.extend_from_slice(args);
    let output = run("curl", &all, true);
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The common name of the certificate the TLS listener at `addr` shows a
/// client asking for `name` (SNI), and openssl's whole output.
fn served_certificate(addr: SocketAddr, name: &str, extra: &[&str]) -> (String, String) {
    let connect = addr.to_string();
    let mut args = vec!["s_client", "-connect", &connect, "-servername", name];
    args.extend_from_slice(extra);
    let output = run("openssl", &args, true);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let subject = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("subject=CN = ")
                .or(l.strip_prefix("subject=CN="))
        })
        .unwrap_or("")
        .to_string();
    (subject, text)
}

#[test]
fn https_with_sni_http2_h2c_and_the_redirect_to_https() {
    let site = TlsSite::start("");
    // HTTP/2 by ALPN to a client, HTTP/1.1 to the backend.
    assert_eq!(site.curl_https("a.test", "/x", &["--http2"]), "2 200");
    assert_eq!(site.curl_https("a.test", "/x", &["--http1.1"]), "1.1 200");
    let received = site.backend.received_under("/x");
    assert_eq!(received.len(), 2, "{received:?}");
    for request in &received {
        assert_eq!(
            request.header("x-forwarded-proto").as_deref(),
            Some("https")
        );
    }
    // SNI: two names and a wildcard; an unknown name gets the first.
    for (name, expected) in [
        ("a.test", "a.test"),
        ("b.test", "b.test"),
        ("x.w.test", "*.w.test"),
        ("unknown.test", "a.test"),
    ] {
        let (subject, text) = served_certificate(site.tls, name, &[]);
        assert_eq!(subject, expected, "SNI {name}:\n{text}");
    }
    assert_eq!(site.curl_https("b.test", "/", &[]), "2 200");
    assert_eq!(site.curl_https("x.w.test", "/", &[]), "2 200");
    // TLS 1.1 is refused (the client side allowed to try it).
    let (subject, text) = served_certificate(
        site.tls,
        "a.test",
        &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
    );
    assert_eq!(subject, "", "a TLS 1.1 handshake succeeded:\n{text}");
    assert!(text.contains("alert protocol version"), "{text}");
    // h2c by prior knowledge beside HTTP/1.1 on a plain listener.
    let h2c = format!("http://{}/h2c", site.h2c);
    assert_eq!(curl(&["--http2-prior-knowledge", &h2c]), "2 200");
    assert_eq!(curl(&[&h2c]), "1.1 200");
    let plain = site.backend.received_under("/h2c");
    assert_eq!(plain.len(), 2);
    assert_eq!(
        plain[0].header("x-forwarded-proto").as_deref(),
        Some("http")
    );
    // A request shorter than HTTP/2's preface is not kept waiting for more.
    let started = Instant::now();
    let answer = common::exchange(
        site.h2c,
        b"GET /h10 HTTP/1.0\r\n\r\n",
        Duration::from_secs(3),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // Plain HTTP/1.1 on a listener without http2 does not take h2c.
    let no_h2c = format!("http://{}/", site.balancer.listen);
    assert_ne!(curl(&["--http2-prior-knowledge", &no_h2c]), "2 200");
    // The redirect: same host and path, the TLS port, 308.
    let redirect = format!("http://{}/some/path?q=1", site.redirect);
    assert_eq!(
        curl(&["-H", "Host: a.test", &redirect]),
        format!("1.1 308 https://a.test:{}/some/path?q=1", site.tls.port())
    );
    assert!(site.backend.received_under("/some").is_empty());
    // Handshakes counted; certificate expiry shown, the soon one warned of.
    let scrape = site.balancer.scrape();
    let listener = site.tls.to_string();
    let ok = scrape.sum(
        "switchyard_tls_handshakes_total",
        &[("listener", &listener), ("result", "ok")],
    );
    assert!(ok >= Some(8.0), "handshakes ok: {ok:?}");
    let expiry = scrape
        .sum(
            "switchyard_tls_certificate_expiry_timestamp_seconds",
            &[("name", "*.w.test")],
        )
        .expect("an expiry series for *.w.test");
    let in_days = (expiry - now_seconds()) / 86_400.0;
    assert!((4.0..=5.1).contains(&in_days), "expires in {in_days} days");
    let log = site.balancer.process.log();
    assert!(
        log.contains("(*.w.test) expires in "),
        "no expiry warning in:\n{log}"
    );
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// An HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    bytes.extend([kind, flags]);
    bytes.extend(stream.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// HPACK: `GET`, `http`, `/` from the static table, `:authority: a`.
const GET_ROOT: &[u8] = &[0x82, 0x86, 0x84, 0x41, 0x01, b'a'];

/// An h2c connection to `addr`: the preface and an empty SETTINGS sent.
fn h2c_connection(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .expect("preface");
    stream
        .write_all(&frame(SETTINGS, 0, 0, &[]))
        .expect("settings");
    stream
}

/// Read from `stream` until the server closes it or `limit` passes; how
/// long that took (`None`: still open) and what it sent.
fn until_closed(stream: &mut TcpStream, limit: Duration) -> (Option<Duration>, Vec<u8>) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    while started.elapsed() < limit {
        match stream.read(&mut buffer) {
            Ok(0) => return (Some(started.elapsed()), received),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (Some(started.elapsed()), received),
        }
    }
    (None, received)
}

/// The value of `id` in the first SETTINGS frame in `bytes` from a server.
fn setting(bytes: &[u8], id: u16) -> Option<u32> {
    let mut at = 0;
    while at + 9 <= bytes.len() {
        let length = u32::from_be_bytes([0, bytes[at], bytes[at + 1], bytes[at + 2]]) as usize;
        let payload = bytes.get(at + 9..at + 9 + length)?;
        if bytes[at + 3] == SETTINGS && bytes[at + 4] & 0x1 == 0 {
            return payload
                .chunks(6)
                .find(|s| u16::from_be_bytes([s[0], s[1]]) == id)
                .map(|s| u32::from_be_bytes([s[2], s[3], s[4], s[5]]));
        }
        at += 9 + length;
    }
    None
}

#[test]
fn hostile_handshakes_and_http2_abuse_are_cut_off() {
    let site = TlsSite::start("limits: { header_timeout: 1s, http2_max_streams: 5 }\n");
    let header_timeout = Duration::from_secs(1);
    let limit = header_timeout + Duration::from_secs(3);
    // A stalled handshake and garbage on the TLS port, while others are served.
    let mut stalled = TcpStream::connect(site.tls).expect("connect");
    stalled
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut garbage = TcpStream::connect(site.tls).expect("connect");
    garbage
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .expect("garbage");
    assert_eq!(site.curl_https("a.test", "/", &[]), "2 200");
    let (garbage_closed, _) = until_closed(&mut garbage, limit);
    assert!(garbage_closed.is_some(), "garbage was not closed");
    let (stalled_closed, _) = until_closed(&mut stalled, limit);
    let stalled_closed = stalled_closed.expect("a stalled handshake was not closed");
    assert!(
        stalled_closed >= header_timeout - Duration::from_millis(300),
        "closed after {stalled_closed:?}"
    );
    // The counter follows the close (the timed-out handshake's stream is
    // dropped with it): poll for it.
    let listener = site.tls.to_string();
    let count = |scrape: &common::Scrape, result: &str| {
        scrape.sum(
            "switchyard_tls_handshakes_total",
            &[("listener", &listener), ("result", result)],
        )
    };
    let counted = |scrape: &common::Scrape| {
        ["failed", "timeout"]
            .iter()
            .all(|result| count(scrape, result) >= Some(1.0))
    };
    let scrape = site.balancer.scrape_when(counted);
    for result in ["failed", "timeout"] {
        let counted = count(&scrape, result);
        assert!(counted >= Some(1.0), "{result}: {counted:?}");
    }

    // HTTP/2: the streams limit is announced; a header block trickled, a
    // CONTINUATION flood and rapid resets end the connection.
    let mut announced = h2c_connection(site.h2c);
    let (_, sent) = until_closed(&mut announced, Duration::from_millis(300));
    assert_eq!(
        setting(&sent, 0x3),
        Some(5),
        "SETTINGS_MAX_CONCURRENT_STREAMS"
    );

    let mut trickle = h2c_connection(site.h2c);
    trickle
        .write_all(&frame(HEADERS, END_STREAM, 1, &GET_ROOT[..3]))
        .expect("headers");
    let (closed, _) = until_closed(&mut trickle, limit);
    let closed = closed.expect("an unfinished header block was not cut off");
    assert!(
        closed >= header_timeout - Duration::from_millis(300),
        "{closed:?}"
    );

    let mut flood = h2c_connection(site.h2c);
    let mut frames = frame(HEADERS, END_STREAM, 1, &GET_ROOT[..3]);
    for _ in 0..200 {
        frames.extend(frame(CONTINUATION, 0, 1, &[0x84]));
    }
    let _ = flood.write_all(&frames);
    let (closed, _) = until_closed(&mut flood, Duration::from_millis(900));
    assert!(closed.is_some(), "a CONTINUATION flood was not cut off");

    let mut resets = h2c_connection(site.h2c);
    let mut cut_off = false;
    for stream in (1..4000u32).step_by(2) {
        let mut burst = frame(HEADERS, END_STREAM | END_HEADERS, stream, GET_ROOT);
        burst.extend(frame(RST_STREAM, 0, stream, &8u32.to_be_bytes()));
        if resets.write_all(&burst).is_err() {
            cut_off = true;
            break;
        }
    }
    let (closed, _) = until_closed(&mut resets, Duration::from_secs(2));
    assert!(cut_off || closed.is_some(), "rapid resets were not cut off");
    // The balancer serves on.
    assert_eq!(site.curl_https("a.test", "/after", &["--http2"]), "2 200");
    assert_eq!(
        curl(&["--http2-prior-knowledge", &format!("http://{}/", site.h2c)]),
        "2 200"
    );
}

#[test]
fn certificates_are_reloaded_under_https_load() {
    let site = TlsSite::start("");
    let pid = site.balancer.process.pid();
    let before = served_certificate(site.tls, "a.test", &["-showcerts"]).1;
    // Keep-alive HTTPS load for the whole reload.
    let url = format!("https://127.0.0.1:{}/load", site.tls.port());
    let load = Command::new("h2load")
        .args(["--h1", "-c", "4", "-D", "3", &url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run h2load");
    std::thread::sleep(Duration::from_millis(500));
    // A new certificate for a.test, from a new CA, in place of the old.
    let dir = site.certs.path();
    let new_ca = TestCa::new("switchyard second CA");
    let fresh = new_ca.issue(dir, "a-new", &["a.test"], 90);
    std::fs::rename(&fresh.cert, dir.join("a.pem")).expect("replace the certificate");
    std::fs::rename(&fresh.key, dir.join("a.key")).expect("replace the key");
    let new_ca_path = new_ca.write(dir, "new-ca");
    site.balancer.process.signal("HUP");
    let new_ca = new_ca_path.display().to_string();
    let switched = wait_until(Duration::from_secs(5), || {
        let (_, text) = served_certificate(site.tls, "a.test", &["-CAfile", &new_ca]);
        text.contains("Verify return code: 0 (ok)")
    });
    assert!(
        switched.is_some(),
        "new handshakes never got the new certificate:\n{before}"
    );
    // New connections during and after the reload all succeed.
    let resolve = format!("a.test:{}:127.0.0.1", site.tls.port());
    let fresh_url = format!("https://a.test:{}/fresh", site.tls.port());
    for _ in 0..10 {
        let got = curl(&["--cacert", &new_ca, "--resolve", &resolve, &fresh_url]);
        assert_eq!(got, "2 200");
    }
    let output = load.wait_with_output().expect("h2load");
    let report = String::from_utf8_lossy(&output.stdout);
    let requests = report
        .lines()
        .find(|l| l.starts_with("requests:"))
        .unwrap_or_else(|| panic!("no h2load summary:\n{report}"));
    let counts: Vec<u64> = requests
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    println!("HTTPS keep-alive load across the certificate reload: {requests}");
    // total, started, done, succeeded, failed, errored, timeout
    assert!(counts[3] > 100, "{requests}");
    assert_eq!(counts[4..7], [0, 0, 0], "{requests}");
    assert_eq!(site.balancer.process.pid(), pid);
    assert!(
        site.balancer.process.log().contains("reload"),
        "no reload logged"
    );
}

#[test]
fn bad_certificates_are_configuration_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("switchyard test CA");
    let a = ca.issue(dir.path(), "a", &["a.test"], 90);
    let b = ca.issue(dir.path(), "b", &["b.test"], 90);
    let chain = dir.path().join("chain.pem");
    // A chain whose second certificate did not issue the first.
    let out_of_order = [
        std::fs::read_to_string(&a.cert).unwrap(),
        std::fs::read_to_string(&b.cert).unwrap(),
    ]
    .join("\n");
    std::fs::write(&chain, out_of_order).unwrap();
    let missing = dir.path().join("missing.pem");
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    for (cert, key, error) in [
        (
            &a.cert,
            &b.key,
            "is not the private key of the certificate in",
        ),
        (&missing, &a.key, "cannot read"),
        (&not_pem, &a.key, "holds no PEM certificate"),
        (&chain, &a.key, "did not issue certificate"),
    ] {
        let config = dir.path().join("bad.yaml");
        std::fs::write(
            &config,
            format!(
                "listen:\n  - {{ addr: \"127.0.0.1:1\" }}\n  - {{ addr: \"127.0.0.1:2\", tls: {{ certificates: [ {{ cert: {}, key: {} }} ] }} }}\nupstreams:\n  u:\n    peers: [127.0.0.1:3]\n",
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let output = common::run_switchyard(
            &["-t".as_ref(), "-c".as_ref(), config.as_os_str()],
            Duration::from_secs(10),
        );
        let text = common::output_text(&output);
        assert!(!output.status.success(), "{text}");
        assert!(text.contains("listen[1].tls.certificates[0]: "), "{text}");
        assert!(text.contains(error), "expected {error:?} in: {text}");
        assert!(text.contains("at line 3"), "{text}");
    }
}
