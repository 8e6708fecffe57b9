//! The access log and request ids: a JSON line with every field for a
//! proxied request and for one switchyard answers itself, the combined
//! format, SIGUSR1 reopening a rotated file and a reload changing path and
//! format, a writer stuck on a full pipe dropping lines without slowing
//! requests, `X-Request-ID` kept only from trusted proxies, and a bad
//! `access_log` key refused by `-t`.

mod common;

use common::raw_backend::RawBackend;
use common::{
    exchange, output_text, run_switchyard, single_peer, status_line, wait_until, Balancer, Client,
    Site,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A balancer over `peer` whose access log (`settings`: the keys besides
/// `path`) goes to `access.log` in its directory; `extra` is more
/// top-level YAML. The balancer and the log's path.
fn start(peer: &RawBackend, settings: &str, extra: &str) -> (Balancer, PathBuf) {
    let upstreams = single_peer(peer.addr);
    let site = Site::new(&upstreams, "");
    let path = site.dir.path().join("access.log");
    site.write_config(
        &site.config_path,
        &upstreams,
        &access_log_yaml(&path, settings, extra),
    );
    (Balancer::start_site(site), path)
}

fn access_log_yaml(path: &Path, settings: &str, extra: &str) -> String {
    format!(
        "access_log: {{ path: \"{}\", {settings} }}\n{extra}",
        path.display()
    )
}

/// The lines of `path` once it has at least `count` (within 5 s).
fn lines_when(path: &Path, count: usize) -> Vec<String> {
    let read = || {
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    wait_until(Duration::from_secs(5), || read().len() >= count);
    let lines = read();
    assert!(
        lines.len() >= count,
        "{} has {} lines, not {count}: {lines:?}",
        path.display(),
        lines.len()
    );
    lines
}

/// `request` sent on a connection of its own to `site`; the answer.
fn send(site: &Site, request: &str) -> String {
    exchange(site.listen, request.as_bytes(), Duration::from_secs(5))
}

/// The value of header `name` (lowercase) in an answer.
fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    answer
        .split("\r\n\r\n")
        .next()?
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

fn is_generated_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The JSON line whose `path` is `path`.
fn json_line(lines: &[String], path: &str) -> serde_json::Value {
    lines
        .iter()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON line"))
        .find(|value| value["path"] == path)
        .unwrap_or_else(|| panic!("no line for {path}: {lines:?}"))
}

#[test]
fn json_lines_name_every_field_of_proxied_and_refused_requests() {
    let peer = RawBackend::start(None);
    let routes =
        "routes:\n  - name: api\n    match: { path_prefix: /api/ }\n    upstream: backend\n";
    let (balancer, path) = start(&peer, "format: json", routes);

    // Proxied, with a body; the untrusted client's id is replaced.
    let answer = send(
        &balancer,
        "POST /api/echo?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\
         X-Request-ID: chosen-by-client\r\nConnection: close\r\n\r\nhello world",
    );
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    let proxied_id = header(&answer, "x-request-id").expect("an id in the answer");
    assert!(is_generated_id(proxied_id), "{proxied_id}");
    let seen = peer
        .received_under("/api/echo")
        .pop()
        .expect("the peer got it");
    assert_eq!(seen.header("x-request-id").as_deref(), Some(proxied_id));

    // Answered by switchyard itself: no route.
    let answer = send(
        &balancer,
        "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_line(&answer), "HTTP/1.1 404 Not Found", "{answer}");
    let refused_id = header(&answer, "x-request-id").expect("an id on a 404 too");
    assert!(is_generated_id(refused_id) && refused_id != proxied_id);

    let lines = lines_when(&path, 2);
    let proxied = json_line(&lines, "/api/echo?x=1");
    assert_eq!(proxied["method"], "POST");
    assert_eq!(proxied["protocol"], "HTTP/1.1");
    assert_eq!(proxied["client"], "127.0.0.1");
    assert_eq!(proxied["status"], 200);
    assert_eq!(proxied["bytes_in"], 11);
    assert_eq!(proxied["bytes_out"], 2, "the peer's `ok`");
    assert_eq!(proxied["route"], "api");
    assert_eq!(proxied["upstream"], "backend");
    assert_eq!(proxied["peer"], peer.addr.to_string());
    assert_eq!(proxied["attempts"], 1);
    assert_eq!(proxied["request_id"], proxied_id);
    let total = proxied["duration_ms"].as_f64().expect("duration_ms");
    let header_ms = proxied["upstream_header_ms"]
        .as_f64()
        .expect("upstream_header_ms");
    assert!(0.0 <= header_ms && header_ms <= total, "{proxied}");
    let time = proxied["time"].as_str().expect("time");
    let parsed = humantime::parse_rfc3339(time).expect("RFC 3339");
    let age = std::time::SystemTime::now().duration_since(parsed);
    assert!(age.is_ok_and(|age| age < Duration::from_secs(60)), "{time}");
    assert_eq!(time.len(), "2026-11-27T14:07:59.123Z".len(), "{time}");

    let refused = json_line(&lines, "/nowhere");
    assert_eq!(refused["status"], 404);
    assert_eq!(refused["bytes_in"], 0);
    assert!(refused["bytes_out"].as_u64().is_some_and(|n| n > 0));
    for none in ["route", "upstream", "peer", "upstream_header_ms"] {
        assert!(refused[none].is_null(), "{none}: {refused}");
    }
    assert_eq!(refused["attempts"], 0);
    assert!(refused["duration_ms"].as_f64().is_some());
    assert_eq!(refused["request_id"], refused_id);

    let scrape =
        balancer.scrape_when(|s| s.sum("switchyard_access_log_lines_total", &[]) >= Some(2.0));
    assert_eq!(
        scrape.sum("switchyard_access_log_lines_total", &[]),
        Some(2.0)
    );
}

/// `GET /c?q=1` with a referer and a user agent that needs escaping.
const COMBINED_REQUEST: &str = "GET /c?q=1 HTTP/1.1\r\nHost: x\r\nReferer: http://ref.example/\r\n\
                                User-Agent: agent \"quoted\"\r\nConnection: close\r\n\r\n";

/// Whether `line` is the combined line of [`COMBINED_REQUEST`].
fn is_combined_line(line: &str, peer: &RawBackend) -> bool {
    let pattern = format!(
        r#"^127\.0\.0\.1 - - \[\d{{2}}/[A-Z][a-z]{{2}}/\d{{4}}:\d{{2}}:\d{{2}}:\d{{2}} \+0000\] "GET /c\?q=1 HTTP/1\.1" 200 2 "http://ref\.example/" "agent \\x22quoted\\x22" route=backend upstream=backend peer={} attempts=1 request_time=\d+\.\d{{3}} upstream_header_time=\d+\.\d{{3}} request_id=[0-9a-f]{{32}}$"#,
        regex::escape(&peer.addr.to_string())
    );
    regex::Regex::new(&pattern)
        .expect("a valid pattern")
        .is_match(line)
}

#[test]
fn combined_lines_are_nginx_combined_then_switchyards_fields() {
    let peer = RawBackend::start(None);
    let (balancer, path) = start(&peer, "format: combined", "");
    let answer = send(&balancer, COMBINED_REQUEST);
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    let lines = lines_when(&path, 1);
    assert!(is_combined_line(&lines[0], &peer), "{}", lines[0]);
    let id = header(&answer, "x-request-id").expect("an id");
    assert!(lines[0].ends_with(&format!(" request_id={id}")));
}

#[test]
fn sigusr1_reopens_a_rotated_file_and_a_reload_changes_path_and_format() {
    let peer = RawBackend::start(None);
    let (balancer, path) = start(&peer, "format: json", "");
    let get = |target: &str| {
        let answer = send(
            &balancer,
            &format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    };
    get("/before");
    lines_when(&path, 1);

    // logrotate: move the file away, then SIGUSR1.
    let rotated = path.with_extension("log.1");
    fs::rename(&path, &rotated).expect("rotate");
    balancer.process.signal("USR1");
    let reopened = wait_until(Duration::from_secs(5), || {
        balancer.process.log().contains("reopened the access log")
    });
    assert!(reopened.is_some(), "{}", balancer.process.log());
    get("/after");
    let lines = lines_when(&path, 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(json_line(&lines, "/after")["status"], 200);
    let old = fs::read_to_string(&rotated).expect("the rotated file");
    assert_eq!(old.lines().count(), 1, "{old}");
    assert!(old.contains("\"/before\""), "{old}");

    // A reload: another file, another format, for the requests after it.
    let moved = balancer.dir.path().join("moved.log");
    balancer.write_config(
        &balancer.config_path,
        &single_peer(peer.addr),
        &access_log_yaml(&moved, "format: combined", ""),
    );
    balancer.process.signal("HUP");
    let scrape = balancer.scrape_when(|s| {
        s.sum("switchyard_config_reloads_total", &[("result", "success")]) == Some(1.0)
    });
    assert_eq!(
        scrape.sum("switchyard_config_reloads_total", &[("result", "success")]),
        Some(1.0),
        "{}",
        balancer.process.log()
    );
    let answer = send(&balancer, COMBINED_REQUEST);
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    let lines = lines_when(&moved, 1);
    assert!(is_combined_line(&lines[0], &peer), "{}", lines[0]);
    assert_eq!(
        lines_when(&path, 1).len(),
        1,
        "nothing more in the old path"
    );
}

/// Open the read end of the FIFO at `path` without waiting for a writer.
fn open_fifo_reader(path: &Path) -> fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .expect("open the FIFO for reading")
}

#[test]
fn a_writer_stuck_on_a_full_pipe_drops_lines_and_never_slows_requests() {
    let peer = RawBackend::start(None);
    let upstreams = single_peer(peer.addr);
    let site = Site::new(&upstreams, "");
    let fifo = site.dir.path().join("access.fifo");
    // Opened and never read: the pipe fills up, then the writer blocks.
    let _reader = open_fifo_reader(&fifo);
    site.write_config(
        &site.config_path,
        &upstreams,
        &access_log_yaml(&fifo, "buffer: 16", ""),
    );
    let balancer = Balancer::start_site(site);

    let client = Client::new();
    let url = balancer.url("/flood");
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..1500 {
        let sent = Instant::now();
        let (status, _) = client.get(&url);
        assert_eq!(status, 200);
        slowest = slowest.max(sent.elapsed());
    }
    // 1500 lines are far more than a pipe (64 KiB), the writer's buffer
    // (64 KiB) and the queue (16) hold.
    assert!(
        slowest < Duration::from_secs(3),
        "a request took {slowest:?} (all: {:?})",
        started.elapsed()
    );
    let scrape =
        balancer.scrape_when(|s| s.sum("switchyard_access_log_dropped_total", &[]) > Some(0.0));
    let dropped = scrape
        .sum("switchyard_access_log_dropped_total", &[])
        .unwrap_or_default();
    assert!(dropped > 0.0, "nothing dropped");
    assert!(dropped < 1500.0, "{dropped}: the writer wrote nothing");

    // The stuck writer does not hold the process up when it stops.
    balancer.stop();
}

#[test]
fn a_request_id_is_kept_only_from_a_trusted_proxy() {
    let peer = RawBackend::start(None);
    let (balancer, path) = start(&peer, "format: json", "trusted_proxies: [127.0.0.1/32]\n");
    let send_id = |target: &str, id: Option<&str>| {
        let line = id.map_or(String::new(), |id| format!("X-Request-ID: {id}\r\n"));
        let answer = send(
            &balancer,
            &format!("GET {target} HTTP/1.1\r\nHost: x\r\n{line}Connection: close\r\n\r\n"),
        );
        assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
        let returned = header(&answer, "x-request-id").expect("an id").to_string();
        let seen = peer.received_under(target).pop().expect("the peer got it");
        assert_eq!(seen.header("x-request-id").as_deref(), Some(&*returned));
        returned
    };
    assert_eq!(send_id("/kept", Some("proxy-id-42")), "proxy-id-42");
    let long = "x".repeat(129);
    assert!(is_generated_id(&send_id("/long", Some(&long))));
    assert!(is_generated_id(&send_id("/none", None)));
    let lines = lines_when(&path, 3);
    assert_eq!(json_line(&lines, "/kept")["request_id"], "proxy-id-42");
    assert_eq!(json_line(&lines, "/kept")["client"], "127.0.0.1");
}

#[test]
fn request_ids_can_be_turned_off() {
    let peer = RawBackend::start(None);
    let site = Site::new(&single_peer(peer.addr), "request_id: false\n");
    let balancer = Balancer::start_site(site);
    let answer = send(
        &balancer,
        "GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    assert_eq!(header(&answer, "x-request-id"), None);
    let seen = peer
        .received_under("/plain")
        .pop()
        .expect("the peer got it");
    assert_eq!(seen.header("x-request-id"), None);
}

#[test]
fn a_bad_access_log_format_is_refused_with_its_key_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("switchyard.yaml");
    let peer: std::net::SocketAddr = ([127, 0, 0, 1], 9).into();
    let text = format!(
        "access_log:\n  path: /tmp/access.log\n  format: xml\nupstreams:\n{}",
        single_peer(peer)
    );
    fs::write(&config, text).expect("write the config");
    let output = run_switchyard(
        &["-t".as_ref(), "-c".as_ref(), config.as_os_str()],
        Duration::from_secs(10),
    );
    let text = output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains(
            "access_log.format: unknown variant `xml`, expected `json` or `combined` at line 3"
        ),
        "{text}"
    );
}
