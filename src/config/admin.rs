//! The `admin:` section: the admin API's own listener and its token.

use super::scalar::Addr;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The environment variable that holds the admin token when `token_file`
/// is not set.
pub const TOKEN_ENV: &str = "SWITCHYARD_ADMIN_TOKEN";

/// `admin:` keys. Without the section there is no admin listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// The admin API listener. Default: 127.0.0.1:6193.
    #[serde(default = "default_admin_listen")]
    pub listen: Addr,
    /// A file holding the token every admin request must present
    /// (`Authorization: Bearer <token>`); else `SWITCHYARD_ADMIN_TOKEN`;
    /// else no token (loopback listeners only).
    #[serde(default)]
    pub token_file: Option<String>,
}

fn default_admin_listen() -> Addr {
    Addr(SocketAddr::from(([127, 0, 0, 1], 6193)))
}

impl AdminConfig {
    /// The token admin requests must present: the first line of
    /// `token_file`, else `SWITCHYARD_ADMIN_TOKEN`, else none. An empty or
    /// unreadable token file is an error (never "no token").
    pub fn token(&self) -> Result<Option<String>, String> {
        if let Some(file) = &self.token_file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read the token file {file}: {e}"))?;
            let token = text.lines().next().unwrap_or_default().trim();
            if token.is_empty() {
                return Err(format!("the token file {file} is empty"));
            }
            return Ok(Some(token.to_string()));
        }
        Ok(std::env::var(TOKEN_ENV)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty()))
    }

    /// Why this section is unsafe or unusable, if it is: a token that
    /// cannot be read, or a listener others can reach without a token.
    pub fn check(&self) -> Result<(), String> {
        let token = self.token()?;
        let ip = self.listen.0.ip();
        if token.is_none() && !ip.is_loopback() {
            return Err(format!(
                "{} is not a loopback address and the admin API has no token: anyone who \
                 reaches it could change the balancer; set admin.token_file (or {TOKEN_ENV}) \
                 or listen on 127.0.0.1",
                self.listen.0
            ));
        }
        Ok(())
    }
}
