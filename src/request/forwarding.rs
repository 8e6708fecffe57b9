//! Who the client is, and what the peer is told about it.
//!
//! `X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Proto`, `X-Forwarded-Host`,
//! `Forwarded` (and `X-Client-IP`, `Client-IP`, `True-Client-IP`, and any of
//! them spelled with underscores) are claims. From a client they are lies waiting to be
//! believed (a spoofed `X-Real-IP: 10.0.0.1` against an IP allow-list
//! behind switchyard), so they are kept only when the connection comes from
//! one of `trusted_proxies` (a load balancer or CDN in front); from anyone
//! else they are dropped and replaced. Behind trusted proxies the client is
//! the rightmost `X-Forwarded-For` hop that is not itself a trusted proxy
//! (nginx's `real_ip_recursive on`): hops to its left were written by the
//! client and prove nothing. That address is the one deny rules,
//! `status_allow`, `hash_key: client_ip` and logs use.
//!
//! Every proxied request gets `X-Forwarded-For` (the kept chain plus the
//! connection's address), `X-Real-IP` (the client) and `X-Forwarded-Proto`.
//! IPv4 clients of a dual-stack listener (`::ffff:a.b.c.d`) are IPv4 here,
//! as everywhere in switchyard.

use crate::config::Cidr;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use pingora_error::Result;
use pingora_http::RequestHeader;
use std::net::{IpAddr, Ipv4Addr};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Names of headers by which clients claim an origin, besides the ones
/// switchyard sets: only a trusted proxy may send them.
const CLAIMS: [&str; 8] = [
    "x-forwarded-for",
    "x-real-ip",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "x-client-ip",
    "client-ip",
    "true-client-ip",
];

/// Whether `name` claims where a request comes from. CGI-style servers
/// (WSGI, Rack, PHP) read `X_Forwarded_For` as `X-Forwarded-For`, so an
/// underscore counts as a dash.
fn is_claim(name: &HeaderName) -> bool {
    let name = name.as_str().as_bytes();
    CLAIMS.iter().any(|claim| {
        claim.len() == name.len()
            && claim
                .bytes()
                .zip(name)
                .all(|(c, n)| c == *n || (c == b'-' && *n == b'_'))
    })
}

/// The `trusted_proxies` policy.
#[derive(Debug, Clone, Default)]
pub struct Forwarding {
    trusted: Vec<Cidr>,
}

/// Where a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The address of the connection (the last hop).
    pub peer: IpAddr,
    /// The client, as far as trusted proxies vouch for it.
    pub client: IpAddr,
    /// Whether `peer` is a trusted proxy, whose forwarding headers stand.
    pub via_trusted_proxy: bool,
    /// Whether the request came over TLS (`X-Forwarded-Proto: https`).
    pub https: bool,
}

