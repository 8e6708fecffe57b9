//! The `routes:` section: an ordered list of rules, the first whose `match`
//! holds serves the request (HAProxy's `use_backend` rules, Envoy's
//! routes), by sending it to an upstream (or a weighted split of several),
//! redirecting it, or answering it.

use super::scalar::{
    HeaderName, HeaderValue, HostPattern, MethodName, PathRegex, SplitWeight, StatusCode, UrlPath,
};
use indexmap::IndexMap;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// One route, checked as it is read (its references to upstreams are
/// checked once the whole file is).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteConfig {
    /// Used in logs and the admin API; default `route-N` (N from 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What a request must be for this route to take it; empty: every one.
    #[serde(rename = "match")]
    pub matches: MatchConfig,
    /// What it does with the requests it takes.
    #[serde(flatten)]
    pub action: ActionConfig,
    /// Taken off the start of the path the peer sees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strip_prefix: Option<UrlPath>,
    /// Headers of the request to the peer.
    #[serde(skip_serializing_if = "HeaderEdits::is_empty")]
    pub request_headers: HeaderEdits,
    /// Headers of the response to the client.
    #[serde(skip_serializing_if = "HeaderEdits::is_empty")]
    pub response_headers: HeaderEdits,
    /// The hook instances (names in `hooks:`) that see its requests, in
    /// this order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<String>,
}

/// `routes[].match`: every key given must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchConfig {
    /// The request's host (the absolute-form target's, else `Host`),
    /// ignoring case and port: exact, or `*.example.com`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<HostPattern>,
    /// The canonical path starts with this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<UrlPath>,
    /// The canonical path is this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<UrlPath>,
    /// The canonical path matches this regular expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_regex: Option<PathRegex>,
    /// Path matches ignore ASCII case when false.
    #[serde(skip_serializing_if = "is_true", default = "yes")]
    pub case_sensitive: bool,
    /// The request method is one of these.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<MethodName>,
    /// Each header has this value (`"*"`: is present).
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<HeaderName, String>,
    /// Each query parameter has this value, as sent (`"*"`: is present).
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub query: IndexMap<String, String>,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            host: None,
            path_prefix: None,
            path: None,
            path_regex: None,
            case_sensitive: true,
            methods: Vec::new(),
            headers: IndexMap::new(),
            query: IndexMap::new(),
        }
    }
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// What a route does with the requests it takes: exactly one of these.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionConfig {
    /// Send it to this upstream.
    Upstream(String),
    /// Send each request to one of these upstreams, in proportion to
    /// their weights.
    Split(Vec<SplitTarget>),
    /// Answer with a redirect.
    Redirect(RedirectConfig),
    /// Answer with this status and body.
    Respond(RespondConfig),
}

/// One upstream of a split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitTarget {
    /// The upstream.
    pub upstream: String,
    /// Its share, against the other weights of the split.
    pub weight: SplitWeight,
}

/// `redirect:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectConfig {
    /// The `Location`.
    pub to: HeaderValue,
    /// 301, 302 (default), 303, 307 or 308.
    #[serde(default = "found")]
    pub status: StatusCode,
}

fn found() -> StatusCode {
    StatusCode(302)
}

/// `respond:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondConfig {
    /// The status.
    pub status: StatusCode,
    /// The body, as plain text.
    #[serde(default)]
    pub body: String,
}

/// `request_headers:` / `response_headers:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderEdits {
    /// Replace the header (every value) with this one.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub set: IndexMap<HeaderName, HeaderValue>,
    /// Add a value, keeping those there are.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub add: IndexMap<HeaderName, HeaderValue>,
    /// Remove the header.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<HeaderName>,
}

impl HeaderEdits {
    /// Whether there is nothing to edit.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

/// A route as written, before it is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteMap {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "match")]
    matches: MatchConfig,
    #[serde(default)]
    upstream: Option<String>,
    #[serde(default)]
    split: Option<Vec<SplitTarget>>,
    #[serde(default)]
    redirect: Option<RedirectConfig>,
    #[serde(default)]
    respond: Option<RespondConfig>,
    #[serde(default)]
    strip_prefix: Option<UrlPath>,
    #[serde(default)]
    request_headers: HeaderEdits,
    #[serde(default)]
    response_headers: HeaderEdits,
    #[serde(default)]
    hooks: Vec<String>,
}

