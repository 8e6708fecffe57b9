//! Reloading the configuration file of a running balancer: what SIGHUP,
//! the admin API's `POST /reload` and `switchyard reload` do.
//!
//! The file the process was started with is read again and checked exactly
//! as `-t` checks it; what it changes is applied to the live snapshot as a
//! whole ([`Live::apply`]), or nothing is (an invalid file, or a change of
//! what only a restart can change). A process running the built-in
//! configuration has no file to re-read.

use super::pidfile::{self, signal};
use super::readiness::reachable;
use crate::admin::api::Reload;
use crate::config::Config;
use crate::hooks::HookTypes;
use crate::live::changes::{Changes, ReloadError};
use crate::live::Live;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The reload of one process: its live configuration and the file it was
/// started with.
pub struct FileReload {
    live: Arc<Live>,
    /// `None`: the built-in configuration.
    file: Option<PathBuf>,
}

impl FileReload {
    pub fn new(live: Arc<Live>, file: Option<PathBuf>) -> Self {
        FileReload { live, file }
    }
}

#[async_trait::async_trait]
impl Reload for FileReload {
    /// Re-read the file, resolve the peer names it adds, and apply it; the
    /// outcome is logged and counted.
    async fn reload(&self) -> Result<Changes, ReloadError> {
        let Some(file) = &self.file else {
            let why = "the process runs the built-in configuration: there is no file to re-read";
            log::warn!("reload: {why}");
            return Err(ReloadError::Invalid(why.to_string()));
        };
        let outcome = match Config::load(Some(file)) {
            Ok((config, _)) => {
                for warning in config.warnings() {
                    log::warn!("{file}: {warning}", file = file.display());
                }
                self.live.resolve_new_names(&config).await;
                self.live.apply(config, &file.display().to_string())
            }
            Err(e) => {
                self.live.count_refused();
                Err(ReloadError::Invalid(e.to_string()))
            }
        };
        match &outcome {
            Ok(changes) => log::info!("reloaded {}: {changes}", file.display()),
            Err(ReloadError::Invalid(text)) => {
                log::error!("reload refused, the running configuration is unchanged: {text}")
            }
            Err(e) => log::error!("reload of {} refused: {e}", file.display()),
        }
        outcome
    }
}

/// What `switchyard reload` got done.
#[derive(Debug)]
pub struct Reloaded {
    pub pid: u32,
    /// What changed, when the running process said (through its admin API).
    pub changes: Option<String>,
}

/// How long a running switchyard may take to answer a reload.
const ANSWER_LIMIT: Duration = Duration::from_secs(30);

/// `switchyard reload [-c FILE]`: check the file (its hooks against
/// `hook_types` too), then ask the switchyard
/// that runs it to reload it: through its admin API when the configuration
/// has one (the answer says what changed, or why not), else by SIGHUP,
/// whose outcome its reload counters tell. Errors say why nothing changed.
pub fn reload_running(conf: Option<&Path>, hook_types: &HookTypes) -> Result<Reloaded, String> {
    let untouched = "the running switchyard was not touched";
    let (config, source) = Config::load(conf).map_err(|e| format!("{e}\n{untouched}"))?;
    hook_types
        .instantiate(&config.hooks, None)
        .map_err(|e| format!("{source}: {e}\n{untouched}"))?;
    println!("switchyard: the configuration file {source} syntax is ok");
    let running =
        pidfile::running_switchyard(&config).map_err(|e| format!("{e}; nothing was sent"))?;
    let pid = running.pid;
    let runs = running.config_file()?;
    if !same_file(conf, runs.as_deref()) {
        let runs = match &runs {
            Some(file) => format!("{}: run `switchyard reload -c {}`", file.display(), file.display()),
            None => "the built-in configuration, which has no file to re-read: start it with -c FILE to reload".to_string(),
        };
        return Err(format!(
            "pid {pid} does not run {source}, it runs {runs}; nothing was sent"
        ));
    }
    match &config.admin {
        Some(admin) => {
            let token = admin.token()?;
            let changes = reload_through_admin(admin.listen.0, token.as_deref())?;
            Ok(Reloaded {
                pid,
                changes: Some(changes),
            })
        }
        None => {
            reload_by_signal(pid, config.metrics.0)?;
            Ok(Reloaded { pid, changes: None })
        }
    }
}

