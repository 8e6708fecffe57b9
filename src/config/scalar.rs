//! Validated scalar values of the config file.
//!
//! Each type checks its value while it is being deserialized, inside a serde
//! visitor: that is the only moment `serde_yaml` still knows where the value
//! stands, so a bad value is reported with its key path, line and column
//! (`upstreams.backend.peers[1]: ... at line 12 column 9`) instead of a bare
//! complaint after the fact.

use serde::de::{self, Deserializer, Visitor};
use serde::Serialize;
use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

/// A scalar as it appears in YAML, before it is checked.
enum Scalar<'a> {
    Str(&'a str),
    Int(i128),
}

impl fmt::Display for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Str(s) => write!(f, "`{s}`"),
            Scalar::Int(i) => write!(f, "{i}"),
        }
    }
}

/// A value that is parsed and checked from one YAML scalar.
trait CheckedScalar: Sized {
    /// What a valid value looks like, for error messages.
    const EXPECTING: &'static str;
    fn check(value: Scalar<'_>) -> Result<Self, String>;
}

struct ScalarVisitor<T>(PhantomData<T>);

impl<'de, T: CheckedScalar> Visitor<'de> for ScalarVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::check(Scalar::Str(v)).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::check(Scalar::Int(v.into())).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::check(Scalar::Int(v.into())).map_err(E::custom)
    }
}

fn deserialize_checked<'de, D: Deserializer<'de>, T: CheckedScalar>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(ScalarVisitor(PhantomData))
}

/// Implements `Deserialize` for a [`CheckedScalar`].
macro_rules! deserialize_via_check {
    ($($ty:ty),* $(,)?) => {$(
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_checked(d)
            }
        }
    )*};
}

fn integer_in(value: Scalar<'_>, min: i128, max: i128, what: &str) -> Result<i128, String> {
    match value {
        Scalar::Int(i) if (min..=max).contains(&i) => Ok(i),
        other => Err(format!("{other} is not {what}")),
    }
}

fn string<'a>(value: Scalar<'a>, what: &str) -> Result<&'a str, String> {
    match value {
        Scalar::Str(s) => Ok(s),
        other => Err(format!("{other} is not {what}")),
    }
}

/// An `ip:port` socket address, as a listener takes it (no names: a
/// listener binds one of this machine's addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Addr(pub SocketAddr);

impl CheckedScalar for Addr {
    const EXPECTING: &'static str = "an address like 127.0.0.1:8080 or [::1]:8080";
    fn check(value: Scalar<'_>) -> Result<Self, String> {
        let text = string(value, Self::EXPECTING)?;
        text.parse()
            .map(Addr)
            .map_err(|_| format!("`{text}` is not {}", Self::EXPECTING))
    }
}

/// A peer's address as written: `ip:port`, a concrete address to connect
/// to (not the unspecified address `0.0.0.0` or `::`, not port 0), or
/// `host:port`, a name to resolve.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// An IP address and port.
    Ip(SocketAddr),
    /// A host name and port, resolved by DNS.
    Host(HostPort),
}

impl CheckedScalar for PeerAddr {
    const EXPECTING: &'static str =
        "a peer address like 127.0.0.1:8001, [::1]:8001 or backend.internal:8001";
    fn check(value: Scalar<'_>) -> Result<Self, String> {
        let text = string(value, Self::EXPECTING)?;
        if let Ok(addr) = text.parse::<SocketAddr>() {
            if addr.ip().is_unspecified() {
                return Err(format!(
                    "`{addr}`: {} is not an address a peer can have (it means \"any address\" to a listener)",
                    addr.ip()
                ));
            }
            if addr.port() == 0 {
                return Err(format!(
                    "`{addr}`: port 0 is not a port a peer can listen on"
                ));
            }
            return Ok(PeerAddr::Ip(addr));
        }
        let bad = |why: &str| format!("`{text}` is not {}: {why}", Self::EXPECTING);
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(bad("it needs a port"));
        };
        let port = match port.parse::<u16>() {
            Ok(0) => return Err(bad("port 0 is not a port a peer can listen on")),
            Ok(port) => port,
            Err(_) => return Err(bad("the port must be a number from 1 to 65535")),
        };
        if host.parse::<std::net::IpAddr>().is_ok() || host.contains(':') {
            return Err(bad("an IPv6 address needs brackets, like [::1]:8001"));
        }
        check_dns_name(host).map_err(|why| bad(&why))?;
        Ok(PeerAddr::Host(HostPort {
            host: host.to_ascii_lowercase(),
            port,
        }))
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Ip(addr) => addr.fmt(f),
            PeerAddr::Host(host) => host.fmt(f),
        }
    }
}

