//! switchyard's one configuration file, typed.
//!
//! The YAML is parsed into [`Config`] in one pass; every value is checked as
//! it is read (see `scalar.rs`), so an error names the file, the key path and
//! the line. The structs here are the single source of truth for defaults;
//! `conf/switchyard.yaml` documents each key.

mod access_log;
mod admin;
mod hooks;
mod limits;
mod listen;
mod peer;
pub(crate) mod pem;
mod resolver;
mod routes;
mod scalar;
mod server;
mod upstream;
mod upstream_tls;

pub use access_log::{AccessLogConfig, AccessLogFormat, DEFAULT_BUFFER, STDERR_PATH};
pub use admin::{AdminConfig, TOKEN_ENV};
pub use hooks::{HookConfig, Hooks};
pub use limits::{allowed, private_networks, DenyRule, EscapedSlashes, LimitsConfig};
pub use listen::{CertificateFiles, ListenerConfig, Listeners, TlsConfig, TlsVersion};
pub use peer::{PeerConfig, PeerList, PeerName, PeerTarget};
pub use resolver::{Family, ResolverConfig, MIN_REFRESH};
pub use routes::{
    ActionConfig, HeaderEdits, MatchConfig, RedirectConfig, RespondConfig, RouteConfig, SplitTarget,
};
pub use scalar::{
    Addr, Cidr, HashKey, HeaderName, HeaderValue, HostPattern, HostPort, Interval, MethodName,
    PathRegex, PeerAddr, Percentage, PositiveCount, QueueSize, RequestLimit, ServerName,
    SplitWeight, SrvName, StatusCode, Threshold, UrlPath, Weight,
};
pub use server::ServerSettings;
pub use upstream::{
    Algorithm, HealthCheckConfig, PassiveHealthConfig, QueueConfig, StatusList, TimeoutsConfig,
    UpstreamConfig, Upstreams,
};
pub use upstream_tls::{CaFile, UpstreamTlsConfig};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

/// The default configuration, built into the binary so it runs anywhere.
pub const DEFAULT_CONFIG: &str = include_str!("../../conf/switchyard.yaml");

/// What the default configuration is called in messages.
pub const DEFAULT_CONFIG_NAME: &str = "<built-in conf/switchyard.yaml>";

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Process settings (threads, pid file, upgrade socket, grace period).
    #[serde(default)]
    pub server: ServerSettings,
    /// The proxy's listeners: one address, or a list (TLS, HTTP/2).
    #[serde(default = "default_listen")]
    pub listen: Listeners,
    /// The Prometheus metrics listener.
    #[serde(default = "default_metrics")]
    pub metrics: Addr,
    /// The admin API (none without this section).
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// Where the proxy listener answers with the peer status page itself.
    #[serde(default = "default_status_path")]
    pub status_path: UrlPath,
    /// Who may see the status page (empty: everyone). Default: loopback and
    /// the private networks.
    #[serde(default = "private_networks")]
    pub status_allow: Vec<Cidr>,
    /// Paths refused (403) to clients outside the rule's networks.
    #[serde(default)]
    pub deny: Vec<DenyRule>,
    /// `%2F` in request paths: forwarded as sent, or refused.
    #[serde(default)]
    pub escaped_slashes: EscapedSlashes,
    /// Proxies (networks) whose forwarding headers (`X-Forwarded-For`,
    /// `X-Real-IP`, `X-Forwarded-Proto`, `X-Forwarded-Host`, `Forwarded`)
    /// are believed; from everyone else they are replaced.
    #[serde(default)]
    pub trusted_proxies: Vec<Cidr>,
    /// One line per request (none without this section).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<AccessLogConfig>,
    /// Give every request an `X-Request-ID` (kept from a trusted proxy,
    /// else generated), sent to the peer, returned and logged.
    #[serde(default = "default_request_id")]
    pub request_id: bool,
    /// Bounds on client requests and connections.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// How peer names (`host:port`, `srv:`) are resolved.
    #[serde(default)]
    pub resolver: ResolverConfig,
    /// Which requests go where, in order: the first route that matches
    /// serves the request. Without routes, a single upstream takes every
    /// request (and several are told apart by their `path_prefix`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
    /// Named hook instances, each of a hook type the binary has, that
    /// routes name in their `hooks:`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub hooks: Hooks,
    /// The upstreams and their peers.
    pub upstreams: Upstreams,
}

