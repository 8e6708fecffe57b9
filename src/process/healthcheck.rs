//! `switchyard healthcheck`: whether the switchyard that runs a
//! configuration serves, for a container's `HEALTHCHECK` (like
//! `traefik healthcheck`): the runtime image has no curl, and a check made
//! by the binary itself finds the right port in the configuration.
//!
//! It asks what a client would reach: the status page (`status_path`) on
//! the first listener that answers plain HTTP requests, or, when every
//! listener needs TLS, a PROXY header or redirects, the metrics listener.
//! Healthy means a `200` within [`ANSWER_LIMIT`]; the status page is
//! answered by switchyard itself, so a balancer whose peers are all DOWN is
//! still a healthy process (its `/check` says what is wrong).

use super::readiness::reachable;
use super::reload::agent;
use crate::config::Config;
use std::path::Path;
use std::time::Duration;

/// How long the answer may take: well inside Docker's default
/// `HEALTHCHECK --timeout` (30 s).
pub const ANSWER_LIMIT: Duration = Duration::from_secs(5);

/// The URL `config`'s balancer is asked.
pub fn url(config: &Config) -> String {
    let plain = config
        .listen
        .0
        .iter()
        .find(|l| l.tls.is_none() && !l.proxy_protocol && !l.redirect_https);
    match plain {
        Some(listener) => format!(
            "http://{}{}",
            reachable(listener.addr.0),
            config.status_path.0
        ),
        None => format!("http://{}/metrics", reachable(config.metrics.0)),
    }
}

/// Check the balancer that runs `conf` (`None`: the built-in
/// configuration): the URL asked and its answer, or why it is not healthy.
pub fn check(conf: Option<&Path>) -> Result<String, String> {
    let (config, _) = Config::load(conf).map_err(|e| e.to_string())?;
    let url = url(&config);
    let response = agent(ANSWER_LIMIT)
        .get(&url)
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    match response.status().as_u16() {
        200 => Ok(format!("GET {url}: 200")),
        code => Err(format!("GET {url}: {code}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        let base = "upstreams:\n  backend:\n    peers: [127.0.0.1:8001]\n";
        Config::parse(&format!("{yaml}{base}"), "test.yaml").expect("a valid configuration")
    }

    #[test]
    fn asks_the_status_page_of_the_first_plain_listener() {
        let plain = config("listen: 0.0.0.0:8080\nstatus_path: /health\n");
        assert_eq!(url(&plain), "http://127.0.0.1:8080/health");
        let behind = config(
            "listen:\n  - { addr: \"[::]:8443\", proxy_protocol: true }\n  - { addr: \"127.0.0.2:8081\" }\n",
        );
        assert_eq!(url(&behind), "http://127.0.0.2:8081/check");
    }

    #[test]
    fn asks_the_metrics_listener_when_no_listener_is_plain() {
        let only = config(
            "listen:\n  - { addr: \"0.0.0.0:8080\", proxy_protocol: true }\nmetrics: 0.0.0.0:6192\n",
        );
        assert_eq!(url(&only), "http://127.0.0.1:6192/metrics");
    }
}