/// A host name and a port: `backend.internal:8001`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Lower case (DNS names are case-insensitive).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The name of an SRV record set: `_http._tcp.backend.service.consul`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SrvName(pub String);

impl CheckedScalar for SrvName {
    const EXPECTING: &'static str = "an SRV name like _http._tcp.backend.example";
    fn check(value: Scalar<'_>) -> Result<Self, String> {
        let text = string(value, Self::EXPECTING)?;
        check_dns_name(text)
            .map(|()| SrvName(text.to_ascii_lowercase()))
            .map_err(|why| format!("`{text}` is not {}: {why}", Self::EXPECTING))
    }
}

impl fmt::Display for SrvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name a peer's TLS certificate is checked against and sent as SNI:
/// `api.internal`; lower case. An IP address has no place in SNI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerName(pub String);

impl CheckedScalar for ServerName {
    const EXPECTING: &'static str = "a host name like backend.internal";
    fn check(value: Scalar<'_>) -> Result<Self, String> {
        let text = string(value, Self::EXPECTING)?;
        let bad = |why: &str| format!("`{text}` is not {}: {why}", Self::EXPECTING);
        if text.parse::<std::net::IpAddr>().is_ok() {
            return Err(bad("an IP address cannot be sent as SNI"));
        }
        check_dns_name(text).map_err(|why| bad(&why))?;
        Ok(ServerName(text.trim_end_matches('.').to_ascii_lowercase()))
    }
}

/// A DNS name as RFC 1123 allows it (with `_`, which SRV names and some
/// container names use): dot-separated labels of 1 to 63 letters, digits,
/// `-` and `_`, not starting or ending with `-`, 253 characters in all, an
/// optional final dot, and not all digits at the end (that would be a
/// mistyped IP address).
fn check_dns_name(name: &str) -> Result<(), String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return Err("a name has 1 to 253 characters".to_string());
    }
    for label in name.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(format!(
                "`{label}` is not a DNS label (1-63 letters, digits, `-`, `_`)"
            ));
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("it is neither an IP address nor a host name".to_string());
    }
    Ok(())
}

/// A positive duration written the human way: `1s`, `500ms`, `2m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval(pub Duration);

impl CheckedScalar for Interval {
    const EXPECTING: &'static str = "a duration like 1s, 500ms or 2m";
    fn check(value: Scalar<'_>) -> Result<Self, String> {
        let text = string(value, Self::EXPECTING)?;
        match humantime::parse_duration(text) {
            Ok(d) if d.is_zero() => Err(format!("`{text}` must be longer than zero")),
            Ok(d) => Ok(Interval(d)),
            Err(e) => Err(format!("`{text}` is not {} ({e})", Self::EXPECTING)),
        }
    }
}

/// A URL path: starts with `/`, no spaces or control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPath(pub String);

impl CheckedScalar for UrlPath {
    const EXPECTING: &'static str = "a URL path starting with /";
    fn check(value: Scalar<'_>) -> Result<Self, String> {
        let text = string(value, Self::EXPECTING)?;
        let printable = text.bytes().all(|b| b.is_ascii_graphic());
        if text.starts_with('/') && printable {
            Ok(UrlPath(text.to_string()))
        } else {
            Err(format!("`{text}` is not {}", Self::EXPECTING))
        }
    }
}

/// Defines an integer newtype that only takes values in `min..=max`.
macro_rules! ranged_integer {
    ($(#[$doc:meta])* $name:ident($int:ty), $min:literal ..= $max:literal, $expecting:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(pub $int);

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(s)
            }
        }

        impl CheckedScalar for $name {
            const EXPECTING: &'static str = $expecting;
            fn check(value: Scalar<'_>) -> Result<Self, String> {
                // The range fits the type, so the cast cannot truncate.
                integer_in(value, $min, $max, Self::EXPECTING).map(|n| $name(n as $int))
            }
        }
    };
}