impl Forwarding {
    /// The policy trusting `trusted` (`trusted_proxies`).
    pub fn new(trusted: Vec<Cidr>) -> Self {
        Forwarding { trusted }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// Where a request that arrived from `peer` with `headers` comes from
    /// (`https` is the caller's to set).
    pub fn origin(&self, peer: IpAddr, headers: &HeaderMap) -> Origin {
        let peer = peer.to_canonical();
        if self.trusted.is_empty() || !self.trusts(peer) {
            return Origin {
                peer,
                client: peer,
                via_trusted_proxy: false,
                https: false,
            };
        }
        // Walk the chain from the right: each trusted hop vouches for the
        // one to its left; the first untrusted one is the client. A hop
        // that is not an address ends the walk at the last good one.
        let mut client = peer;
        let hops = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .rev()
            .flat_map(|value| value.as_bytes().rsplit(|b| *b == b','));
        for hop in hops {
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        Origin {
            peer,
            client,
            via_trusted_proxy: true,
            https: false,
        }
    }

    /// Set the forwarding headers of a request to a peer.
    pub fn apply(&self, request: &mut RequestHeader, origin: &Origin) -> Result<()> {
        let mut peer_text = IpText::new();
        let peer_text = peer_text.write(origin.peer);
        let mut forwarded_for = None;
        if origin.via_trusted_proxy {
            let chain: Vec<&[u8]> = request
                .headers
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .map(HeaderValue::as_bytes)
                .collect();
            if !chain.is_empty() {
                let mut value = chain.join(&b", "[..]);
                value.extend_from_slice(b", ");
                value.extend_from_slice(peer_text);
                forwarded_for = Some(value);
            }
        } else if request.headers.keys().any(is_claim) {
            let claims: Vec<HeaderName> = request
                .headers
                .keys()
                .filter(|name| is_claim(name))
                .cloned()
                .collect();
            for name in &claims {
                request.remove_header(name);
            }
        }
        let peer_value = HeaderValue::from_bytes(peer_text)
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        let client_value = if origin.client == origin.peer {
            peer_value.clone()
        } else {
            let mut client_text = IpText::new();
            HeaderValue::from_bytes(client_text.write(origin.client))
                .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
        };
        let forwarded_for = match forwarded_for {
            Some(chain) => HeaderValue::from_bytes(&chain).unwrap_or(peer_value),
            None => peer_value,
        };
        // Names as static bytes: Pingora then copies nothing for the
        // case-preserving name it keeps beside each header.
        request.insert_header(Bytes::from_static(b"X-Forwarded-For"), forwarded_for)?;
        request.insert_header(Bytes::from_static(b"X-Real-IP"), client_value)?;
        if !(origin.via_trusted_proxy && request.headers.contains_key(&X_FORWARDED_PROTO)) {
            let proto = HeaderValue::from_static(if origin.https { "https" } else { "http" });
            request.insert_header(Bytes::from_static(b"X-Forwarded-Proto"), proto)?;
        }
        Ok(())
    }
}

/// One `X-Forwarded-For` hop: an address, perhaps with a port
/// (`1.2.3.4:80`, `[::1]:80`), around spaces.
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(hop).ok()?.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    text.parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.ip().to_canonical())
}

/// An IP address as text, written without `core::fmt` for the common IPv4
/// case (formatting was a tenth of switchyard's own per-request cost).
struct IpText {
    buffer: [u8; 45],
}

impl IpText {
    fn new() -> Self {
        IpText { buffer: [0; 45] }
    }

    fn write(&mut self, ip: IpAddr) -> &[u8] {
        match ip {
            IpAddr::V4(v4) => {
                let length = write_ipv4(v4, &mut self.buffer);
                &self.buffer[..length]
            }
            IpAddr::V6(v6) => {
                use std::io::Write;
                let mut cursor = std::io::Cursor::new(&mut self.buffer[..]);
                // 45 bytes hold the longest IPv6 text.
                let _ = write!(cursor, "{v6}");
                let length = cursor.position() as usize;
                &self.buffer[..length]
            }
        }
    }
}

