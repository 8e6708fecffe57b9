//! The process a pid file names, checked before anything is sent to it.
//!
//! A pid file outlives its process: after a crash or a reboot its number can
//! belong to anything (a shell, a database), and `kill -QUIT` to it would
//! do harm while `switchyard upgrade` reported a hand-over that never
//! happened. So before switchyard signals a pid from `server.pid_file`, it
//! checks that the process is a switchyard (its executable and command
//! line) serving this configuration: it holds the listening socket of the
//! configuration's `listen` address.

use super::cli::Cli;
use crate::config::Config;
use clap::Parser;
use procfs::process::{FDTarget, Process};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The pid of the switchyard that serves `config`, from its pid file, once
/// checked; why not otherwise. Nothing is sent to any process here.
pub fn serving_switchyard(config: &Config) -> Result<u32, String> {
    let running = running_switchyard(config)?;
    let listen = config.listen.first();
    if !holds_listener(&running.process, listen)? {
        return Err(format!(
            "pid {} from {} does not hold this configuration's listen socket {listen}: \
             it serves another configuration (a hot upgrade cannot change `listen`)",
            running.pid, config.server.pid_file
        ));
    }
    Ok(running.pid)
}

/// A switchyard server that a pid file names.
pub struct Running {
    pub pid: u32,
    process: Process,
    /// Its command line.
    command: Vec<String>,
}

impl Running {
    /// The configuration file the process was started with (`-c`), as an
    /// absolute path; `None` when it runs the built-in configuration.
    pub fn config_file(&self) -> Result<Option<PathBuf>, String> {
        let cli = Cli::try_parse_from(&self.command)
            .map_err(|e| format!("cannot read the command line of pid {}: {e}", self.pid))?;
        let Some(file) = cli.conf else {
            return Ok(None);
        };
        let cwd = self
            .process
            .cwd()
            .map_err(|e| format!("cannot read the directory of pid {} ({e})", self.pid))?;
        Ok(Some(cwd.join(file)))
    }
}

/// The switchyard server that `config`'s pid file names: a running process
/// of this program, not one of its commands (`upgrade`, `reload`).
pub fn running_switchyard(config: &Config) -> Result<Running, String> {
    let pid_file = &config.server.pid_file;
    let text = std::fs::read_to_string(pid_file).map_err(|e| {
        format!("cannot read pid file {pid_file}: {e}; is switchyard running with server.pid_file {pid_file}?")
    })?;
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| format!("pid file {pid_file} does not hold a pid"))?;
    let process = Process::new(pid).map_err(|_| {
        format!("pid {pid} from {pid_file} is not running; start switchyard instead")
    })?;
    let ours = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_name().map(|n| n.to_os_string()))
        .ok_or("cannot tell this program's own name")?;

    let exe = process
        .exe()
        .map_err(|e| format!("cannot read the executable of pid {pid} ({e})"))?;
    if binary_name(&exe).as_deref() != Some(ours.as_os_str()) {
        return Err(format!(
            "pid {pid} from {pid_file} runs {}, not {}",
            exe.display(),
            ours.to_string_lossy()
        ));
    }
    let command = process
        .cmdline()
        .map_err(|e| format!("cannot read the command line of pid {pid} ({e})"))?;
    let runs_ours = command
        .first()
        .and_then(|argv0| Path::new(argv0).file_name())
        .is_some_and(|name| name == ours);
    let is_command = Cli::try_parse_from(&command).map_or(true, |cli| cli.command.is_some());
    if !runs_ours || is_command {
        return Err(format!(
            "pid {pid} from {pid_file} is `{}`, not a running switchyard server",
            command.join(" ")
        ));
    }
    let pid = u32::try_from(pid).map_err(|_| format!("pid file {pid_file} does not hold a pid"))?;
    Ok(Running {
        pid,
        process,
        command,
    })
}

/// Write this process's pid to `server.pid_file`, as nginx does in the
/// foreground too (a daemon's is written by Pingora), so that `switchyard
/// reload` and `upgrade` find it.
pub fn write_own(config: &Config) -> std::io::Result<()> {
    std::fs::write(&config.server.pid_file, format!("{}\n", std::process::id()))
}

/// The file name of an executable as /proc shows it (`switchyard`, also
/// when the file was replaced since: `switchyard (deleted)`).
fn binary_name(exe: &Path) -> Option<std::ffi::OsString> {
    let name = exe.file_name()?.to_string_lossy().into_owned();
    let name = name.strip_suffix(" (deleted)").unwrap_or(&name).to_string();
    Some(OsStr::new(&name).to_os_string())
}

/// Whether `process` holds a TCP socket listening on `listen`.
fn holds_listener(process: &Process, listen: SocketAddr) -> Result<bool, String> {
    let table = if listen.is_ipv4() {
        procfs::net::tcp()
    } else {
        procfs::net::tcp6()
    }
    .map_err(|e| format!("cannot read the TCP socket table ({e})"))?;
    let listening: HashSet<u64> = table
        .iter()
        .filter(|entry| {
            entry.state == procfs::net::TcpState::Listen && entry.local_address == listen
        })
        .map(|entry| entry.inode)
        .collect();
    if listening.is_empty() {
        return Ok(false);
    }
    let descriptors = process
        .fd()
        .map_err(|e| format!("cannot read the open files of pid {} ({e})", process.pid))?;
    Ok(descriptors
        .flatten()
        .any(|fd| matches!(fd.target, FDTarget::Socket(inode) if listening.contains(&inode))))
}

/// Send `signal` to `pid` (0: only check that it exists).
pub fn signal(pid: u32, signal: libc::c_int) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
