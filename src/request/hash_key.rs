//! The key `consistent_hash` hashes for a request (`hash_key`): its path
//! and query, its client's address, a header's value or a cookie's value.
//!
//! The key is borrowed from the request (a client address is copied into a
//! buffer of the caller's), so that finding it allocates nothing: a header
//! is one lookup in the request's header map, a cookie a scan of the
//! `Cookie` header's `name=value` pairs. A request without the header or
//! cookie (or with an empty value, which names no one) has no key: the
//! empty slice, for which the selector picks an eligible peer at random, as
//! Envoy does when a hash policy yields no hash.

use crate::config::HashKey;
use http::{header, HeaderMap};
use pingora_http::RequestHeader;
use std::net::IpAddr;

/// The key `key` names in `request`, from `client` (the client's address,
/// if known); empty when the request has none. A client address is copied
/// into `buffer`.
pub fn of<'a>(
    key: &HashKey,
    request: &'a RequestHeader,
    client: Option<IpAddr>,
    buffer: &'a mut [u8; 16],
) -> &'a [u8] {
    match key {
        HashKey::Uri => request
            .uri
            .path_and_query()
            .map_or(b"/", |pq| pq.as_str().as_bytes()),
        HashKey::ClientIp => match client {
            Some(IpAddr::V4(ip)) => {
                buffer[..4].copy_from_slice(&ip.octets());
                &buffer[..4]
            }
            Some(IpAddr::V6(ip)) => {
                *buffer = ip.octets();
                &buffer[..]
            }
            None => b"",
        },
        HashKey::Header(name) => request.headers.get(name).map_or(b"", |v| v.as_bytes()),
        HashKey::Cookie(name) => cookie(&request.headers, name.as_bytes()).unwrap_or(b""),
    }
}

/// The value of the first cookie called `name` in `headers` (HTTP/2
/// clients may send a `Cookie` header per cookie).
fn cookie<'a>(headers: &'a HeaderMap, name: &[u8]) -> Option<&'a [u8]> {
    let mut cookies = headers.get_all(header::COOKIE).into_iter();
    cookies.find_map(|value| cookie_in(value.as_bytes(), name))
}

/// The value of the first `name=value` pair of one `Cookie` header (pairs
/// separated by `;` and optional spaces, RFC 6265 §4.2.1), as sent: a
/// quoted value keeps its quotes, which is no matter for a key.
fn cookie_in<'a>(cookies: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    cookies.split(|&b| b == b';').find_map(|pair| {
        let value = pair.trim_ascii().strip_prefix(name)?.strip_prefix(b"=")?;
        Some(value.trim_ascii())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HashKey;

    fn request(headers: &[(&'static str, &'static str)]) -> RequestHeader {
        let mut request = RequestHeader::build("GET", b"/cart?id=7", None).unwrap();
        for (name, value) in headers {
            request.append_header(*name, *value).unwrap();
        }
        request
    }

    fn key_of<'a>(key: &str, request: &'a RequestHeader, buffer: &'a mut [u8; 16]) -> &'a [u8] {
        let key: HashKey = serde_yaml::from_str(key).unwrap();
        let client = Some(IpAddr::from([10, 0, 0, 7]));
        of(&key, request, client, buffer)
    }

    #[test]
    fn each_kind_of_key_is_found() {
        let request = request(&[
            ("x-user", "alice"),
            ("cookie", "theme=dark; session=abc123"),
            ("cookie", "session=later"),
        ]);
        let mut buffer = [0; 16];
        assert_eq!(key_of("uri", &request, &mut buffer), b"/cart?id=7");
        assert_eq!(key_of("client_ip", &request, &mut buffer), [10, 0, 0, 7]);
        assert_eq!(key_of("header:X-User", &request, &mut buffer), b"alice");
        assert_eq!(key_of("cookie:session", &request, &mut buffer), b"abc123");
        assert_eq!(key_of("cookie:theme", &request, &mut buffer), b"dark");
    }

    #[test]
    fn a_missing_header_or_cookie_is_no_key() {
        let request = request(&[("cookie", "sessionid=1; xsession=2; session")]);
        let mut buffer = [0; 16];
        assert_eq!(key_of("header:x-user", &request, &mut buffer), b"");
        assert_eq!(key_of("cookie:session", &request, &mut buffer), b"");
        assert_eq!(key_of("cookie:Sessionid", &request, &mut buffer), b"");
    }

    #[test]
    fn cookie_pairs_are_split_and_trimmed() {
        assert_eq!(cookie_in(b"a=1;b=2", b"b"), Some(&b"2"[..]));
        assert_eq!(cookie_in(b"a=1 ;  b = 2 ", b"a"), Some(&b"1"[..]));
        assert_eq!(cookie_in(b"a=\"q\"", b"a"), Some(&b"\"q\""[..]));
        assert_eq!(cookie_in(b"a=", b"a"), Some(&b""[..]));
        assert_eq!(cookie_in(b"", b"a"), None);
        assert_eq!(cookie_in(b"ab=1", b"a"), None);
    }
}