fn default_listen() -> Listeners {
    Listeners(vec![ListenerConfig::plain(SocketAddr::from((
        [0, 0, 0, 0],
        8080,
    )))])
}

fn default_metrics() -> Addr {
    Addr(SocketAddr::from(([127, 0, 0, 1], 6192)))
}

fn default_request_id() -> bool {
    true
}

fn default_status_path() -> UrlPath {
    UrlPath("/check".to_string())
}

/// A configuration that could not be read or is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or [`DEFAULT_CONFIG_NAME`]).
    pub file: String,
    /// What is wrong, with the key path and line where known.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Load the file at `path`, or the built-in default when `None`.
    pub fn load(path: Option<&Path>) -> Result<(Config, String), ConfigError> {
        match path {
            None => Config::parse(DEFAULT_CONFIG, DEFAULT_CONFIG_NAME)
                .map(|c| (c, DEFAULT_CONFIG_NAME.to_string())),
            Some(path) => {
                let file = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                    file: file.clone(),
                    message: format!("cannot read the file: {e}"),
                })?;
                Config::parse(&text, &file).map(|c| (c, file))
            }
        }
    }

    /// Check a configuration built in code (not read by [`Config::parse`])
    /// as a file is checked: every value, and what refers to what. Errors
    /// name `source` and lines of the configuration written out as YAML.
    pub fn checked(self, source: &str) -> Result<Config, ConfigError> {
        let text = serde_yaml::to_string(&self).map_err(|e| ConfigError {
            file: source.to_string(),
            message: e.to_string(),
        })?;
        Config::parse(&text, source)
    }

    /// Parse and validate YAML text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let error = |message: String| ConfigError {
            file: file.to_string(),
            message,
        };
        let mut config: Config = serde_yaml::from_str(text).map_err(|e| error(e.to_string()))?;
        for (name, hook) in &mut config.hooks {
            hook.line = hooks::line_of_entry(text, "hooks", name);
            if !hooks::valid_name(name) {
                return Err(error(format!(
                    "hooks: `{name}` is not a valid hook name (1-64 letters, digits, `_`, `-`, `.`){}",
                    hook.at_line()
                )));
            }
        }
        config.listen.check().map_err(|(index, e)| {
            let line = line_of_list_item(text, "listen", index);
            error(format!("listen[{index}].{e}{line}"))
        })?;
        for (index, listener) in config.listen.0.iter_mut().enumerate() {
            listener.at_line = line_of_list_item(text, "listen", index);
        }
        if config.listen.contains(config.metrics.0) {
            return Err(error(format!(
                "metrics: {} is also a proxy `listen` address{}",
                config.metrics.0,
                line_of_top_level_key(text, "metrics")
            )));
        }
        if let Some(admin) = &config.admin {
            let line = line_of_top_level_key(text, "admin");
            let taken = (config.listen.contains(admin.listen.0).then_some("listen"))
                .or((admin.listen == config.metrics).then_some("metrics"));
            if let Some(key) = taken {
                return Err(error(format!(
                    "admin.listen: {} is also the `{key}` address{line}",
                    admin.listen.0
                )));
            }
            admin
                .check()
                .map_err(|e| error(format!("admin: {e}{line}")))?;
        }
        config.resolver.check().map_err(|e| {
            error(format!(
                "resolver.{e}{}",
                line_of_top_level_key(text, "resolver")
            ))
        })?;
        if let Some(access_log) = &config.access_log {
            access_log.check().map_err(|e| {
                error(format!(
                    "access_log.{e}{}",
                    line_of_top_level_key(text, "access_log")
                ))
            })?;
        }
        config.check_routes(text).map_err(error)?;
        Ok(config)
    }

    /// Routes name upstreams that exist; without routes, the upstreams can
    /// be told apart.
    fn check_routes(&self, text: &str) -> Result<(), String> {
        let upstreams = &self.upstreams.0;
        for (index, route) in self.routes.iter().enumerate() {
            let name = route.effective_name(index);
            if (0..index).any(|before| self.routes[before].effective_name(before) == name) {
                return Err(format!(
                    "routes[{index}].name: `{name}` names an earlier route too (names tell routes apart in metrics and logs){}",
                    line_of_list_item(text, "routes", index)
                ));
            }
            if let Some(name) = route.hooks.iter().find(|h| !self.hooks.contains_key(*h)) {
                let known: Vec<&str> = self.hooks.keys().map(String::as_str).collect();
                let known = if known.is_empty() {
                    "`hooks:` defines none".to_string()
                } else {
                    format!("hooks: {}", known.join(", "))
                };
                return Err(format!(
                    "routes[{index}].hooks: no hook `{name}` ({known}){}",
                    line_of_list_item(text, "routes", index)
                ));
            }
            if let Some((at, name)) = route
                .hooks
                .iter()
                .enumerate()
                .find(|(at, name)| route.hooks[..*at].contains(name))
            {
                return Err(format!(
                    "routes[{index}].hooks[{at}]: `{name}` is named twice (it would run twice){}",
                    line_of_list_item(text, "routes", index)
                ));
            }
            for name in route.upstreams() {
                if !upstreams.contains_key(name) {
                    let known: Vec<&str> = upstreams.keys().map(String::as_str).collect();
                    return Err(format!(
                        "routes[{index}]: no upstream `{name}` (upstreams: {}){}",
                        known.join(", "),
                        line_of_list_item(text, "routes", index)
                    ));
                }
            }
        }
        if !self.routes.is_empty() {
            if let Some((name, _)) = upstreams.iter().find(|(_, u)| u.path_prefix.is_some()) {
                return Err(format!(
                    "upstreams.{name}.path_prefix: with `routes:`, a route's `match: {{ path_prefix }}` \
                     says which requests go to an upstream{}",
                    line_of_top_level_key(text, "routes")
                ));
            }
        } else if upstreams.len() > 1 && upstreams.values().all(|u| u.path_prefix.is_none()) {
            return Err(format!(
                "upstreams: {} upstreams and no `routes:` to say which requests go to which{}",
                upstreams.len(),
                line_of_top_level_key(text, "upstreams")
            ));
        }
        Ok(())
    }

    /// The routes requests take: those written, or, without any, one per
    /// upstream by its `path_prefix` (longest first).
    pub fn effective_routes(&self) -> Vec<RouteConfig> {
        if !self.routes.is_empty() {
            return self.routes.clone();
        }
        let mut upstreams: Vec<(&String, &UpstreamConfig)> = self.upstreams.0.iter().collect();
        upstreams.sort_by_key(|(_, u)| std::cmp::Reverse(u.prefix().0.len()));
        upstreams
            .into_iter()
            .map(|(name, upstream)| RouteConfig {
                name: Some(name.clone()),
                matches: MatchConfig {
                    path_prefix: upstream.path_prefix.clone(),
                    ..MatchConfig::default()
                },
                action: ActionConfig::Upstream(name.clone()),
                strip_prefix: None,
                request_headers: HeaderEdits::default(),
                response_headers: HeaderEdits::default(),
                hooks: Vec::new(),
            })
            .collect()
    }

    /// What is valid but deserves a word: `-t` prints these, a start and
    /// a reload log them.
    pub fn warnings(&self) -> Vec<String> {
        let shorthand = self.routes.is_empty() && self.upstreams.0.len() > 1;
        if shorthand {
            vec![
                "upstreams: telling upstreams apart by `path_prefix` is the old shorthand; \
                  `routes:` says the same and more (hosts, headers, splits)"
                    .to_string(),
            ]
        } else {
            Vec::new()
        }
    }
}

