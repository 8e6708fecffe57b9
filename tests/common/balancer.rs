//! A balancer under test: its config file and addresses ([`Site`]), run in
//! the foreground ([`Balancer`]) or as a daemon ([`Daemon`]).

use super::client::{accepts, agent, get, Client};
use super::config::server_section;
use super::ports::free_port;
use super::process::{run_switchyard, switchyard_bin, wait_until, Process};
use super::scrape::Scrape;
use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A balancer's config file and addresses: all it takes to talk to one,
/// however it runs.
pub struct Site {
    pub listen: SocketAddr,
    pub metrics: SocketAddr,
    /// The admin API, when the config has one.
    pub admin: Option<Admin>,
    /// Listeners after the first (`listen`), as YAML list items.
    pub more_listeners: String,
    pub config_path: PathBuf,
    pub dir: tempfile::TempDir,
}

/// A site's admin API: where it listens, and the token it wants.
#[derive(Debug, Clone)]
pub struct Admin {
    pub listen: SocketAddr,
    pub token: Option<String>,
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
        Balancer::start_program(&switchyard_bin(), site)
    }

    /// Like [`Balancer::start_site`], with `program` (a binary built on the
    /// switchyard library) in place of `switchyard`.
    pub fn start_program(program: &Path, site: Site) -> Balancer {
        let process = Process::spawn(
            Command::new(program)
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

    /// Stop the balancer (SIGINT, as Ctrl-C) and wait for it to exit; its
    /// site, to start another on.
    pub fn stop(self) -> Site {
        let Balancer { site, mut process } = self;
        process.signal("INT");
        let exited = process.wait_exit(Duration::from_secs(15));
        assert!(
            exited.is_some(),
            "switchyard did not stop:\n{}",
            process.log()
        );
        site
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
            admin: None,
            more_listeners: String::new(),
            config_path,
            dir,
        };
        site.write_config(&site.config_path, upstreams, extra);
        site
    }

    /// Like [`Site::new`], with an admin API on a fresh loopback port that
    /// wants `token` (kept in a token file), if any.
    pub fn with_admin(upstreams: &str, extra: &str, token: Option<&str>) -> Site {
        let mut site = Site::new(upstreams, extra);
        if let Some(token) = token {
            fs::write(site.admin_token_file(), format!("{token}\n")).expect("write token file");
        }
        site.admin = Some(Admin {
            listen: ([127, 0, 0, 1], free_port()).into(),
            token: token.map(str::to_string),
        });
        site.write_config(&site.config_path, upstreams, extra);
        site
    }

    /// Like [`Site::new`], with the listeners `more` (YAML list items such
    /// as `  - { addr: ..., tls: ... }\n`) after the plain one at `listen`.
    pub fn with_listeners(upstreams: &str, extra: &str, more: &str) -> Site {
        let mut site = Site::new(upstreams, extra);
        site.more_listeners = more.to_string();
        site.write_config(&site.config_path, upstreams, extra);
        site
    }

    fn admin_token_file(&self) -> PathBuf {
        self.dir.path().join("admin.token")
    }

    /// The admin API's answer to `method path` with `body`, presenting
    /// `token` (not the site's: tests of the token use this).
    pub fn admin_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: &str,
    ) -> (u16, serde_json::Value) {
        let admin = self.admin.as_ref().expect("the site has an admin API");
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", admin.listen));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let request = request.body(body.to_string()).expect("an admin request");
        let mut response = agent()
            .run(request)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .expect("an admin answer");
        let json =
            serde_json::from_str(&text).unwrap_or_else(|_| serde_json::Value::String(text.clone()));
        (status, json)
    }

    /// The admin API's answer to `method path` with `body`, with the
    /// site's token.
    pub fn admin(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let token = self.admin.as_ref().and_then(|a| a.token.clone());
        self.admin_as(token.as_deref(), method, path, body)
    }

    /// `POST /upstreams/backend/peers/{peer}/{action}`, which must succeed.
    pub fn peer_action(&self, peer: SocketAddr, action: &str) -> serde_json::Value {
        let path = format!("/upstreams/backend/peers/{peer}/{action}");
        let (status, answer) = self.admin("POST", &path, "");
        assert_eq!(status, 200, "{path}: {answer}");
        answer
    }

    /// The peer `peer` as the admin API's `GET /upstreams` shows it.
    pub fn admin_peer(&self, peer: SocketAddr) -> serde_json::Value {
        let (status, answer) = self.admin("GET", "/upstreams", "");
        assert_eq!(status, 200, "{answer}");
        answer["upstreams"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|u| u["peers"].as_array().into_iter().flatten())
            .find(|p| p["address"] == peer.to_string())
            .cloned()
            .unwrap_or_else(|| panic!("{peer} is not in GET /upstreams: {answer}"))
    }

    /// Write a config for this site's ports and files to `path`.
    pub fn write_config(&self, path: &Path, upstreams: &str, extra: &str) {
        let admin = match &self.admin {
            None => String::new(),
            Some(admin) => {
                let mut section = format!("admin:\n  listen: \"{}\"\n", admin.listen);
                if admin.token.is_some() {
                    let file = self.admin_token_file();
                    section.push_str(&format!("  token_file: {}\n", file.display()));
                }
                section
            }
        };
        let listen = if self.more_listeners.is_empty() {
            format!("\"{}\"\n", self.listen)
        } else {
            format!(
                "\n  - {{ addr: \"{}\" }}\n{}",
                self.listen, self.more_listeners
            )
        };
        let config = format!(
            "{}  error_log: {}\nlisten: {listen}metrics: \"{}\"\n{admin}{extra}upstreams:\n{upstreams}",
            server_section(self.dir.path()),
            self.error_log().display(),
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

    /// The upstream `name` on the `/check` JSON page (null when there is
    /// none).
    pub fn upstream_json(&self, name: &str) -> serde_json::Value {
        let page = self.check_json();
        page["upstreams"]
            .as_array()
            .and_then(|all| all.iter().find(|u| u["name"] == name))
            .cloned()
            .unwrap_or_default()
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
    /// for at most five seconds (a loaded machine); the last scrape either
    /// way.
    pub fn scrape_when(&self, settled: impl Fn(&Scrape) -> bool) -> Scrape {
        let start = Instant::now();
        loop {
            let scrape = self.scrape();
            if settled(&scrape) || start.elapsed() > Duration::from_secs(5) {
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

impl Client {
    /// GET `/api/data` through the balancer `n` times; the `backend` field
    /// of each answer (or `<status>` for a non-JSON answer).
    pub fn data_backends(&self, balancer: &Site, n: usize) -> Vec<String> {
        (0..n).map(|_| self.data_backend(balancer, &[])).collect()
    }

    /// Which backend answered `/api/data` sent with the extra request
    /// `headers` (`<status>` when none did).
    pub fn data_backend(&self, balancer: &Site, headers: &[(&str, &str)]) -> String {
        let (status, body) = self.get_with(&balancer.url("/api/data"), headers);
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|j| j["backend"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("<{status}>"))
    }
}