fn write_ipv4(ip: Ipv4Addr, out: &mut [u8; 45]) -> usize {
    let mut at = 0;
    for (index, octet) in ip.octets().into_iter().enumerate() {
        if index > 0 {
            out[at] = b'.';
            at += 1;
        }
        if octet >= 100 {
            out[at] = b'0' + octet / 100;
            at += 1;
        }
        if octet >= 10 {
            out[at] = b'0' + octet / 10 % 10;
            at += 1;
        }
        out[at] = b'0' + octet % 10;
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(trusted: &[&str]) -> Forwarding {
        Forwarding::new(
            trusted
                .iter()
                .map(|t| serde_yaml::from_str::<Cidr>(t).unwrap())
                .collect(),
        )
    }

    fn request(headers: &[(&str, &str)]) -> RequestHeader {
        let mut request = RequestHeader::build("GET", b"/", None).unwrap();
        for (name, value) in headers {
            request.append_header(name.to_string(), *value).unwrap();
        }
        request
    }

    fn header(request: &RequestHeader, name: &str) -> Option<String> {
        let values: Vec<_> = request
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        (!values.is_empty()).then(|| values.join(" | "))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_client_cannot_forge_its_origin() {
        let forwarding = policy(&[]);
        let mut req = request(&[
            ("X-Forwarded-For", "10.0.0.1"),
            ("X-Real-IP", "10.0.0.1"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "admin"),
            ("Forwarded", "for=10.0.0.1"),
            ("X_Forwarded_For", "10.0.0.3"),
            ("True-Client-IP", "10.0.0.4"),
            ("X-Forwarded-Foo", "kept"),
        ]);
        let origin = forwarding.origin(ip("203.0.113.7"), &req.headers);
        assert_eq!(origin.client, ip("203.0.113.7"));
        forwarding.apply(&mut req, &origin).unwrap();
        assert_eq!(header(&req, "x-forwarded-for").unwrap(), "203.0.113.7");
        assert_eq!(header(&req, "x-real-ip").unwrap(), "203.0.113.7");
        assert_eq!(header(&req, "x-forwarded-proto").unwrap(), "http");
        assert_eq!(header(&req, "x-forwarded-host"), None);
        assert_eq!(header(&req, "forwarded"), None);
        assert_eq!(header(&req, "x_forwarded_for"), None);
        assert_eq!(header(&req, "true-client-ip"), None);
        assert_eq!(header(&req, "x-forwarded-foo").unwrap(), "kept");
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let forwarding = policy(&["10.0.0.0/8"]);
        let mut req = request(&[
            ("X-Forwarded-For", "6.6.6.6, 198.51.100.2"),
            ("X-Forwarded-For", "10.1.1.1"),
            ("X-Forwarded-Proto", "https"),
        ]);
        let origin = forwarding.origin(ip("10.0.0.2"), &req.headers);
        assert_eq!(origin.client, ip("198.51.100.2"), "not the leftmost hop");
        forwarding.apply(&mut req, &origin).unwrap();
        assert_eq!(
            header(&req, "x-forwarded-for").unwrap(),
            "6.6.6.6, 198.51.100.2, 10.1.1.1, 10.0.0.2",
            "both headers kept, in order"
        );
        assert_eq!(header(&req, "x-real-ip").unwrap(), "198.51.100.2");
        assert_eq!(header(&req, "x-forwarded-proto").unwrap(), "https");

        // All hops trusted: the leftmost. A garbage hop ends the walk.
        let all = request(&[("X-Forwarded-For", "10.9.9.9, 10.8.8.8")]);
        assert_eq!(
            forwarding.origin(ip("10.0.0.2"), &all.headers).client,
            ip("10.9.9.9")
        );
        let garbage = request(&[("X-Forwarded-For", "1.1.1.1, junk, 10.8.8.8")]);
        assert_eq!(
            forwarding.origin(ip("10.0.0.2"), &garbage.headers).client,
            ip("10.8.8.8")
        );
        let ported = request(&[("X-Forwarded-For", "[2001:db8::1]:443")]);
        assert_eq!(
            forwarding.origin(ip("10.0.0.2"), &ported.headers).client,
            ip("2001:db8::1")
        );
        // The same headers from an untrusted address count for nothing.
        let origin = forwarding.origin(ip("203.0.113.7"), &req.headers);
        assert_eq!(origin.client, ip("203.0.113.7"));
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let forwarding = policy(&["127.0.0.0/8"]);
        let origin = forwarding.origin(ip("::ffff:127.0.0.1"), &HeaderMap::new());
        assert_eq!(origin.peer, ip("127.0.0.1"));
        assert!(origin.via_trusted_proxy);
    }

    #[test]
    fn addresses_are_written_like_display_does() {
        for text in [
            "0.0.0.0",
            "1.2.3.4",
            "10.100.255.9",
            "255.255.255.255",
            "::1",
            "2001:db8::ff",
        ] {
            let mut out = IpText::new();
            assert_eq!(out.write(ip(text)), text.as_bytes());
        }
    }
}