ranged_integer!(
    /// How many consecutive probe results flip a peer's state (`rise`, `fall`).
    Threshold(u32), 1..=1000, "a whole number from 1 to 1000"
);
ranged_integer!(
    /// A peer's share of the traffic relative to its siblings.
    Weight(u16), 1..=1000, "a weight from 1 to 1000"
);
impl Weight {
    /// The highest weight a peer can have.
    pub const MAX: u16 = 1000;
}

ranged_integer!(
    /// An HTTP status code.
    StatusCode(u16), 100..=599, "an HTTP status code from 100 to 599"
);
ranged_integer!(
    /// A count that must be at least one (threads, pool sizes).
    PositiveCount(usize), 1..=65535, "a whole number from 1 to 65535"
);
ranged_integer!(
    /// Extra attempts of a request on other peers.
    RetryCount(u32), 0..=16, "a whole number from 0 to 16"
);
ranged_integer!(
    /// Consecutive failed requests that take a peer DOWN (0: never).
    FailCount(u32), 0..=1000, "a whole number from 0 to 1000"
);
ranged_integer!(
    /// A size in bytes.
    ByteCount(u64), 1..=1_099_511_627_776, "a number of bytes from 1 to 1 TiB"
);
ranged_integer!(
    /// A request body size that Pingora can keep in its 64 KiB retry buffer.
    BufferSize(u64), 1..=65536, "a number of bytes from 1 to 65536"
);
ranged_integer!(
    /// A number of request headers.
    HeaderCount(usize), 1..=256, "a whole number from 1 to 256"
);
ranged_integer!(
    /// Concurrent HTTP/2 streams on one client connection.
    StreamCount(u32), 1..=10_000, "a whole number from 1 to 10000"
);
ranged_integer!(
    /// A number of client connections.
    ConnectionCount(usize), 1..=10_000_000, "a whole number from 1 to 10000000"
);

ranged_integer!(
    /// Requests in flight on one peer (`max_requests`; 0: no limit).
    RequestLimit(usize), 0..=1_000_000, "a whole number from 0 (no limit) to 1000000"
);
impl Default for RequestLimit {
    /// No limit.
    fn default() -> Self {
        RequestLimit(0)
    }
}

impl RequestLimit {
    /// The limit as selection compares it: `usize::MAX` for none.
    pub fn as_limit(self) -> usize {
        if self.0 == 0 {
            usize::MAX
        } else {
            self.0
        }
    }
}

ranged_integer!(
    /// Requests that may wait for a peer (`queue.size`; 0: none wait).
    QueueSize(usize), 0..=1_000_000, "a whole number from 0 (no queue) to 1000000"
);
impl Default for QueueSize {
    /// No queue.
    fn default() -> Self {
        QueueSize(0)
    }
}

/// A share from 0 % to 100 %, written `20%` or `2.5%`; kept in hundredths
/// of a percent (`20%` is 2000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentage(pub u32);

impl Percentage {
    /// 100 %, in hundredths of a percent.
    pub const WHOLE: u32 = 10_000;

    /// This share of `count`, rounded down.
    pub fn of(self, count: usize) -> usize {
        let share = count as u128 * u128::from(self.0) / u128::from(Self::WHOLE);
        usize::try_from(share).unwrap_or(usize::MAX)
    }
}

impl CheckedScalar for Percentage {
    const EXPECTING: &'static str = "a percentage from 0% to 100%, like 20% or 2.5%";
    fn check(value: Scalar<'_>) -> Result<Self, String> {
        let bad = || format!("{value} is not {}", Self::EXPECTING);
        let Scalar::Str(text) = value else {
            return Err(format!("{}: write the % sign", bad()));
        };
        let number = text.strip_suffix('%').ok_or_else(bad)?.trim_end();
        let valid = !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && number.split('.').count() <= 2
            && number.split('.').nth(1).is_none_or(|d| d.len() <= 2);
        let percent: f64 = number.parse().ok().filter(|_| valid).ok_or_else(bad)?;
        if !(0.0..=100.0).contains(&percent) {
            return Err(bad());
        }
        // Two decimals at most: the product is a whole number of hundredths.
        Ok(Percentage((percent * 100.0).round() as u32))
    }
}

