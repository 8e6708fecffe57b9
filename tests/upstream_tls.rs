//! TLS and HTTP/2 towards the peers: a peer behind TLS verified against a
//! test CA, refused with the wrong one (502, counted as `kind="tls"`, and
//! the probe, which uses the same settings, takes it DOWN; a reload reads
//! the CA file again), a peer that
//! has no name to verify as a config error, and `http2: true` reaching
//! gRPC peers by prior knowledge (h2c) and by ALPN over TLS.

mod common;

use common::client::agent;
use common::{
    run_script, run_switchyard, upstream_section, Balancer, CertFiles, PythonPeer, TestCa,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A one-peer upstream `backend` over `peer`, probed every 200 ms, with
/// `settings` (YAML lines at the upstream's level) added.
fn upstream(peer: &str, settings: &str) -> String {
    let mut text = upstream_section("backend", "round_robin", &[peer.to_string()], 200);
    for line in settings.lines() {
        text.push_str(&format!("    {line}\n"));
    }
    text
}

/// A test CA written to `dir/NAME.pem`, and a certificate it signs for
/// `names`.
fn ca_and_certificate(dir: &Path, name: &str, names: &[&str]) -> (PathBuf, CertFiles) {
    let ca = TestCa::new(name);
    let ca_file = ca.write(dir, name);
    let files = ca.issue(dir, &format!("{name}-peer"), names, 30);
    (ca_file, files)
}

/// An HTTPS peer answering every GET with 200 and `name`.
fn tls_peer(files: &CertFiles, name: &str) -> PythonPeer {
    let (cert, key) = (files.cert.as_os_str(), files.key.as_os_str());
    PythonPeer::start(
        "tls_peer.py",
        &[
            "--cert".as_ref(),
            cert,
            "--key".as_ref(),
            key,
            "--name".as_ref(),
            name.as_ref(),
        ],
    )
}

/// `switchyard_upstream_errors_total{peer, kind}`.
fn errors_of_kind(balancer: &Balancer, peer: SocketAddr, kind: &str) -> f64 {
    let peer = peer.to_string();
    balancer
        .scrape()
        .sum(
            "switchyard_upstream_errors_total",
            &[("peer", peer.as_str()), ("kind", kind)],
        )
        .unwrap_or(0.0)
}

#[test]
fn a_peer_behind_tls_is_verified_against_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, files) = ca_and_certificate(dir.path(), "good-ca", &["peer.test", "localhost"]);
    let peer = tls_peer(&files, "secure");

    // Listed by address: the name to verify is `sni`.
    let settings = format!("tls: {{ sni: peer.test, ca_file: {} }}", ca_file.display());
    let balancer = Balancer::start(&upstream(&peer.addr.to_string(), &settings));
    assert_eq!(balancer.peer_state(peer.addr), "UP", "probed over TLS");
    let (status, body) = common::get(&balancer.url("/"));
    assert_eq!((status, body.as_str()), (200, "secure\n"));
    assert_eq!(errors_of_kind(&balancer, peer.addr, "tls"), 0.0);
    drop(balancer);

    // Listed by name: the name is the peer's host, `localhost`.
    let by_name = format!("localhost:{}", peer.addr.port());
    let settings = format!("tls: {{ ca_file: {} }}", ca_file.display());
    let balancer = Balancer::start(&upstream(&by_name, &settings));
    assert_eq!(
        balancer.peer_state(peer.addr),
        format!("({by_name}) UP"),
        "probed over TLS, verified for localhost"
    );
    assert_eq!(common::get(&balancer.url("/")).0, 200);
    drop(balancer);

    // The right CA, but a certificate for another name: refused.
    let settings = format!("tls: {{ sni: other.test, ca_file: {} }}", ca_file.display());
    let balancer = Balancer::start(&upstream(&peer.addr.to_string(), &settings));
    assert_eq!(
        balancer.peer_state(peer.addr),
        "DOWN",
        "the name is checked"
    );
}

#[test]
fn the_wrong_ca_is_a_502_counted_as_tls_and_the_probe_takes_the_peer_down() {
    let dir = tempfile::tempdir().unwrap();
    let (peer_ca, files) = ca_and_certificate(dir.path(), "peer-ca", &["peer.test"]);
    let other_ca = TestCa::new("other-ca").write(dir.path(), "other-ca");
    let peer = tls_peer(&files, "untrusted");
    // fail_open: with its only peer DOWN, the upstream still sends it
    // requests, so the request meets the handshake failure itself.
    let settings = format!(
        "fail_open: true\ntls: {{ sni: peer.test, ca_file: {} }}",
        other_ca.display()
    );
    let balancer = Balancer::start(&upstream(&peer.addr.to_string(), &settings));
    let page = balancer.check();
    assert!(
        page.contains(&format!("{} DOWN", peer.addr)),
        "the first probe failed its handshake:\n{page}"
    );
    let (status, _) = common::get(&balancer.url("/"));
    assert_eq!(status, 502);
    let scrape = balancer.scrape_when(|_| errors_of_kind(&balancer, peer.addr, "tls") >= 1.0);
    let label = peer.addr.to_string();
    let tls_errors = scrape.sum(
        "switchyard_upstream_errors_total",
        &[("peer", label.as_str()), ("kind", "tls")],
    );
    assert!(tls_errors >= Some(1.0), "{tls_errors:?}");
    let status = balancer.upstream_json("backend").to_string();
    assert!(
        status.contains("probe: InvalidCert"),
        "the probe says why: {status}"
    );

    // The CA file is read again on reload: now the peer's CA, so the
    // probes bring it UP and requests pass.
    std::fs::copy(&peer_ca, &other_ca).unwrap();
    balancer.process.signal("HUP");
    balancer.wait_for_state(peer.addr, "UP");
    assert_eq!(common::get(&balancer.url("/")).0, 200);
}

