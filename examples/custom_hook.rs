//! A balancer with a hook of its own: requests name their tenant in
//! `X-Tenant`, and go to the upstream the hook's map gives for it; an
//! unknown or missing tenant gets 403. Everything else (health checks,
//! metrics, `/check`, reload, daemon, hot upgrade, the built-in hooks) is
//! switchyard's.
//!
//! ```yaml
//! hooks:
//!   tenants: { type: tenant, upstreams: { acme: blue, globex: green } }
//! routes:
//!   - upstream: blue
//!     hooks: [tenants]
//! ```
//! Run it as the stock binary: `cargo run --example custom_hook -- -c FILE`.

use std::collections::HashMap;
use std::process::ExitCode;
use switchyard::hooks::{async_trait, Answer, Hook, Request, StatusCode, Verdict};
use switchyard::Switchyard;

/// The hook's settings: its `hooks:` entry, less `type`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantSettings {
    /// Tenant -> upstream.
    upstreams: HashMap<String, String>,
}

/// Routes each request to its tenant's upstream.
struct Tenant {
    upstreams: HashMap<String, String>,
}

impl Tenant {
    fn from_config(settings: TenantSettings) -> Result<Tenant, String> {
        if settings.upstreams.is_empty() {
            return Err("upstreams: name at least one tenant".into());
        }
        Ok(Tenant {
            upstreams: settings.upstreams,
        })
    }
}

#[async_trait]
impl Hook for Tenant {
    async fn on_request(&self, request: &mut Request<'_>) -> Verdict {
        let tenant = request
            .headers()
            .get("x-tenant")
            .and_then(|v| v.to_str().ok());
        let Some(upstream) = tenant.and_then(|t| self.upstreams.get(t)) else {
            return Verdict::Answer(Answer::new(StatusCode::FORBIDDEN).body("unknown tenant\n"));
        };
        match request.send_to(upstream) {
            Ok(()) => Verdict::Continue,
            Err(e) => Verdict::Answer(Answer::new(StatusCode::BAD_GATEWAY).body(format!("{e}\n"))),
        }
    }
}

fn main() -> ExitCode {
    Switchyard::from_args()
        .hook_type("tenant", Tenant::from_config)
        .run()
}
