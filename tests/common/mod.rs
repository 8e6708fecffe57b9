//! Shared helpers of the end-to-end tests: real `switchyard` and demo
//! backend processes on 127.0.0.1 ephemeral ports, a small HTTP client, and
//! metric scraping. Every process is killed when its handle drops.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod raw_backend;

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The `switchyard` binary under test: the one cargo built, or the one
/// `SWITCHYARD_TEST_BIN` names (to run a test against another build, e.g.
/// to see it fail before a fix).
pub fn switchyard_bin() -> PathBuf {
    std::env::var_os("SWITCHYARD_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_switchyard")))
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
    pub fn spawn(command: &mut Command, log: PathBuf) -> Process {
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

/// A one-upstream config over the single peer at `peer`, probed once a
/// minute (the first probe decides its state; few probes, so a test can
/// count the peer's connections).
pub fn single_peer(peer: SocketAddr) -> String {
    upstream_section("backend", "round_robin", &[peer.to_string()], 60_000)
}

/// The `server:` section tests use: short grace periods, files in `dir`.
pub fn server_section(dir: &Path) -> String {
    format!(
        "server:\n  threads: 2\n  pid_file: {}\n  upgrade_sock: {}\n  grace_period_seconds: 2\n  graceful_shutdown_timeout_seconds: 1\n",
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

/// A balancer's config file and addresses: all it takes to talk to one,
/// however it runs.
pub struct Site {
    pub listen: SocketAddr,
    pub metrics: SocketAddr,
    pub config_path: PathBuf,
    pub dir: tempfile::TempDir,
}

/// A balancer running in the foreground, killed on drop.
pub struct Balancer {
    pub site: Site,
    pub process: Process,
}

impl std::ops::Deref for Balancer {
    type Target = Site;
    fn deref(&self) -> &Site {
        &self.site
    }
}

impl Balancer {
    /// Start a balancer with `upstreams` (the text under `upstreams:`) and
    /// wait until its proxy listener answers.
    pub fn start(upstreams: &str) -> Balancer {
        Balancer::start_with(upstreams, "")
    }

    /// Like [`Balancer::start`], with extra top-level YAML.
    pub fn start_with(upstreams: &str, extra: &str) -> Balancer {
        Balancer::start_site(Site::new(upstreams, extra))
    }

    /// Start a balancer for `site` and wait until its proxy listener answers.
    pub fn start_site(site: Site) -> Balancer {
        let process = Process::spawn(
            Command::new(switchyard_bin())
                .arg("-c")
                .arg(&site.config_path)
                .env("RUST_LOG", "info"),
            site.dir.path().join("switchyard.log"),
        );
        let balancer = Balancer { site, process };
        let up = wait_until(Duration::from_secs(15), || accepts(balancer.listen));
        assert!(
            up.is_some(),
            "switchyard did not start:\n{}",
            balancer.process.log()
        );
        balancer
    }
}

impl Site {
    /// A config with `upstreams`, `extra` top-level YAML, fresh ports, and
    /// pid file, upgrade socket and error log in a temporary directory.
    pub fn new(upstreams: &str, extra: &str) -> Site {
        Site::listening_on([127, 0, 0, 1].into(), upstreams, extra)
    }

    /// Like [`Site::new`], with the proxy listening on `ip` (`::` for a
    /// dual-stack listener).
    pub fn listening_on(ip: std::net::IpAddr, upstreams: &str, extra: &str) -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let listen = SocketAddr::new(ip, free_port());
        let metrics: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let config_path = dir.path().join("switchyard.yaml");
        let site = Site {
            listen,
            metrics,
            config_path,
            dir,
        };
        site.write_config(&site.config_path, upstreams, extra);
        site
    }

    /// Write a config for this site's ports and files to `path`.
    pub fn write_config(&self, path: &Path, upstreams: &str, extra: &str) {
        let config = format!(
            "{}  error_log: {}\nlisten: \"{}\"\nmetrics: \"{}\"\n{extra}upstreams:\n{upstreams}",
            server_section(self.dir.path()),
            self.error_log().display(),
            self.listen,
            self.metrics
        );
        fs::write(path, config).expect("write config");
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.path().join("switchyard.pid")
    }

    /// Where a daemon logs.
    pub fn error_log(&self) -> PathBuf {
        self.dir.path().join("error.log")
    }

    /// The pid in the pid file, if any.
    pub fn pid(&self) -> Option<u32> {
        fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()
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

    /// The state of `peer` on the text status page ("UP" or "DOWN").
    pub fn peer_state(&self, peer: SocketAddr) -> String {
        let page = self.check();
        let prefix = format!("        {peer} ");
        page.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{peer} is not on the status page:\n{page}"))
            .to_string()
    }

    /// Wait until `peer` shows `state` ("UP" or "DOWN") on the status page;
    /// how long that took. Panics with the page after five seconds.
    pub fn wait_for_state(&self, peer: SocketAddr, state: &str) -> Duration {
        wait_until(Duration::from_secs(5), || self.peer_state(peer) == state)
            .unwrap_or_else(|| panic!("{peer} is not {state}:\n{}", self.check()))
    }

    /// Scrape until `settled` holds (metrics are recorded just after the
    /// response is sent, so a client can be a moment ahead of them), or
    /// for at most two seconds; the last scrape either way.
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
    pub fn data_backends(&self, balancer: &Site, n: usize) -> Vec<String> {
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

/// Whether process `pid` exists.
pub fn alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Run `switchyard` with `args` to completion (at most `limit`).
pub fn run_switchyard(args: &[&std::ffi::OsStr], limit: Duration) -> std::process::Output {
    let mut child = Command::new(switchyard_bin())
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn switchyard");
    let started = Instant::now();
    while child.try_wait().expect("poll switchyard").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("switchyard {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect switchyard output")
}

/// The output of a finished command, stdout then stderr.
pub fn output_text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A switchyard started with `-d`; every process that held its pid file is
/// killed on drop (a daemon is not our child).
pub struct Daemon {
    pub site: Site,
    seen: Mutex<BTreeSet<u32>>,
}

impl std::ops::Deref for Daemon {
    type Target = Site;
    fn deref(&self) -> &Site {
        &self.site
    }
}

impl Daemon {
    /// `switchyard -d -c <site config>`: the command's output, and the
    /// daemon if it started.
    pub fn start(site: Site) -> (std::process::Output, Option<Daemon>) {
        let output = run_switchyard(
            &["-d".as_ref(), "-c".as_ref(), site.config_path.as_os_str()],
            Duration::from_secs(60),
        );
        let daemon = output.status.success().then(|| Daemon {
            site,
            seen: Mutex::new(BTreeSet::new()),
        });
        if let Some(daemon) = &daemon {
            daemon.current_pid();
        }
        (output, daemon)
    }

    /// The pid in the pid file now (remembered for cleanup).
    pub fn current_pid(&self) -> u32 {
        let pid = self.site.pid().expect("daemon wrote its pid file");
        self.seen.lock().unwrap().insert(pid);
        pid
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.site.error_log()).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(pid) = self.site.pid() {
            self.seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(pid);
        }
        for pid in self.seen.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// What a load run saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub requests: usize,
    pub errors: usize,
    /// Requests answered with a 5xx status.
    pub server_errors: usize,
    /// The slowest request.
    pub max_latency: Duration,
    /// A few of the errors, for the failure message.
    pub samples: Vec<String>,
}

/// Keep-alive clients that GET `url` in a loop until stopped.
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    workers: Vec<std::thread::JoinHandle<LoadReport>>,
}

impl Load {
    /// Start `clients` keep-alive clients on `url`; a request counts as
    /// failed unless it gets a 200.
    pub fn start(url: &str, clients: usize) -> Load {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let workers = (0..clients)
            .map(|_| {
                let url = url.to_string();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let agent = agent();
                    let mut report = LoadReport::default();
                    while !stop.load(Ordering::Relaxed) {
                        report.requests += 1;
                        let started = Instant::now();
                        let outcome = request(&agent, &url);
                        report.max_latency = report.max_latency.max(started.elapsed());
                        let failure = match outcome {
                            Ok((200, _)) => None,
                            Ok((status, body)) => {
                                if status >= 500 {
                                    report.server_errors += 1;
                                }
                                Some(format!("{status}: {body}"))
                            }
                            Err(e) => Some(e.to_string()),
                        };
                        if let Some(failure) = failure {
                            report.errors += 1;
                            if report.samples.len() < 5 {
                                report.samples.push(failure);
                            }
                        }
                    }
                    report
                })
            })
            .collect();
        Load { stop, workers }
    }

    /// Stop the clients and add up what they saw.
    pub fn finish(self) -> LoadReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut total = LoadReport::default();
        for worker in self.workers {
            let report = worker.join().expect("load client");
            total.requests += report.requests;
            total.errors += report.errors;
            total.server_errors += report.server_errors;
            total.max_latency = total.max_latency.max(report.max_latency);
            total.samples.extend(report.samples);
        }
        total
    }
}
