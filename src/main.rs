//! The `switchyard` binary: command line -> config -> Pingora server -> run.
//! It only wires the library together, and chooses the allocator.

mod allocator;

use clap::Parser;
use std::process::ExitCode;
use switchyard::config::Config;
use switchyard::live::discovery;
use switchyard::process::cli::{Action, Cli};
use switchyard::process::open_files;
use switchyard::process::preflight::{self, Start};
use switchyard::process::{logging, pidfile, reload, signals, upgrade};

fn main() -> ExitCode {
    // Before anything could send one: a stray SIGHUP or SIGUSR1 must not
    // end the process.
    signals::ignore_until_handled();
    logging::init();

    let cli = Cli::parse();
    match cli.command {
        Some(Action::Upgrade) => return run_upgrade(&cli),
        Some(Action::Reload) => return run_reload(&cli),
        None => {}
    }

    let (config, source) = match Config::load(cli.conf.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("switchyard: {e}");
            if cli.test {
                eprintln!("switchyard: configuration file {} test failed", e.file);
            }
            return ExitCode::FAILURE;
        }
    };
    let open_files_warning = open_files::prepare(&config);
    if cli.test {
        println!("switchyard: the configuration file {source} syntax is ok");
        // Names that do not resolve now are warnings: a running switchyard
        // keeps trying them. The lines below say so once, not the log.
        log::set_max_level(log::LevelFilter::Off);
        let (_, unresolved) = discovery::resolve_at_start(&config);
        let config_warnings = config.warnings();
        for warning in open_files_warning
            .iter()
            .chain(&unresolved)
            .chain(&config_warnings)
        {
            eprintln!("switchyard: warning: {warning}");
        }
        println!("switchyard: configuration file {source} test is successful");
        return ExitCode::SUCCESS;
    }
    if let Some(warning) = &open_files_warning {
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
    match switchyard::process::server::build(config, cli.conf.clone(), cli.pingora_opt()) {
        Ok(server) => server.run_forever(),
        Err(e) => {
            eprintln!("switchyard: cannot start: {e}");
            ExitCode::FAILURE
        }
    }
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

fn run_reload(cli: &Cli) -> ExitCode {
    match reload::reload_running(cli.conf.as_deref()) {
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