impl RouteMap {
    fn check(self) -> Result<RouteConfig, String> {
        let paths = [
            self.matches.path_prefix.is_some(),
            self.matches.path.is_some(),
            self.matches.path_regex.is_some(),
        ];
        if paths.iter().filter(|given| **given).count() > 1 {
            return Err("match: `path_prefix`, `path` and `path_regex` exclude each other".into());
        }
        let action =
            match (self.upstream, self.split, self.redirect, self.respond) {
                (Some(upstream), None, None, None) => ActionConfig::Upstream(upstream),
                (None, Some(split), None, None) => {
                    if split.is_empty() || split.iter().all(|t| t.weight.0 == 0) {
                        return Err("split: needs an upstream with a weight above 0".into());
                    }
                    ActionConfig::Split(split)
                }
                (None, None, Some(redirect), None) => {
                    if ![301, 302, 303, 307, 308].contains(&redirect.status.0) {
                        return Err(format!(
                            "redirect.status: {} is not a redirect (301, 302, 303, 307 or 308)",
                            redirect.status.0
                        ));
                    }
                    ActionConfig::Redirect(redirect)
                }
                (None, None, None, Some(respond)) => ActionConfig::Respond(respond),
                _ => return Err(
                    "a route needs exactly one of `upstream`, `split`, `redirect` and `respond`"
                        .into(),
                ),
            };
        let answers = matches!(action, ActionConfig::Redirect(_) | ActionConfig::Respond(_));
        if answers && (self.strip_prefix.is_some() || !self.request_headers.is_empty()) {
            return Err(
                "`strip_prefix` and `request_headers` apply to requests sent to an upstream".into(),
            );
        }
        if let Some(name) = &self.name {
            let valid = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
            if !valid {
                return Err(format!(
                    "name: `{name}` is not a valid route name (1-64 letters, digits, `_`, `-`, `.`)"
                ));
            }
        }
        Ok(RouteConfig {
            name: self.name,
            matches: self.matches,
            action,
            strip_prefix: self.strip_prefix,
            request_headers: self.request_headers,
            response_headers: self.response_headers,
            hooks: self.hooks,
        })
    }
}

impl<'de> Deserialize<'de> for RouteConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RouteMap::deserialize(d)?.check().map_err(de::Error::custom)
    }
}

impl RouteConfig {
    /// Its name: as configured, or `route-N` for the route at `index`
    /// (N from 1).
    pub fn effective_name(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("route-{}", index + 1))
    }

    /// The upstreams this route sends requests to.
    pub fn upstreams(&self) -> Vec<&str> {
        match &self.action {
            ActionConfig::Upstream(name) => vec![name.as_str()],
            ActionConfig::Split(targets) => targets.iter().map(|t| t.upstream.as_str()).collect(),
            ActionConfig::Redirect(_) | ActionConfig::Respond(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<RouteConfig, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn the_keys_of_the_issue_read_as_written() {
        let route = parse(
            "name: api-canary
match:
  host: api.example.com
  path_prefix: /v2/
  methods: [GET, POST]
  headers: { x-canary: \"1\" }
  query: { beta: \"1\" }
split:
  - { upstream: v2, weight: 90 }
  - { upstream: v2-canary, weight: 10 }
strip_prefix: /v2
request_headers:  { set: { x-env: prod }, add: { x-tag: a }, remove: [x-debug] }
response_headers: { set: { strict-transport-security: \"max-age=31536000\" }, remove: [x-powered-by] }
hooks: [partner_keys, per_ip]
",
        )
        .unwrap();
        assert_eq!(route.upstreams(), ["v2", "v2-canary"]);
        assert_eq!(route.matches.methods.len(), 2);
        assert_eq!(route.hooks, ["partner_keys", "per_ip"]);
        let yaml = serde_yaml::to_string(&route).unwrap();
        assert_eq!(parse(&yaml).unwrap(), route, "{yaml}");
        assert!(parse("match: { path_prefix: /old/ }\nredirect: { to: \"https://new.example.com/\", status: 301 }").is_ok());
        assert!(parse(
            "match: { path_prefix: /internal/ }\nrespond: { status: 403, body: forbidden }"
        )
        .is_ok());
        assert!(parse("upstream: backend").is_ok());
    }

    #[test]
    fn bad_routes_are_refused() {
        let cases = [
            (
                "match: { path_regex: \"^/v[\" }\nupstream: a",
                "not a valid regular expression",
            ),
            ("split: [{ upstream: a, weight: 0 }]", "weight above 0"),
            ("upstream: a\nrespond: { status: 200 }", "exactly one of"),
            (
                "match: { path: /a, path_prefix: /a }\nupstream: a",
                "exclude each other",
            ),
            ("redirect: { to: /x, status: 200 }", "is not a redirect"),
            ("match: { methods: [\"G ET\"] }\nupstream: a", "HTTP method"),
            ("match: { host: \"a..b\" }\nupstream: a", "host name"),
            (
                "respond: { status: 403 }\nstrip_prefix: /a",
                "apply to requests sent",
            ),
            ("name: \"a b\"\nupstream: a", "not a valid route name"),
            ("upstream: a\nhook: [x]", "unknown field `hook`"),
        ];
        for (yaml, expected) in cases {
            let error = parse(yaml).unwrap_err();
            assert!(error.contains(expected), "{yaml}: {error}");
        }
    }
}
