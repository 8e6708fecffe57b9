//! Reloading the configuration file of a running balancer: what SIGHUP and
//! `switchyard reload` do.
//!
//! The file the process was started with is read again and checked exactly
//! as `-t` checks it; what it changes is applied to the live snapshot as a
//! whole ([`Live::apply`]), or nothing is (an invalid file, or a change of
//! what only a restart can change). A process running the built-in
//! configuration has no file to re-read.

use crate::config::Config;
use crate::live::changes::{Changes, ReloadError};
use crate::live::Live;
use std::path::Path;

/// Re-read `file` (`None`: the process runs the built-in configuration)
/// and apply it to `live`; the outcome is logged.
pub fn reload(live: &Live, file: Option<&Path>) -> Result<Changes, ReloadError> {
    let Some(file) = file else {
        let why = "the process runs the built-in configuration: there is no file to re-read";
        log::warn!("reload: {why}");
        return Err(ReloadError::Invalid(why.to_string()));
    };
    let outcome = Config::load(Some(file))
        .map_err(|e| ReloadError::Invalid(e.to_string()))
        .and_then(|(config, _)| live.apply(config));
    match &outcome {
        Ok(changes) => log::info!("reloaded {}: {changes}", file.display()),
        Err(ReloadError::Invalid(text)) => {
            live.count_refused();
            log::error!("reload refused, the running configuration is unchanged: {text}")
        }
        Err(e) => log::error!("reload of {} refused: {e}", file.display()),
    }
    outcome
}
