//! Peers written in Python for what the demo backend does not speak: TLS
//! (`tests/tls_peer.py`) and gRPC (`tests/grpc_peer.py`, grpcio). They run
//! under Debian's `/usr/bin/python3`, where `python3-grpcio` installs
//! (scripts/test.sh installs it).

use super::ports::free_port;
use super::process::Process;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The interpreter the scripts run under.
pub const PYTHON: &str = "/usr/bin/python3";

/// One peer script running on a loopback port.
pub struct PythonPeer {
    pub addr: SocketAddr,
    pub process: Process,
    _dir: tempfile::TempDir,
}

/// `tests/NAME`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

impl PythonPeer {
    /// Run `tests/SCRIPT ARGS... --port PORT` on a fresh port and wait
    /// until it accepts connections.
    pub fn start<S: AsRef<OsStr>>(name: &str, args: &[S]) -> PythonPeer {
        let dir = tempfile::tempdir().expect("temp dir");
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let process = Process::spawn(
            Command::new(PYTHON)
                .arg(script(name))
                .args(args)
                .arg("--port")
                .arg(addr.port().to_string()),
            dir.path().join("peer.log"),
        );
        let peer = PythonPeer {
            addr,
            process,
            _dir: dir,
        };
        peer.process.wait_listening(addr, name);
        peer
    }
}

/// Run `tests/SCRIPT ARGS...` to its end.
pub fn run_script<S: AsRef<OsStr>>(name: &str, args: &[S]) -> Output {
    Command::new(PYTHON)
        .arg(script(name))
        .args(args)
        .output()
        .expect("run a python script")
}
