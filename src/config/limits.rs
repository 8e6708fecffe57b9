//! What clients may send (`limits:`) and who may reach what (`deny:`,
//! `status_allow:`).

use super::scalar::{
    BufferSize, ByteCount, Cidr, ConnectionCount, HeaderCount, Interval, StreamCount, UrlPath,
};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

/// `limits:`: bounds on client requests and connections.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Total size of a request's header lines; larger gets 431.
    pub max_header_bytes: ByteCount,
    /// Number of request headers; more gets 431.
    pub max_headers: HeaderCount,
    /// Size of a request body; larger gets 413.
    pub max_body_bytes: ByteCount,
    /// Time a request header has to arrive in full: from a connection's
    /// start for its first request, from the first byte for later ones;
    /// slower clients (slowloris) are disconnected.
    pub header_timeout: Interval,
    /// Longest pause while a client sends its request body; then 408.
    pub body_timeout: Interval,
    /// Request bodies with a `Content-Length` up to this size are read in
    /// full before a peer is chosen, so a slow client holds no peer.
    pub buffer_body_bytes: BufferSize,
    /// How long an idle client keep-alive connection stays open.
    pub keepalive_timeout: Interval,
    /// Client connections served at once; more are closed on arrival.
    pub max_connections: ConnectionCount,
    /// Requests (streams) one HTTP/2 client connection may have open at
    /// once; a client resetting more than twice this many streams in a
    /// second (rapid reset) is disconnected.
    pub http2_max_streams: StreamCount,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_header_bytes: ByteCount(32 * 1024),
            max_headers: HeaderCount(100),
            max_body_bytes: ByteCount(10 * 1024 * 1024),
            header_timeout: Interval(Duration::from_secs(10)),
            body_timeout: Interval(Duration::from_secs(10)),
            buffer_body_bytes: BufferSize(64 * 1024),
            keepalive_timeout: Interval(Duration::from_secs(60)),
            max_connections: ConnectionCount(10_000),
            http2_max_streams: StreamCount(100),
        }
    }
}

/// One `deny:` rule: requests under `path_prefix` get 403 unless the client
/// address is in `allow`. The prefix is matched against the request path's
/// canonical form (decoded, dot segments resolved, slashes merged), and
/// ignoring ASCII case unless `case_sensitive` (Express, like many
/// frameworks, routes `/API/switch` to `/api/switch`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyRule {
    /// Requests whose canonical path starts with this.
    pub path_prefix: UrlPath,
    #[serde(default)]
    /// Clients from these networks may still make them.
    pub allow: Vec<Cidr>,
    #[serde(default)]
    /// Whether the prefix must match in case too.
    pub case_sensitive: bool,
}

impl DenyRule {
    /// Whether this rule refuses a request for `path` (canonical form) from
    /// `client`.
    pub fn denies(&self, path: &[u8], client: Option<IpAddr>) -> bool {
        let prefix = self.path_prefix.0.as_bytes();
        let under = path.len() >= prefix.len()
            && if self.case_sensitive {
                path.starts_with(prefix)
            } else {
                path[..prefix.len()].eq_ignore_ascii_case(prefix)
            };
        under && !client.is_some_and(|ip| self.allow.iter().any(|net| net.contains(&ip)))
    }
}

/// `escaped_slashes:` what to do with `%2F` in a request path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscapedSlashes {
    /// Forward it as sent (`/group%2Fproject`); rules see it as `/`.
    #[default]
    Keep,
    /// Refuse the request with 400.
    Reject,
}

/// The default of `status_allow`: loopback and the private networks, so
/// that the peers' addresses are not shown to the internet.
pub fn private_networks() -> Vec<Cidr> {
    [
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
    ]
    .iter()
    .filter_map(|net| net.parse::<ipnet::IpNet>().ok().map(Cidr))
    .collect()
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
        assert!(rule.denies(b"/api/switch", Some(outside)));
        assert!(rule.denies(b"/API/Switch", Some(outside)), "case-folded");
        assert!(!rule.denies(b"/api/switch", Some(local)));
        assert!(!rule.denies(b"/api/switch", Some(local6)));
        assert!(!rule.denies(b"/api/data", Some(outside)));
        assert!(!rule.denies(b"/api", Some(outside)));
        assert!(rule.denies(b"/api/switch", None), "no address: not allowed");
        let exact: DenyRule =
            serde_yaml::from_str("{ path_prefix: /Admin, case_sensitive: true }").unwrap();
        assert!(
            exact.denies(b"/Admin/x", Some(local)),
            "no allow list: nobody"
        );
        assert!(!exact.denies(b"/admin/x", Some(local)));
        assert!(allowed(&[], Some(outside)));
        assert!(!allowed(&rule.allow, Some(outside)));
    }
}