impl fmt::Display for Percentage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, hundredths) = (self.0 / 100, self.0 % 100);
        match hundredths {
            0 => write!(f, "{whole}%"),
            h if h % 10 == 0 => write!(f, "{whole}.{}%", h / 10),
            h => write!(f, "{whole}.{h:02}%"),
        }
    }
}

ranged_integer!(
    /// A share of a route's split (0: none).
    SplitWeight(u32), 0..=1_000_000, "a weight from 0 to 1000000"
);

/// A host a route matches: `api.example.com`, or `*.example.com` for every
/// name under `example.com`; lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern(pub String);

impl CheckedScalar for HostPattern {
    const EXPECTING: &'static str = "a host name like api.example.com or *.example.com";
    fn check(value: Scalar<'_>) -> Result<Self, String> {
        let text = string(value, Self::EXPECTING)?;
        let name = text.strip_prefix("*.").unwrap_or(text);
        if name.parse::<std::net::IpAddr>().is_err() {
            check_dns_name(name)
                .map_err(|why| format!("`{text}` is not {}: {why}", Self::EXPECTING))?;
        }
        Ok(HostPattern(text.to_ascii_lowercase()))
    }
}

/// An HTTP method: `GET`, `POST`, or any other token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodName(pub http::Method);

impl CheckedScalar for MethodName {
    const EXPECTING: &'static str = "an HTTP method like GET or POST";
    fn check(value: Scalar<'_>) -> Result<Self, String> {
        let text = string(value, Self::EXPECTING)?;
        http::Method::from_bytes(text.as_bytes())
            .map(MethodName)
            .map_err(|_| format!("`{text}` is not {}", Self::EXPECTING))
    }
}

/// A header name; lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeaderName(pub http::HeaderName);

impl CheckedScalar for HeaderName {
    const EXPECTING: &'static str = "a header name like x-request-id";
    fn check(value: Scalar<'_>) -> Result<Self, String> {
        let text = string(value, Self::EXPECTING)?;
        http::HeaderName::from_bytes(text.as_bytes())
            .map(HeaderName)
            .map_err(|_| format!("`{text}` is not {}", Self::EXPECTING))
    }
}

/// The request property that `consistent_hash` hashes:
/// `upstreams.<name>.hash_key`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HashKey {
    /// Path and query (nginx's `$request_uri`).
    #[default]
    Uri,
    /// The client's IP address (nginx's `ip_hash`).
    ClientIp,
    /// `header:NAME`: the value of a request header (the first, if the
    /// request repeats it).
    Header(http::HeaderName),
    /// `cookie:NAME`: the value of a cookie (the first, if the request
    /// repeats it); the name as written, cookie names being case-sensitive.
    Cookie(String),
}

impl CheckedScalar for HashKey {
    const EXPECTING: &'static str =
        "a hash key: uri, client_ip, header:NAME (e.g. header:X-User) or cookie:NAME (e.g. cookie:session)";
    fn check(value: Scalar<'_>) -> Result<Self, String> {
        let text = string(value, Self::EXPECTING)?;
        // A cookie name is a token, as a header name is.
        let token = |name: &str| http::HeaderName::from_bytes(name.as_bytes()).ok();
        match text.split_once(':') {
            None if text == "uri" => Ok(HashKey::Uri),
            None if text == "client_ip" => Ok(HashKey::ClientIp),
            Some(("header", name)) => token(name)
                .map(HashKey::Header)
                .ok_or_else(|| format!("`{name}` in `{text}` is not a header name")),
            Some(("cookie", name)) => token(name)
                .map(|_| HashKey::Cookie(name.to_string()))
                .ok_or_else(|| format!("`{name}` in `{text}` is not a cookie name")),
            _ => Err(format!("`{text}` is not {}", Self::EXPECTING)),
        }
    }
}

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashKey::Uri => f.write_str("uri"),
            HashKey::ClientIp => f.write_str("client_ip"),
            HashKey::Header(name) => write!(f, "header:{name}"),
            HashKey::Cookie(name) => write!(f, "cookie:{name}"),
        }
    }
}

