//! [`Switchyard`]: the whole balancer as a library call, with the stock
//! binary's command line, signals, reload, daemon and hot upgrade, plus
//! whatever hook types the caller registers.

use super::cli::{Action, Cli};
use super::preflight::{self, Start};
use super::{healthcheck, logging, open_files, pidfile, reload, server, signals, upgrade};
use crate::config::Config;
use crate::hooks::{Hook, HookTypes};
use crate::listen::listeners::ListenerSet;
use crate::live::discovery;
use clap::Parser;
use serde::de::DeserializeOwned;
use std::fmt::Display;
use std::process::ExitCode;
use std::sync::Arc;

/// A balancer to run: where its configuration comes from, and the hook
/// types it knows.
///
/// ```no_run
/// use switchyard::Switchyard;
///
/// fn main() -> std::process::ExitCode {
///     Switchyard::from_args().run()
/// }
/// ```
pub struct Switchyard {
    cli: Cli,
    /// A configuration given as a value rather than read from `-c`.
    config: Option<Config>,
    hook_types: HookTypes,
}

impl Switchyard {
    /// A balancer configured by the command line, as the `switchyard`
    /// binary is (`-c FILE`, `-d`, `-u`, `-t`, `upgrade`, `reload`; `--help`
    /// says more), with the built-in hook types (`api_key`, `rate_limit`).
    /// A bad command line prints why and exits, as every command does.
    pub fn from_args() -> Self {
        Self::prepare();
        Switchyard {
            cli: Cli::parse(),
            config: None,
            hook_types: HookTypes::built_in(),
        }
    }

    /// A balancer serving `config`, with the built-in hook types. It runs
    /// in the foreground; with no file to re-read, a reload changes
    /// nothing.
    pub fn from_config(config: Config) -> Self {
        Self::prepare();
        Switchyard {
            cli: Cli::parse_from(["switchyard"]),
            config: Some(config),
            hook_types: HookTypes::built_in(),
        }
    }

    /// Before anything could send one, a stray SIGHUP or SIGUSR1 must not
    /// end the process; and logging goes to stderr.
    fn prepare() {
        signals::ignore_until_handled();
        logging::init();
    }

    /// Add the hook type `name`: `hooks:` entries of `type: name` are built
    /// by `make` from their other keys, deserialized as `S` (errors name
    /// the file, the key and the line). Replaces a type of that name,
    /// built-in ones included.
    pub fn hook_type<S, H, E, F>(mut self, name: &str, make: F) -> Self
    where
        S: DeserializeOwned,
        H: Hook,
        E: Display,
        F: Fn(S) -> Result<H, E> + Send + Sync + 'static,
    {
        self.hook_types.register(name, make);
        self
    }

    /// Do what the command line says: check the configuration (`-t`), run
    /// the balancer until it is told to stop, or run `upgrade`, `reload` or `healthcheck`.
    /// What goes wrong is printed; the exit code says whether it did.
    pub fn run(self) -> ExitCode {
        match self.cli.command {
            Some(Action::Upgrade) => return run_upgrade(&self.cli),
            Some(Action::Reload) => return run_reload(&self.cli, &self.hook_types),
            Some(Action::Healthcheck) => return run_healthcheck(&self.cli),
            None => {}
        }
        let cli = &self.cli;
        let loaded = match self.config {
            Some(config) => {
                let source = "<configuration given by the program>";
                config.checked(source).map(|c| (c, source.to_string()))
            }
            None => Config::load(cli.conf.as_deref()),
        };
        let (config, source) = match loaded {
            Ok(loaded) => loaded,
            Err(e) => return config_failed(cli, &e.file, &e.to_string()),
        };
        let hooks = match self.hook_types.instantiate(&config.hooks, None) {
            Ok(hooks) => hooks,
            Err(e) => return config_failed(cli, &source, &format!("{source}: {e}")),
        };
        let listeners = match ListenerSet::load(&config.listen) {
            Ok(listeners) => listeners,
            Err(e) => return config_failed(cli, &source, &format!("{source}: {e}")),
        };
        let open_files_warning = open_files::prepare(&config);
        if cli.test {
            println!("switchyard: the configuration file {source} syntax is ok");
            // Names that do not resolve now are warnings: a running
            // switchyard keeps trying them. The lines below say so once,
            // not the log.
            log::set_max_level(log::LevelFilter::Off);
            let (_, unresolved) = discovery::resolve_at_start(&config);
            let config_warnings = config.warnings();
            for warning in open_files_warning
                .iter()
                .chain(&unresolved)
                .chain(&config_warnings)
                .chain(listeners.warnings())
            {
                eprintln!("switchyard: warning: {warning}");
            }
            let types: Vec<&str> = self.hook_types.names().collect();
            println!("switchyard: hook types: {}", types.join(", "));
            println!("switchyard: configuration file {source} test is successful");
            return ExitCode::SUCCESS;
        }
        for warning in open_files_warning.iter().chain(listeners.warnings()) {
            log::warn!("{warning}");
        }

        let daemon = cli.daemon || config.server.daemon;
        let start = if cli.upgrade {
            Start::Upgrade
        } else {
            Start::Fresh
        };
        if let Err(e) = preflight::check(&config, daemon, start) {
            eprintln!("switchyard: cannot start with {source}: {e}");
            return ExitCode::FAILURE;
        }
        // A daemon's pid file is Pingora's to write, once it has forked.
        if !daemon {
            if let Err(e) = pidfile::write_own(&config) {
                log::warn!("cannot write the pid file {}: {e}", config.server.pid_file);
            }
        }
        let file = cli.conf.clone();
        let hook_types = Arc::new(self.hook_types);
        match server::build(
            config,
            file,
            cli.pingora_opt(),
            hook_types,
            hooks,
            listeners,
        ) {
            Ok(server) => server.run_forever(),
            Err(e) => {
                eprintln!("switchyard: cannot start: {e}");
                ExitCode::FAILURE
            }
        }
    }
}

/// A configuration that cannot be used: said, and (with `-t`) that the
/// test failed.
fn config_failed(cli: &Cli, file: &str, message: &str) -> ExitCode {
    eprintln!("switchyard: {message}");
    if cli.test {
        eprintln!("switchyard: configuration file {file} test failed");
    }
    ExitCode::FAILURE
}

fn run_upgrade(cli: &Cli) -> ExitCode {
    match upgrade::upgrade(cli.conf.as_deref()) {
        Ok(done) => {
            let old = if done.old_exited {
                "has exited"
            } else {
                "is still draining"
            };
            println!(
                "switchyard: upgraded: pid {} -> {} in {:.1?}; pid {} {old}",
                done.old_pid, done.new_pid, done.took, done.old_pid
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchyard: upgrade failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_healthcheck(cli: &Cli) -> ExitCode {
    match healthcheck::check(cli.conf.as_deref()) {
        Ok(answer) => {
            println!("switchyard: healthy: {answer}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchyard: not healthy: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_reload(cli: &Cli, hook_types: &HookTypes) -> ExitCode {
    match reload::reload_running(cli.conf.as_deref(), hook_types) {
        Ok(done) => {
            match &done.changes {
                Some(changes) => println!("switchyard: reloaded: {changes}"),
                None => println!(
                    "switchyard: reloaded: pid {} applied the file (configure `admin:` to see what changed)",
                    done.pid
                ),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchyard: reload failed: {e}");
            ExitCode::FAILURE
        }
    }
}
