//! The process a pid file names, checked before anything is sent to it.
//!
//! A pid file outlives its process: after a crash or a reboot its number can
//! belong to anything (a shell, a database), and `kill -QUIT` to it would
//! do harm while `switchyard upgrade` reported a hand-over that never
//! happened. So before switchyard signals a pid from `server.pid_file`, it
//! checks that the process is a switchyard (its executable and command
//! line) serving this configuration: it holds the listening socket of the
//! configuration's `listen` address.

use crate::config::Config;
use procfs::process::{FDTarget, Process};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;

/// The pid of the switchyard that serves `config`, from its pid file, once
/// checked; why not otherwise. Nothing is sent to any process here.
pub fn serving_switchyard(config: &Config) -> Result<u32, String> {
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
    if !runs_ours || command.iter().skip(1).any(|arg| arg == "upgrade") {
        return Err(format!(
            "pid {pid} from {pid_file} is `{}`, not a running switchyard server",
            command.join(" ")
        ));
    }
    let listen = config.listen.0;
    if !holds_listener(&process, listen)? {
        return Err(format!(
            "pid {pid} from {pid_file} does not hold this configuration's listen socket {listen}: \
             it serves another configuration (a hot upgrade cannot change `listen`)"
        ));
    }
    u32::try_from(pid).map_err(|_| format!("pid file {pid_file} does not hold a pid"))
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