/// A header value: visible ASCII and spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderValue(pub http::HeaderValue);

impl CheckedScalar for HeaderValue {
    const EXPECTING: &'static str = "a header value (visible ASCII and spaces)";
    fn check(value: Scalar<'_>) -> Result<Self, String> {
        let text = match value {
            Scalar::Str(s) => s.to_string(),
            Scalar::Int(i) => i.to_string(),
        };
        http::HeaderValue::from_str(&text)
            .map(HeaderValue)
            .map_err(|_| format!("`{text}` is not {}", Self::EXPECTING))
    }
}

/// A regular expression over request paths (the `regex` crate's syntax),
/// compiled when the file is read.
#[derive(Debug, Clone)]
pub struct PathRegex(pub regex::bytes::Regex);

impl PartialEq for PathRegex {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl CheckedScalar for PathRegex {
    const EXPECTING: &'static str = "a regular expression like ^/v[0-9]+/";
    fn check(value: Scalar<'_>) -> Result<Self, String> {
        let text = string(value, Self::EXPECTING)?;
        regex::bytes::Regex::new(text)
            .map(PathRegex)
            .map_err(|e| format!("`{text}` is not a valid regular expression: {e}"))
    }
}

/// An IP network (`10.0.0.0/8`, `::1/128`) or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(pub ipnet::IpNet);

impl Cidr {
    /// Whether `ip` is in the network.
    pub fn contains(&self, ip: &std::net::IpAddr) -> bool {
        self.0.contains(ip)
    }
}

impl CheckedScalar for Cidr {
    const EXPECTING: &'static str = "an IP network like 10.0.0.0/8 or an address like ::1";
    fn check(value: Scalar<'_>) -> Result<Self, String> {
        let text = string(value, Self::EXPECTING)?;
        text.parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map(Cidr)
            .map_err(|_| format!("`{text}` is not {}", Self::EXPECTING))
    }
}

deserialize_via_check!(
    RequestLimit,
    QueueSize,
    Percentage,
    SplitWeight,
    HashKey,
    HostPattern,
    MethodName,
    HeaderName,
    HeaderValue,
    PathRegex,
    Cidr,
    PeerAddr,
    SrvName,
    ServerName,
    BufferSize,
    RetryCount,
    FailCount,
    ByteCount,
    HeaderCount,
    StreamCount,
    ConnectionCount,
    Addr,
    Interval,
    UrlPath,
    Threshold,
    Weight,
    StatusCode,
    PositiveCount
);

/// Implements `Serialize` as the text the value is written as in the file.
macro_rules! serialize_as_text {
    ($($ty:ty => $text:expr),* $(,)?) => {$(
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let text: fn(&$ty) -> String = $text;
                s.serialize_str(&text(self))
            }
        }
    )*};
}

