//! What clients may send (`limits:`) and who may reach what (`deny:`,
//! `status_allow:`).

use super::scalar::{ByteCount, Cidr, ConnectionCount, HeaderCount, Interval, UrlPath};
use serde::Deserialize;
use std::net::IpAddr;
use std::time::Duration;

/// `limits:`: bounds on client requests and connections.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Total size of a request's header lines; larger gets 431.
    pub max_header_bytes: ByteCount,
    /// Number of request headers; more gets 431.
    pub max_headers: HeaderCount,
    /// Size of a request body; larger gets 413.
    pub max_body_bytes: ByteCount,
    /// Time a new connection has to send its first request header in full;
    /// slower clients (slowloris) are disconnected.
    pub header_timeout: Interval,
    /// How long an idle client keep-alive connection stays open.
    pub keepalive_timeout: Interval,
    /// Client connections served at once; more are closed on arrival.
    pub max_connections: ConnectionCount,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_header_bytes: ByteCount(32 * 1024),
            max_headers: HeaderCount(100),
            max_body_bytes: ByteCount(10 * 1024 * 1024),
            header_timeout: Interval(Duration::from_secs(10)),
            keepalive_timeout: Interval(Duration::from_secs(60)),
            max_connections: ConnectionCount(10_000),
        }
    }
}

/// One `deny:` rule: requests under `path_prefix` get 403 unless the client
/// address is in `allow`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyRule {
    pub path_prefix: UrlPath,
    #[serde(default)]
    pub allow: Vec<Cidr>,
}

impl DenyRule {
    /// Whether this rule refuses a request for `path` from `client`.
    pub fn denies(&self, path: &str, client: Option<IpAddr>) -> bool {
        path.starts_with(self.path_prefix.0.as_str())
            && !client.is_some_and(|ip| self.allow.iter().any(|net| net.contains(&ip)))
    }
}

/// Whether `client` is in `allowed`, where an empty list allows everyone.
pub fn allowed(allowed: &[Cidr], client: Option<IpAddr>) -> bool {
    allowed.is_empty() || client.is_some_and(|ip| allowed.iter().any(|net| net.contains(&ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_rules_match_prefixes_and_allow_networks() {
        let rule: DenyRule =
            serde_yaml::from_str("{ path_prefix: /api/switch, allow: [127.0.0.0/8, \"::1\"] }")
                .unwrap();
        let outside: IpAddr = "203.0.113.9".parse().unwrap();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let local6: IpAddr = "::1".parse().unwrap();
        assert!(rule.denies("/api/switch", Some(outside)));
        assert!(rule.denies("/api/switch?x=1", Some(outside)));
        assert!(!rule.denies("/api/switch", Some(local)));
        assert!(!rule.denies("/api/switch", Some(local6)));
        assert!(!rule.denies("/api/data", Some(outside)));
        assert!(rule.denies("/api/switch", None), "no address: not allowed");
        assert!(allowed(&[], Some(outside)));
        assert!(!allowed(&rule.allow, Some(outside)));
    }
}
