//! The `switchyard` binary: command line -> config -> Pingora server -> run.

use clap::Parser;
use std::process::ExitCode;
use switchyard::cli::Cli;
use switchyard::config::Config;

fn main() -> ExitCode {
    // switchyard logs every peer state change itself, with the reason;
    // Pingora's load-balancing module would log each one a second time.
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,pingora_load_balancing=error"),
    )
    .init();

    let cli = Cli::parse();
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
    if cli.test {
        println!("switchyard: the configuration file {source} syntax is ok");
        println!("switchyard: configuration file {source} test is successful");
        return ExitCode::SUCCESS;
    }

    match switchyard::server::build(&config, cli.pingora_opt()) {
        Ok(server) => server.run_forever(),
        Err(e) => {
            eprintln!("switchyard: cannot start: {e}");
            ExitCode::FAILURE
        }
    }
}
