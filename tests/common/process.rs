//! Child processes of the tests (switchyard, the demo backend) killed on
//! drop, the binaries under test, and polling.

use super::client::accepts;
use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
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
    example_bin("backend")
}

/// The example program `name` (`examples/NAME.rs`), built by `cargo test`
/// next to the binary.
pub fn example_bin(name: &str) -> PathBuf {
    let bin = switchyard_bin();
    let dir = bin.parent().expect("binary has a directory");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --examples` (cargo test does)",
        path.display()
    );
    path
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

    /// Wait up to 10 s until this process (`what`, for the message) accepts
    /// connections on `addr`; panics with its log otherwise.
    pub fn wait_listening(&self, addr: SocketAddr, what: &str) {
        let up = wait_until(Duration::from_secs(10), || accepts(addr));
        assert!(up.is_some(), "{what} did not start:\n{}", self.log());
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
