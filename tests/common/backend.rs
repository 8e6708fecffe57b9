//! The demo backend, one process per backend.

use super::client::get;
use super::ports::free_port;
use super::process::{backend_bin, Process};
use super::scrape::Scrape;
use std::net::SocketAddr;
use std::process::Command;

/// One demo backend.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub process: Process,
    _dir: tempfile::TempDir,
}

impl Backend {
    /// Start a backend named `name` whose `/api/data` takes `delay_ms`.
    pub fn start(name: &str, delay_ms: u64) -> Backend {
        Backend::start_at(name, free_port(), delay_ms)
    }

    pub fn start_at(name: &str, port: u16, delay_ms: u64) -> Backend {
        Backend::start_on(name, ([127, 0, 0, 1], port).into(), delay_ms)
    }

    /// Start a backend named `name` on `addr` (any loopback address).
    pub fn start_on(name: &str, addr: SocketAddr, delay_ms: u64) -> Backend {
        let dir = tempfile::tempdir().expect("temp dir");
        let process = Process::spawn(
            Command::new(backend_bin())
                .arg("--listen")
                .arg(addr.to_string())
                .arg("--name")
                .arg(name)
                .arg("--delay-ms")
                .arg(delay_ms.to_string())
                .arg("--threads")
                .arg("1"),
            dir.path().join("backend.log"),
        );
        let backend = Backend {
            name: name.to_string(),
            addr,
            process,
            _dir: dir,
        };
        backend
            .process
            .wait_listening(addr, &format!("backend {name}"));
        backend
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Toggle the backend between 200 and 500; the new status.
    pub fn switch(&self) -> u16 {
        let (status, body) = get(&self.url("/api/switch"));
        assert_eq!(status, 200, "switch failed: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("switch answers JSON");
        json["status"].as_u64().expect("status field") as u16
    }

    /// The `/api/data` requests this backend has answered (its own count).
    pub fn data_requests(&self) -> f64 {
        let (_, metrics) = get(&self.url("/metrics"));
        Scrape::parse(&metrics)
            .sum("demo_backend_requests_total", &[("path", "/api/data")])
            .unwrap_or(0.0)
    }
}
