//! The process around the balancer: the command line, checks before
//! starting, the open-file limit, readiness, signals, hot upgrade, and the
//! pid file check that guards every signal sent to another process. The
//! core (config, request path, health, metrics) knows nothing of it.

pub mod cli;
pub mod healthcheck;
pub mod logging;
pub mod open_files;
pub mod pidfile;
pub mod preflight;
pub mod readiness;
pub mod reload;
pub mod server;
pub mod signals;
pub mod switchyard;
pub mod upgrade;