serialize_as_text!(
    Addr => |a| a.0.to_string(),
    PeerAddr => |a| a.to_string(),
    SrvName => |n| n.0.clone(),
    ServerName => |n| n.0.clone(),
    Interval => |i| humantime::format_duration(i.0).to_string(),
    Percentage => |p| p.to_string(),
    UrlPath => |p| p.0.clone(),
    Cidr => |c| c.0.to_string(),
    HostPattern => |h| h.0.clone(),
    MethodName => |m| m.0.to_string(),
    HeaderName => |h| h.0.to_string(),
    HeaderValue => |v| String::from_utf8_lossy(v.0.as_bytes()).into_owned(),
    HashKey => |k| k.to_string(),
    PathRegex => |r| r.0.as_str().to_string(),
);

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: for<'de> serde::Deserialize<'de>>(yaml: &str) -> Result<T, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn durations_take_human_units_and_reject_zero() {
        assert_eq!(
            parse::<Interval>("500ms").unwrap(),
            Interval(Duration::from_millis(500))
        );
        assert_eq!(
            parse::<Interval>("2s").unwrap(),
            Interval(Duration::from_secs(2))
        );
        assert!(parse::<Interval>("0s")
            .unwrap_err()
            .contains("longer than zero"));
        assert!(parse::<Interval>("soon").unwrap_err().contains("duration"));
        assert!(parse::<Interval>("5").unwrap_err().contains("duration"));
    }

    #[test]
    fn numbers_are_range_checked() {
        assert_eq!(parse::<Threshold>("3").unwrap(), Threshold(3));
        assert!(parse::<Threshold>("0").is_err());
        assert!(parse::<Threshold>("-1").is_err());
        assert!(parse::<Weight>("1001").is_err());
        assert!(parse::<StatusCode>("99").is_err());
        assert_eq!(parse::<StatusCode>("204").unwrap(), StatusCode(204));
        assert!(parse::<PositiveCount>("two").is_err());
    }

    #[test]
    fn percentages_need_their_sign_and_stay_within_100() {
        for (text, hundredths) in [("20%", 2000), ("2.5%", 250), ("0%", 0), ("100%", 10_000)] {
            let parsed = parse::<Percentage>(text).unwrap();
            assert_eq!(parsed, Percentage(hundredths), "{text}");
            assert_eq!(parsed.to_string(), text, "written back as read");
        }
        assert_eq!(parse::<Percentage>("12.25%").unwrap().to_string(), "12.25%");
        for bad in [
            "120%", "abc", "20", "-5%", "\"%\"", "1.234%", "1.2.3%", "nan%", "inf%",
        ] {
            let error = parse::<Percentage>(bad).unwrap_err();
            assert!(
                error.contains("a percentage from 0% to 100%"),
                "{bad}: {error}"
            );
        }
        assert_eq!(Percentage(2000).of(20), 4);
        assert_eq!(Percentage(2000).of(4), 0, "rounded down");
        assert_eq!(RequestLimit(0).as_limit(), usize::MAX);
        assert_eq!(RequestLimit(2).as_limit(), 2);
    }

    #[test]
    fn addresses_and_paths_are_checked() {
        assert!(parse::<Addr>("127.0.0.1:8080").is_ok());
        assert!(parse::<Addr>("\"[::1]:80\"").is_ok());
        assert!(parse::<Addr>("localhost:80")
            .unwrap_err()
            .contains("not an address"));
        assert!(parse::<Addr>("127.0.0.1:99999").is_err());
        assert!(
            parse::<Addr>("0.0.0.0:8080").is_ok(),
            "a listener may say any address"
        );
        assert!(parse::<PeerAddr>("127.0.0.1:8001").is_ok());
        assert_eq!(
            parse::<PeerAddr>("Backend.Internal:8001").unwrap(),
            PeerAddr::Host(HostPort {
                host: "backend.internal".to_string(),
                port: 8001
            })
        );
        assert!(parse::<PeerAddr>("localhost:8001").is_ok());
        assert!(parse::<PeerAddr>("my_service:80").is_ok());
        assert!(parse::<PeerAddr>("localhost")
            .unwrap_err()
            .contains("needs a port"));
        assert!(parse::<PeerAddr>("localhost:0")
            .unwrap_err()
            .contains("port 0"));
        assert!(parse::<PeerAddr>("localhost:http").is_err());
        assert!(parse::<PeerAddr>("127.0.0.1:99999").is_err());
        assert!(parse::<PeerAddr>("1.2.3:80").is_err());
        assert!(parse::<PeerAddr>("\"::1:80\"")
            .unwrap_err()
            .contains("brackets"));
        assert!(parse::<PeerAddr>("-bad.example:80").is_err());
        assert!(parse::<PeerAddr>("a..b:80").is_err());
        assert!(parse::<SrvName>("_http._tcp.backend.example").is_ok());
        assert!(parse::<SrvName>("\"_http._tcp. x\"").is_err());
        assert!(parse::<PeerAddr>("0.0.0.0:8001")
            .unwrap_err()
            .contains("not an address a peer can have"));
        assert!(parse::<PeerAddr>("\"[::]:8001\"").is_err());
        assert!(parse::<PeerAddr>("127.0.0.1:0")
            .unwrap_err()
            .contains("port 0"));
        assert!(parse::<UrlPath>("/check").is_ok());
        assert!(parse::<UrlPath>("check").is_err());
        assert!(parse::<UrlPath>("\"/a b\"").is_err());
    }
}
