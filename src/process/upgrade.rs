//! `switchyard upgrade`: a hot binary or config upgrade without dropping a
//! request, in one command that either completes or changes nothing.
//!
//! Pingora's upgrade is a handshake between two processes: the new one,
//! started with `-u`, waits on `server.upgrade_sock`; the old one, on
//! SIGQUIT, sends its listening sockets there, stops accepting and drains
//! for the grace period. This command runs the handshake in the only safe
//! order: check the new config, start the new process, wait until it waits
//! on the socket, only then signal the old one, and wait until the new one
//! serves and the old one is gone.

use super::pidfile::{self, signal};
use crate::config::Config;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the new process may take to start waiting on the upgrade
/// socket (it loads and checks the config first).
const SOCKET_LIMIT: Duration = Duration::from_secs(15);

/// After handing its listeners over, the old process keeps accepting for
/// this long (Pingora's `CLOSE_TIMEOUT`) so that no connection meets a
/// closed port, and only then starts its grace period.
const HANDOVER_OVERLAP: Duration = Duration::from_secs(5);

/// Slack on top of the old process's overlap, grace period and shutdown
/// timeout.
const EXIT_SLACK: Duration = Duration::from_secs(5);

/// What a completed upgrade did.
#[derive(Debug)]
pub struct Upgraded {
    pub old_pid: u32,
    pub new_pid: u32,
    /// Whether the old process has exited (it may still be draining when
    /// its grace period is longer than we wait).
    pub old_exited: bool,
    pub took: Duration,
}

/// Upgrade the running switchyard to this binary with the config at
/// `conf` (the built-in one when `None`). Errors say what happened to the
/// running process.
pub fn upgrade(conf: Option<&Path>) -> Result<Upgraded, String> {
    let started = Instant::now();
    let (config, source) =
        Config::load(conf).map_err(|e| format!("{e}\nthe running switchyard was not touched"))?;
    println!("switchyard: the configuration file {source} syntax is ok");
    let pid_file = &config.server.pid_file;
    // Nothing is sent to a process that is not this configuration's
    // switchyard.
    let old_pid = pidfile::serving_switchyard(&config)
        .map_err(|e| format!("{e}; nothing was sent, nothing was changed"))?;

    let socket = Path::new(&config.server.upgrade_sock);
    let stale_socket = socket_identity(socket);
    let mut new = spawn_new(conf)?;
    wait_for_new_socket(&mut new, socket, stale_socket).map_err(|e| {
        let _ = new.kill();
        let _ = new.wait();
        format!("{e}; pid {old_pid} keeps serving, nothing was changed")
    })?;

    // Checked again just before the signal: the new process took a while.
    match pidfile::serving_switchyard(&config) {
        Ok(pid) if pid == old_pid => {}
        outcome => {
            let _ = new.kill();
            let _ = new.wait();
            let why = outcome
                .err()
                .unwrap_or_else(|| format!("the pid file changed from {old_pid}"));
            return Err(format!("{why}; nothing was sent, nothing was changed"));
        }
    }
    signal(old_pid, libc::SIGQUIT)
        .map_err(|e| format!("cannot send SIGQUIT to pid {old_pid}: {e}; nothing was changed"))?;
    println!("switchyard: pid {old_pid} is handing its listeners over");

    // `-d` returns once the new process's listeners accept, or fails.
    let status = new
        .wait()
        .map_err(|e| format!("lost track of the new process: {e}"))?;
    if !status.success() {
        return Err(format!(
            "the new process did not start ({status}); pid {old_pid} handed over its listeners and is draining; see server.error_log and start switchyard again"
        ));
    }
    let new_pid = read_pid(pid_file).map_err(|e| format!("the new process started but {e}"))?;

    let drain = HANDOVER_OVERLAP
        + Duration::from_secs(
            config.server.grace_period_seconds + config.server.graceful_shutdown_timeout_seconds,
        )
        + EXIT_SLACK;
    let drained = Instant::now();
    while alive(old_pid) && drained.elapsed() < drain {
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Upgraded {
        old_pid,
        new_pid,
        old_exited: !alive(old_pid),
        took: started.elapsed(),
    })
}

/// Start this very binary as the new process: `-u -d [-c FILE]`.
fn spawn_new(conf: Option<&Path>) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let mut command = Command::new(exe);
    command
        .arg("--upgrade")
        .arg("--daemon")
        .stdin(Stdio::null());
    if let Some(conf) = conf {
        command.arg("--conf").arg(conf);
    }
    command
        .spawn()
        .map_err(|e| format!("cannot start the new process: {e}"))
}

/// Wait until the new process listens on the upgrade socket (a socket file
/// other than the stale one, if any, that was there before).
fn wait_for_new_socket(
    new: &mut Child,
    socket: &Path,
    stale: Option<(u64, u64)>,
) -> Result<(), String> {
    let waited = Instant::now();
    loop {
        if let Some(status) = new.try_wait().map_err(|e| e.to_string())? {
            return Err(format!(
                "the new process exited ({status}) before taking over"
            ));
        }
        let current = socket_identity(socket);
        if current.is_some() && current != stale {
            return Ok(());
        }
        if waited.elapsed() > SOCKET_LIMIT {
            return Err(format!(
                "the new process did not open {} within {SOCKET_LIMIT:?}",
                socket.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Device and inode of the socket file at `path`, if there is one.
fn socket_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::symlink_metadata(path).ok()?;
    meta.file_type()
        .is_socket()
        .then(|| (meta.dev(), meta.ino()))
}

fn read_pid(pid_file: &str) -> Result<u32, String> {
    let text = std::fs::read_to_string(pid_file)
        .map_err(|e| format!("cannot read pid file {pid_file}: {e}"))?;
    text.trim()
        .parse()
        .map_err(|_| format!("pid file {pid_file} does not hold a pid"))
}

/// Whether a process with this pid exists (signal 0 checks without sending).
fn alive(pid: u32) -> bool {
    match signal(pid, 0) {
        Ok(()) => true,
        Err(e) => e.raw_os_error() == Some(libc::EPERM),
    }
}
