//! The command line: Pingora's flags (`-c`, `-d`, `-u`, `-t`), with
//! switchyard's meaning for `-c` (its own config file), and the `upgrade`,
//! `reload` and `healthcheck` commands.

use clap::{Parser, Subcommand};
use pingora_core::server::configuration::Opt;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "An HTTP (L7) load balancer built on Pingora"
)]
pub struct Cli {
    /// The configuration file [default: the built-in conf/switchyard.yaml]
    #[arg(short, long, value_name = "FILE", global = true)]
    pub conf: Option<PathBuf>,

    /// Run in the background (writes server.pid_file); returns once the
    /// listeners accept connections
    #[arg(short, long)]
    pub daemon: bool,

    /// Take over the listening sockets of a running switchyard through
    /// server.upgrade_sock (the old process hands them over on SIGQUIT);
    /// `switchyard upgrade` does the whole exchange
    #[arg(short, long)]
    pub upgrade: bool,

    /// Check the configuration and exit, like `nginx -t`
    #[arg(short, long)]
    pub test: bool,

    #[command(subcommand)]
    pub command: Option<Action>,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Hot upgrade: start this binary with the config (-c) as a daemon, hand
    /// it the listeners of the running switchyard (found through
    /// server.pid_file) and let the old process drain; changes nothing if
    /// the new config or process fails
    Upgrade,
    /// Reload the running switchyard's config file (-c): check it, then
    /// apply it through the admin API (which reports what changed), else by
    /// SIGHUP to the pid in server.pid_file; changes nothing if the file is
    /// invalid or needs a restart
    Reload,
    /// Whether the switchyard that runs the config (-c) serves: its status
    /// page on the first plain-HTTP listener (else its metrics) answers
    /// 200 within 5 s; exits non-zero otherwise. For a container's
    /// HEALTHCHECK
    Healthcheck,
}

impl Cli {
    /// The options Pingora's server acts on. The config path stays with
    /// switchyard: Pingora would read the file as its own format.
    pub fn pingora_opt(&self) -> Opt {
        Opt {
            upgrade: self.upgrade,
            daemon: self.daemon,
            nocapture: false,
            test: self.test,
            conf: None,
        }
    }
}