#[test]
fn verification_without_a_name_and_a_bad_ca_file_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.yaml");
    let check = |settings: &str| {
        let text = format!("upstreams:\n{}", upstream("127.0.0.1:8443", settings));
        std::fs::write(&path, text).unwrap();
        let output = run_switchyard(
            &["-t".as_ref(), "-c".as_ref(), path.as_os_str()],
            Duration::from_secs(10),
        );
        assert!(!output.status.success());
        common::output_text(&output)
    };
    let file = path.display().to_string();

    let message = check("tls: { verify: true }");
    assert!(
        message.contains(&format!(
            "{file}: upstreams: upstream `backend`: tls: peer 127.0.0.1:8443 has no host name"
        )) && message.contains("line "),
        "{message}"
    );

    let missing = dir.path().join("no-such-ca.pem");
    let message = check(&format!(
        "tls: {{ sni: a.test, ca_file: {} }}",
        missing.display()
    ));
    assert!(
        message.contains(&format!(
            "{file}: upstreams.backend.tls.ca_file: cannot read `{}`",
            missing.display()
        )) && message.contains("line 12"),
        "{message}"
    );
}

/// A plain GET of `path` through the balancer: the status and the
/// answer's `content-type` and `grpc-status`. A gRPC server answers it in
/// gRPC's own way (`grpc-status: 2`, a bad method), and only over HTTP/2:
/// it speaks nothing else. (A gRPC call from an HTTP/1.1 client cannot
/// work: HTTP/1.1 carries no `te: trailers`, so the server refuses the
/// call as soon as its header arrives, racing the request body.)
fn grpc_answer(balancer: &Balancer, path: &str) -> (u16, String, String) {
    let response = agent()
        .get(&balancer.url(path))
        .call()
        .expect("GET through the balancer");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    (
        response.status().as_u16(),
        header("content-type"),
        header("grpc-status"),
    )
}

/// A unary and a server-streaming gRPC call (grpcio's client) to `target`
/// answer as the test peer does.
fn assert_grpc_calls(target: SocketAddr, context: &str) {
    let target = target.to_string();
    let output = run_script("grpc_peer.py", &["call", "--target", target.as_str()]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "echo: hello\n1\n2\n3\n",
        "{context}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A balancer over `upstreams` with an h2c listener for gRPC clients
/// besides its plain one; the balancer and that listener.
fn grpc_balancer(upstreams: &str) -> (Balancer, SocketAddr) {
    let h2c: SocketAddr = ([127, 0, 0, 1], common::free_port()).into();
    let more = format!("  - {{ addr: \"{h2c}\", http2: true }}\n");
    let site = common::Site::with_listeners(upstreams, "", &more);
    (Balancer::start_site(site), h2c)
}

#[test]
fn http2_reaches_grpc_peers_by_prior_knowledge_and_by_alpn() {
    // The gRPC peer itself answers a unary and a streaming call.
    let h2c = PythonPeer::start("grpc_peer.py", &["serve"]);
    let target = h2c.addr.to_string();
    assert_grpc_calls(h2c.addr, "the peer itself");

    // Through switchyard, by prior knowledge; the probe goes the same way.
    let (balancer, grpc_listener) = grpc_balancer(&upstream(&target, "http2: true"));
    assert_eq!(balancer.peer_state(h2c.addr), "UP", "probed over h2c");
    let (status, content_type, grpc_status) = grpc_answer(&balancer, "/test.Echo/Say");
    assert_eq!((status, content_type.as_str()), (200, "application/grpc"));
    assert_eq!(grpc_status, "2", "gRPC's own answer to a GET");
    assert_grpc_calls(grpc_listener, "through switchyard to an h2c peer");
    drop(balancer);

    let dir = tempfile::tempdir().unwrap();
    let (ca_file, files) = ca_and_certificate(dir.path(), "grpc-ca", &["grpc.test"]);
    let (cert, key) = (files.cert.as_os_str(), files.key.as_os_str());
    let tls = PythonPeer::start(
        "grpc_peer.py",
        &[
            "serve".as_ref(),
            "--cert".as_ref(),
            cert,
            "--key".as_ref(),
            key,
        ],
    );
    let settings = format!(
        "http2: true\ntls: {{ sni: grpc.test, ca_file: {} }}",
        ca_file.display()
    );
    let (balancer, grpc_listener) = grpc_balancer(&upstream(&tls.addr.to_string(), &settings));
    assert_eq!(
        balancer.peer_state(tls.addr),
        "UP",
        "probed over TLS, ALPN h2"
    );
    let (status, content_type, _) = grpc_answer(&balancer, "/test.Echo/Count");
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/grpc"),
        "{}",
        balancer.process.log()
    );
    assert_grpc_calls(grpc_listener, "through switchyard to a TLS peer");
}