/// Whether `asked` (the `-c` given, `None`: the built-in configuration) is
/// the file `runs` a process runs.
fn same_file(asked: Option<&Path>, runs: Option<&Path>) -> bool {
    match (asked, runs) {
        (None, None) => true,
        (Some(asked), Some(runs)) => match (asked.canonicalize(), runs.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        },
        _ => false,
    }
}

/// An HTTP client for a running switchyard's own listeners (admin API,
/// metrics, status page), answering within `limit`; a status is an answer,
/// not an error.
pub fn agent(limit: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(limit))
        .build()
        .into()
}

/// `POST /reload` on the admin API at `listen`: the summary of changes, or
/// the running process's error.
fn reload_through_admin(listen: SocketAddr, token: Option<&str>) -> Result<String, String> {
    let url = format!("http://{}/reload", reachable(listen));
    let mut request = agent(ANSWER_LIMIT).post(&url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let mut response = request
        .send_empty()
        .map_err(|e| format!("cannot reach the admin API at {url}: {e}; nothing was changed"))?;
    let status = response.status().as_u16();
    let body: serde_json::Value = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        .map_err(|e| format!("the admin API at {url} answered {status} without JSON: {e}"))?;
    let text = |key: &str| body.get(key).and_then(|v| v.as_str()).map(str::to_string);
    match (status, text("reloaded"), text("error")) {
        (200, Some(summary), _) => Ok(summary),
        (_, _, Some(error)) => Err(error),
        _ => Err(format!("the admin API at {url} answered {status}: {body}")),
    }
}

/// SIGHUP to `pid`, then wait until its reload counters (on the metrics
/// listener at `metrics`) say how the reload went.
fn reload_by_signal(pid: u32, metrics: SocketAddr) -> Result<(), String> {
    let url = format!("http://{}/metrics", reachable(metrics));
    let before = reload_counts(&url)?;
    signal(pid, libc::SIGHUP).map_err(|e| format!("cannot send SIGHUP to pid {pid}: {e}"))?;
    let started = Instant::now();
    while started.elapsed() < ANSWER_LIMIT {
        std::thread::sleep(Duration::from_millis(20));
        let now = reload_counts(&url)?;
        if now.success > before.success {
            return Ok(());
        }
        if now.failure > before.failure {
            return Err(format!(
                "pid {pid} refused the reload and runs its old configuration; its log says why \
                 (configure `admin:` to see the reason here)"
            ));
        }
    }
    Err(format!(
        "sent SIGHUP to pid {pid}, but its reload counters at {url} did not move in {ANSWER_LIMIT:?}"
    ))
}

/// `switchyard_config_reloads_total` by result.
#[derive(Debug, Default, Clone, Copy)]
struct ReloadCounts {
    success: f64,
    failure: f64,
}

fn reload_counts(url: &str) -> Result<ReloadCounts, String> {
    let mut response = agent(ANSWER_LIMIT)
        .get(url)
        .call()
        .map_err(|e| format!("cannot read the metrics at {url}: {e}"))?;
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("cannot read the metrics at {url}: {e}"))?;
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .map_err(|e| format!("the metrics at {url} do not parse: {e}"))?;
    let mut counts = ReloadCounts::default();
    for sample in scrape
        .samples
        .iter()
        .filter(|s| s.metric == "switchyard_config_reloads_total")
    {
        let prometheus_parse::Value::Counter(value) = sample.value else {
            continue;
        };
        match sample.labels.get("result") {
            Some("success") => counts.success = value,
            Some("failure") => counts.failure = value,
            _ => {}
        }
    }
    Ok(counts)
}
