//! The command line as an operator uses it: `-t` checks a config like
//! `nginx -t`, bad configs are refused with the file, key and line, and the
//! built-in default config needs no file.

mod common;

use common::switchyard_bin;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(switchyard_bin())
        .args(args)
        .output()
        .expect("run switchyard")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

const VALID: &str = "listen: 127.0.0.1:18080
metrics: 127.0.0.1:16192
upstreams:
  backend:
    peers:
      - 127.0.0.1:8001
      - { addr: 127.0.0.1:8002, weight: 2 }
    health_check:
      path: /api/status
      interval: 1s
";

/// Write `yaml` to a file and run `switchyard -t -c` on it.
fn test_config(yaml: &str) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.yaml");
    std::fs::write(&path, yaml).unwrap();
    let path = path.display().to_string();
    (run(&["-t", "-c", &path]), path)
}

#[test]
fn a_valid_config_passes_the_test() {
    let (output, path) = test_config(VALID);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!(
            "switchyard: the configuration file {path} syntax is ok\n\
             switchyard: hook types: api_key, rate_limit\n\
             switchyard: configuration file {path} test is successful\n"
        )
    );
}

#[test]
fn the_test_warns_when_the_open_file_limit_may_be_too_low() {
    let yaml = format!("limits: {{ max_connections: 10000000 }}\n{VALID}");
    let (output, _) = test_config(&yaml);
    assert!(output.status.success(), "{}", text(&output));
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(
        errors
            .contains("switchyard: warning: limits.max_connections 10000000 may need up to 20000"),
        "{errors}"
    );
}

#[test]
fn the_built_in_config_needs_no_file() {
    let output = run(&["-t"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("<built-in conf/switchyard.yaml> syntax is ok"));
}

#[test]
fn each_kind_of_config_error_names_the_file_key_and_line() {
    let cases: &[(&str, &str, &str, &str)] = &[
        // (what, replace, with, expected in the message)
        (
            "unknown key",
            "    peers:\n",
            "    peer_list: []\n    peers:\n",
            "upstreams.backend: unknown field `peer_list`",
        ),
        (
            "wrong type",
            "interval: 1s",
            "interval: [1]",
            "upstreams.backend.health_check.interval: invalid type",
        ),
        (
            "bad address",
            "127.0.0.1:8001",
            "backend-1",
            "upstreams.backend.peers[0]: `backend-1` is not a peer address like 127.0.0.1:8001, [::1]:8001 or backend.internal:8001: it needs a port",
        ),
        (
            "bad duration",
            "interval: 1s",
            "interval: 1 fortnight",
            "upstreams.backend.health_check.interval: `1 fortnight` is not a duration",
        ),
        (
            "a peer at any address",
            "127.0.0.1:8001",
            "0.0.0.0:8001",
            "upstreams.backend.peers[0]: `0.0.0.0:8001`: 0.0.0.0 is not an address a peer can have",
        ),
        (
            "a peer on port 0",
            "127.0.0.1:8001",
            "127.0.0.1:0",
            "upstreams.backend.peers[0]: `127.0.0.1:0`: port 0 is not a port",
        ),
        (
            "zero weight",
            "weight: 2",
            "weight: 0",
            "upstreams.backend.peers[1].weight: 0 is not a weight",
        ),
        (
            "bad listen",
            "listen: 127.0.0.1:18080",
            "listen: 18080",
            "listen: 18080 is not an address",
        ),
        (
            "bad path",
            "path: /api/status",
            "path: api/status",
            "upstreams.backend.health_check.path: `api/status` is not a URL path",
        ),
    ];
    for (what, from, to, expected) in cases {
        let yaml = VALID.replacen(from, to, 1);
        assert_ne!(yaml, VALID, "case {what} changed nothing");
        let (output, path) = test_config(&yaml);
        let message = text(&output);
        assert!(!output.status.success(), "{what}: accepted\n{message}");
        assert!(
            message.contains(&format!("switchyard: {path}: ")),
            "{what}: no file\n{message}"
        );
        assert!(
            message.contains(expected),
            "{what}: expected `{expected}` in\n{message}"
        );
        assert!(message.contains(" at line "), "{what}: no line\n{message}");
        assert!(message.contains("test failed"), "{what}\n{message}");
    }
}

#[test]
fn an_empty_peer_list_is_refused() {
    let yaml = "upstreams:\n  backend:\n    peers: []\n";
    let (output, _) = test_config(yaml);
    let message = text(&output);
    assert!(!output.status.success());
    assert!(
        message.contains("upstreams.backend.peers: an upstream needs at least one peer at line 3"),
        "{message}"
    );
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let output = run(&["-t", "-c", "/nonexistent/switchyard.yaml"]);
    assert!(!output.status.success());
    assert!(text(&output).contains("/nonexistent/switchyard.yaml: cannot read the file"));
}

#[test]
fn an_invalid_config_does_not_start_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "upstreams: {}\n").unwrap();
    let output = run(&["-c", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("at least one upstream is needed"));
}