/// ` at line N` for item `index` of the top-level list `key` written as a
/// block (`- ` lines), else for `key` itself.
fn line_of_list_item(text: &str, key: &str, index: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().position(|line| {
        line.strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    }) else {
        return String::new();
    };
    let mut first_indent = None;
    let mut seen = 0;
    for (offset, line) in lines[start + 1..].iter().enumerate() {
        if !(line.is_empty() || line.starts_with([' ', '-', '#'])) {
            break;
        }
        if !line.trim_start().starts_with("- ") {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if *first_indent.get_or_insert(indent) != indent {
            continue;
        }
        if seen == index {
            return format!(" at line {}", start + offset + 2);
        }
        seen += 1;
    }
    line_of_top_level_key(text, key)
}

/// ` at line N` for a top-level key, for the few checks that span keys and
/// so run after serde has forgotten positions.
fn line_of_top_level_key(text: &str, key: &str) -> String {
    text.lines()
        .position(|line| {
            line.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|index| format!(" at line {}", index + 1))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SAMPLE: &str = "
server:
  threads: 2
  pid_file: /tmp/x.pid
  grace_period_seconds: 1
listen: 127.0.0.1:18080
metrics: 127.0.0.1:16192
status_path: /check
upstreams:
  backend:
    algorithm: round_robin
    peers:
      - 127.0.0.1:8001
      - { addr: 127.0.0.1:8002, weight: 2 }
      - { addr: 127.0.0.1:8004, backup: true }
    health_check:
      path: /api/status
      interval: 500ms
      rise: 3
      expected_status: [200, 204]
";

    fn error_of(text: &str) -> String {
        Config::parse(text, "test.yaml").unwrap_err().to_string()
    }

    #[test]
    fn the_sample_parses_with_defaults_filled_in() {
        let config = Config::parse(SAMPLE, "test.yaml").unwrap();
        assert_eq!(config.server.threads.0, 2);
        assert_eq!(config.server.graceful_shutdown_timeout_seconds, 5);
        let backend = &config.upstreams.0["backend"];
        assert_eq!(backend.algorithm, Algorithm::RoundRobin);
        assert_eq!(backend.peers.0.len(), 3);
        assert_eq!(backend.peers.0[1].weight, Weight(2));
        assert_eq!(backend.peers.0.iter().filter(|p| p.backup).count(), 1);
        let hc = &backend.health_check;
        assert_eq!(hc.interval.0, Duration::from_millis(500));
        assert_eq!(hc.timeout.0, Duration::from_secs(1));
        assert_eq!((hc.rise.0, hc.fall.0), (3, 2));
        assert!(hc.expected_status.contains(204));
    }

    #[test]
    fn every_algorithm_has_its_name() {
        let algorithms = [
            ("round_robin", Algorithm::RoundRobin),
            ("random", Algorithm::Random),
            ("consistent_hash", Algorithm::ConsistentHash),
            ("least_conn", Algorithm::LeastConn),
            ("least_request", Algorithm::LeastRequest),
            ("ewma", Algorithm::Ewma),
        ];
        for (name, algorithm) in algorithms {
            let text = SAMPLE.replace("algorithm: round_robin", &format!("algorithm: {name}"));
            let config = Config::parse(&text, "test.yaml").unwrap();
            assert_eq!(config.upstreams.0["backend"].algorithm, algorithm, "{name}");
        }
        let message = error_of(&SAMPLE.replace("algorithm: round_robin", "algorithm: leastconn"));
        assert!(
            message.contains("unknown variant `leastconn`, expected one of"),
            "{message}"
        );
    }

    #[test]
    fn a_config_built_in_code_is_checked_like_a_file() {
        let config = Config::parse(SAMPLE, "test.yaml").unwrap();
        let again = config.clone().checked("code").unwrap();
        assert_eq!(
            serde_yaml::to_string(&again).unwrap(),
            serde_yaml::to_string(&config).unwrap()
        );
        let mut broken = config;
        broken
            .routes
            .push(serde_yaml::from_str("{ upstream: backend, hooks: [keys] }").unwrap());
        let message = broken.checked("code").unwrap_err().to_string();
        assert!(
            message.starts_with("code: routes[0].hooks: no hook `keys`"),
            "{message}"
        );
    }

    #[test]
    fn the_built_in_default_is_valid() {
        let (config, name) = Config::load(None).unwrap();
        assert_eq!(name, DEFAULT_CONFIG_NAME);
        assert_eq!(config.upstreams.0["backend"].peers.0.len(), 3);
    }

    #[test]
    fn routes_name_existing_upstreams_and_several_upstreams_need_routes() {
        let two = "upstreams:\n  a:\n    peers: [127.0.0.1:1]\n  b:\n    peers: [127.0.0.1:2]\n";
        let message = error_of(two);
        assert!(
            message.contains("2 upstreams and no `routes:`"),
            "{message}"
        );
        assert!(message.contains("at line 1"), "{message}");

        let routed = format!(
            "routes:\n  - match: {{ path_prefix: /a/ }}\n    upstream: a\n  - upstream: c\n{two}"
        );
        let message = error_of(&routed);
        assert!(
            message
                .starts_with("test.yaml: routes[1]: no upstream `c` (upstreams: a, b) at line 4"),
            "{message}"
        );

        let fixed = routed.replace("upstream: c", "upstream: b");
        let config = Config::parse(&fixed, "test.yaml").unwrap();
        assert_eq!(config.effective_routes().len(), 2);
        assert!(config.warnings().is_empty());

        let twice = format!("routes:\n  - upstream: a\n  - name: route-1\n    upstream: b\n{two}");
        let message = error_of(&twice);
        assert!(
            message.contains("routes[1].name: `route-1` names an earlier route too")
                && message.ends_with("at line 3"),
            "{message}"
        );

        let both = fixed.replace("  a:\n", "  a:\n    path_prefix: /a/\n");
        assert!(error_of(&both).contains("upstreams.a.path_prefix: with `routes:`"));

        // The old shorthand still loads, with a warning; longest prefix first.
        let shorthand = two.replace("  b:\n", "  b:\n    path_prefix: /b/\n");
        let config = Config::parse(&shorthand, "test.yaml").unwrap();
        let routes = config.effective_routes();
        assert_eq!(routes[0].upstreams(), ["b"]);
        assert_eq!(routes[1].upstreams(), ["a"]);
        assert_eq!(config.warnings().len(), 1);
    }

    #[test]
    fn errors_name_the_file_the_key_and_the_line() {
        let bad_peer = SAMPLE.replace("127.0.0.1:8002", "localhost:99999");
        let message = error_of(&bad_peer);
        assert!(message.starts_with("test.yaml: upstreams.backend.peers[1].addr:"));
        assert!(message.contains("line 14"), "{message}");

        let message = error_of(&SAMPLE.replace("rise: 3", "rise: 0"));
        assert!(message.contains("upstreams.backend.health_check.rise"));

        let message = error_of(&SAMPLE.replace("algorithm: round_robin", "algorithm: fastest"));
        assert!(message.contains("upstreams.backend.algorithm: unknown variant `fastest`"));

        let message = error_of(&SAMPLE.replace("interval: 500ms", "interval: often"));
        assert!(message.contains("health_check.interval: `often` is not a duration"));

        let message = error_of(&SAMPLE.replace("status_path", "status_page"));
        assert!(message.contains("unknown field `status_page`"));

        let message = error_of(&SAMPLE.replace("  threads: 2", "  thread: 2"));
        assert!(message.contains("server: unknown field `thread`"));
    }

    #[test]
    fn hash_keys_name_a_header_or_a_cookie_and_bad_ones_are_errors_with_their_line() {
        let upstream = |key: &str| {
            format!("upstreams:\n  b:\n    algorithm: consistent_hash\n    hash_key: {key}\n    peers: [127.0.0.1:1]\n")
        };
        let key_of = |key: &str| {
            let config = Config::parse(&upstream(key), "test.yaml").unwrap();
            config.upstreams.0["b"].hash_key.clone()
        };
        assert_eq!(key_of("uri"), HashKey::Uri);
        assert_eq!(key_of("client_ip"), HashKey::ClientIp);
        let header = http::HeaderName::from_static("x-user");
        assert_eq!(key_of("header:X-User"), HashKey::Header(header));
        assert_eq!(key_of("cookie:Session"), HashKey::Cookie("Session".into()));
        let default = "upstreams:\n  b:\n    peers: [127.0.0.1:1]\n";
        let config = Config::parse(default, "test.yaml").unwrap();
        assert_eq!(config.upstreams.0["b"].hash_key, HashKey::Uri);
        // Written back as read.
        let text = serde_yaml::to_string(&key_of("header:X-User")).unwrap();
        assert_eq!(text.trim(), "header:x-user");

        for (bad, why) in [
            (
                "url",
                "`url` is not a hash key: uri, client_ip, header:NAME",
            ),
            ("\"header:\"", "`` in `header:` is not a header name"),
            (
                "\"header:X User\"",
                "`X User` in `header:X User` is not a header name",
            ),
            (
                "\"cookie:a;b\"",
                "`a;b` in `cookie:a;b` is not a cookie name",
            ),
            ("query:id", "`query:id` is not a hash key"),
            ("3", "3 is not a hash key"),
        ] {
            let message = error_of(&upstream(bad));
            assert!(
                message.starts_with("test.yaml: upstreams.b.hash_key: ")
                    && message.contains(why)
                    && message.contains("line 4"),
                "{bad}: {message}"
            );
        }
    }

    #[test]
    fn peer_lists_must_be_usable() {
        let text = "upstreams:\n  b:\n    peers: []\n";
        assert!(error_of(text).contains("at least one peer"));
        let text = "upstreams:\n  b:\n    peers:\n      - { addr: 127.0.0.1:1, backup: true }\n";
        assert!(error_of(text).contains("at least one must be a primary"));
        let text = "upstreams:\n  b:\n    peers: [127.0.0.1:1, 127.0.0.1:1]\n";
        assert!(error_of(text).contains("listed twice"));
    }

    #[test]
    fn overload_protection_is_off_by_default_and_checked() {
        let config = Config::parse(SAMPLE, "test.yaml").unwrap();
        let backend = &config.upstreams.0["backend"];
        assert_eq!(backend.max_requests.as_limit(), usize::MAX);
        assert!(backend.queue.is_off());
        assert_eq!(backend.queue.timeout.0, Duration::from_secs(5));
        assert!(backend.retry_budget.is_none());

        let limited = SAMPLE.replace(
            "    algorithm: round_robin\n",
            "    algorithm: round_robin\n    max_requests: 2\n    queue: { size: 10, timeout: 1s }\n    retry_budget: 20%\n",
        );
        let config = Config::parse(&limited, "test.yaml").unwrap();
        let backend = &config.upstreams.0["backend"];
        assert_eq!(backend.max_requests.as_limit(), 2);
        assert_eq!(backend.queue.size.0, 10);
        assert_eq!(backend.queue.timeout.0, Duration::from_secs(1));
        assert_eq!(backend.retry_budget.map(|b| b.0), Some(2000));
        let budget = backend.retry_budget;
        let again = config.checked("again").unwrap();
        assert_eq!(again.upstreams.0["backend"].retry_budget, budget);

        for (bad, expected) in [
            (
                "retry_budget: 120%",
                "upstreams.backend.retry_budget: `120%` is not a percentage",
            ),
            (
                "retry_budget: abc",
                "upstreams.backend.retry_budget: `abc` is not a percentage",
            ),
            ("retry_budget: 20", "write the % sign"),
            (
                "max_requests: -1",
                "upstreams.backend.max_requests: -1 is not a whole number",
            ),
            (
                "queue: { size: 5, wait: 1s }",
                "upstreams.backend.queue: unknown field `wait`",
            ),
            (
                "queue: { size: 5, timeout: 0s }",
                "upstreams.backend.queue.timeout",
            ),
            (
                "queue: { size: 5 }",
                "upstream `backend`: queue: a queue needs `max_requests`",
            ),
        ] {
            let text = SAMPLE.replace(
                "    algorithm: round_robin\n",
                &format!("    algorithm: round_robin\n    {bad}\n"),
            );
            let message = error_of(&text);
            assert!(message.contains(expected), "{bad}: {message}");
            assert!(message.contains("line "), "{bad}: {message}");
        }
    }

    #[test]
    fn upstreams_must_be_distinct() {
        let text = "upstreams: {}\n";
        assert!(error_of(text).contains("at least one upstream"));
        let text = "upstreams:\n  a:\n    path_prefix: /x\n    peers: [127.0.0.1:1]\n  b:\n    path_prefix: /x\n    peers: [127.0.0.1:2]\n";
        assert!(error_of(text).contains("same path_prefix"));
        let text = "upstreams:\n  a b:\n    peers: [127.0.0.1:1]\n";
        assert!(error_of(text).contains("not a valid upstream name"));
    }

    #[test]
    fn the_access_log_is_off_by_default_and_checked_with_its_line() {
        let config = Config::parse(SAMPLE, "test.yaml").unwrap();
        assert!(config.access_log.is_none());
        assert!(config.request_id);

        let on = format!("{SAMPLE}access_log: {{ path: /tmp/access.log }}\nrequest_id: false\n");
        let config = Config::parse(&on, "test.yaml").unwrap();
        let access_log = config.access_log.unwrap();
        assert_eq!(access_log.format, AccessLogFormat::Json);
        assert_eq!(access_log.buffer.0, DEFAULT_BUFFER);
        assert!(!config.request_id);

        let message = error_of(&format!(
            "{SAMPLE}access_log:\n  path: /tmp/a.log\n  format: xml\n"
        ));
        assert!(
            message.starts_with("test.yaml: access_log.format: unknown variant `xml`"),
            "{message}"
        );
        assert!(message.contains("line 23"), "{message}");

        let message = error_of(&format!("{SAMPLE}access_log:\n  path: \"\"\n"));
        assert!(
            message.starts_with("test.yaml: access_log.path: must name a file"),
            "{message}"
        );
        assert!(message.ends_with("at line 21"), "{message}");

        let message = error_of(&format!("{SAMPLE}access_log: {{ path: -, buffer: 0 }}\n"));
        assert!(message.contains("access_log.buffer: 0 is not"), "{message}");
        let message = error_of(&format!("{SAMPLE}access_log: {{ file: x }}\n"));
        assert!(
            message.contains("access_log: unknown field `file`"),
            "{message}"
        );
        let message = error_of(&format!("{SAMPLE}request_id: maybe\n"));
        assert!(message.contains("request_id: invalid type"), "{message}");
    }

    #[test]
    fn listeners_must_differ() {
        let text = "listen: 127.0.0.1:1\nmetrics: 127.0.0.1:1\nupstreams:\n  a:\n    peers: [127.0.0.1:2]\n";
        assert_eq!(
            error_of(text),
            "test.yaml: metrics: 127.0.0.1:1 is also a proxy `listen` address at line 2"
        );
    }
}
