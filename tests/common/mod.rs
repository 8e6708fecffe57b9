//! Shared helpers of the end-to-end tests: real `switchyard` and demo
//! backend processes on 127.0.0.1 ephemeral ports, a small HTTP client, and
//! metric scraping. Every process is killed when its handle drops.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The `switchyard` binary under test.
pub fn switchyard_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_switchyard"))
}

/// The demo backend, built by `cargo test` next to the binary.
pub fn backend_bin() -> PathBuf {
    let bin = switchyard_bin();
    let dir = bin.parent().expect("binary has a directory");
    let path = dir.join("examples").join("backend");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --examples` (cargo test does)",
        path.display()
    );
    path
}

/// A loopback port that was free a moment ago and that no other test of
/// this binary got (the kernel readily hands out a just-released port again).
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind an ephemeral port");
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// Poll `condition` every 20 ms until it holds or `limit` passes; the time
/// it took, or `None`.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if condition() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// A child process killed on drop; its output goes to a file that is shown
/// when it has to be read.
pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(command: &mut Command, log: PathBuf) -> Process {
        let out = fs::File::create(&log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn process");
        Process { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send a signal (`"INT"`, `"TERM"`, `"STOP"`, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// Wait up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

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
        let dir = tempfile::tempdir().expect("temp dir");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
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
        let up = wait_until(Duration::from_secs(10), || accepts(addr));
        assert!(
            up.is_some(),
            "backend {name} did not start:\n{}",
            backend.process.log()
        );
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
}

/// A running balancer.
pub struct Balancer {
    pub listen: SocketAddr,
    pub metrics: SocketAddr,
    pub config_path: PathBuf,
    pub process: Process,
    pub dir: tempfile::TempDir,
}

/// The `server:` section tests use: short grace periods, files in `dir`.
pub fn server_section(dir: &Path) -> String {
    format!(
        "server:\n  threads: 2\n  pid_file: {}\n  upgrade_sock: {}\n  grace_period_seconds: 1\n  graceful_shutdown_timeout_seconds: 1\n",
        dir.join("switchyard.pid").display(),
        dir.join("upgrade.sock").display()
    )
}

/// A one-upstream config over `peers` (YAML list items, e.g. `127.0.0.1:1`
/// or `{ addr: ..., backup: true }`), probing every `interval_ms` with
/// rise = fall = 2.
pub fn upstream_section(name: &str, algorithm: &str, peers: &[String], interval_ms: u64) -> String {
    let mut text = format!("  {name}:\n    algorithm: {algorithm}\n    peers:\n");
    for peer in peers {
        text.push_str(&format!("      - {peer}\n"));
    }
    text.push_str(&format!(
        "    health_check:\n      path: /api/status\n      interval: {interval_ms}ms\n      timeout: 500ms\n      rise: 2\n      fall: 2\n"
    ));
    text
}

impl Balancer {
    /// Start a balancer with `upstreams` (the text under `upstreams:`) and
    /// wait until its proxy listener answers.
    pub fn start(upstreams: &str) -> Balancer {
        Balancer::start_with(upstreams, "")
    }

    /// Like [`Balancer::start`], with extra top-level YAML.
    pub fn start_with(upstreams: &str, extra: &str) -> Balancer {
        let dir = tempfile::tempdir().expect("temp dir");
        let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let metrics: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let config = format!(
            "{}listen: {listen}\nmetrics: {metrics}\n{extra}upstreams:\n{upstreams}",
            server_section(dir.path())
        );
        let config_path = dir.path().join("switchyard.yaml");
        fs::write(&config_path, config).expect("write config");
        let process = Process::spawn(
            Command::new(switchyard_bin())
                .arg("-c")
                .arg(&config_path)
                .env("RUST_LOG", "info"),
            dir.path().join("switchyard.log"),
        );
        let balancer = Balancer {
            listen,
            metrics,
            config_path,
            process,
            dir,
        };
        let up = wait_until(Duration::from_secs(15), || accepts(listen));
        assert!(
            up.is_some(),
            "switchyard did not start:\n{}",
            balancer.process.log()
        );
        balancer
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listen)
    }

    /// The `/check` text page.
    pub fn check(&self) -> String {
        let (status, body) = get(&self.url("/check"));
        assert_eq!(status, 200, "/check failed: {body}");
        body
    }

    /// The `/check` JSON page.
    pub fn check_json(&self) -> serde_json::Value {
        let (status, body) = get(&self.url("/check?format=json"));
        assert_eq!(status, 200, "/check?format=json failed: {body}");
        serde_json::from_str(&body).expect("/check JSON parses")
    }

    /// The state of `peer` on the text status page ("up" or "DOWN").
    pub fn peer_state(&self, peer: SocketAddr) -> String {
        let page = self.check();
        let prefix = format!("        {peer} ");
        page.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{peer} is not on the status page:\n{page}"))
            .to_string()
    }

    /// Scrape until `settled` holds (metrics are recorded just after the
    /// response is sent, so a client can be a moment ahead of them), or
    /// for at most two seconds; the last scrape either way.
    /// Wait until `peer` shows `state` ("up" or "DOWN") on the status page;
    /// how long that took. Panics with the page after five seconds.
    pub fn wait_for_state(&self, peer: SocketAddr, state: &str) -> Duration {
        wait_until(Duration::from_secs(5), || self.peer_state(peer) == state)
            .unwrap_or_else(|| panic!("{peer} is not {state}:\n{}", self.check()))
    }

    pub fn scrape_when(&self, settled: impl Fn(&Scrape) -> bool) -> Scrape {
        let start = Instant::now();
        loop {
            let scrape = self.scrape();
            if settled(&scrape) || start.elapsed() > Duration::from_secs(2) {
                return scrape;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn scrape(&self) -> Scrape {
        let (status, body) = get(&format!("http://{}/metrics", self.metrics));
        assert_eq!(status, 200, "metrics failed");
        Scrape::parse(&body)
    }
}

/// A parsed metrics page.
pub struct Scrape(prometheus_parse::Scrape);

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        Scrape(prometheus_parse::Scrape::parse(lines).expect("metrics parse"))
    }

    /// The sum of the scalar samples of `metric` whose labels include
    /// `labels`; `None` when there is no such sample.
    pub fn sum(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for sample in &self.0.samples {
            if sample.metric != metric
                || !labels.iter().all(|(k, v)| sample.labels.get(k) == Some(*v))
            {
                continue;
            }
            let value = match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => continue,
            };
            *found.get_or_insert(0.0) += value;
        }
        found
    }
}

fn agent() -> ureq::Agent {
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

fn request(agent: &ureq::Agent, url: &str) -> Result<(u16, String), ureq::Error> {
    let mut response = agent.get(url).call()?;
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
        request(&self.0, url).unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    /// GET `/api/data` through the balancer `n` times; the `backend` field
    /// of each answer (or `<status>` for a non-JSON answer).
    pub fn data_backends(&self, balancer: &Balancer, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let (status, body) = self.get(&balancer.url("/api/data"));
                serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|j| j["backend"].as_str().map(str::to_string))
                    .unwrap_or_else(|| format!("<{status}>"))
            })
            .collect()
    }
}

/// How many times `name` appears in `names`.
pub fn count(names: &[String], name: &str) -> usize {
    names.iter().filter(|n| *n == name).count()
}
