//! `X-Request-ID`: one name for a request in every log it passes through
//! (a proxy in front, switchyard's access log, the peer's own logs, the
//! client's bug report).
//!
//! A value is only kept when the connection comes from a trusted proxy
//! (`trusted_proxies`), which has named the request already; from anyone
//! else it is replaced, as the forwarding headers are: a client choosing
//! the ids of its requests could make them collide with others' in the
//! logs. A new id is 128 random bits as 32 lowercase hex digits, like
//! nginx's `$request_id`, from a per-thread generator: no lock, no system
//! call, and one allocation (the header value) per request.

use crate::request::forwarding::Origin;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

/// The header that carries the id, both ways.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest id kept from a trusted proxy.
pub const MAX_KEPT_LENGTH: usize = 128;

/// The id of a request that arrived with `headers` from `origin` (`None`:
/// not an inet connection, never trusted).
pub fn request_id(origin: Option<&Origin>, headers: &HeaderMap) -> HeaderValue {
    if origin.is_some_and(|o| o.via_trusted_proxy) {
        if let Some(kept) = headers
            .get(&X_REQUEST_ID)
            .filter(|v| is_valid(v.as_bytes()))
        {
            return kept.clone();
        }
    }
    generate()
}

/// Whether a received id may be kept: 1 to 128 visible ASCII characters
/// (no spaces, which would split log fields).
pub fn is_valid(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_KEPT_LENGTH && id.iter().all(u8::is_ascii_graphic)
}

/// A new id: 128 random bits, 32 lowercase hex digits.
pub fn generate() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = fastrand::u128(..);
    let mut text = [0u8; 32];
    for (index, digit) in text.iter_mut().enumerate() {
        let nibble = (bits >> (4 * (31 - index))) & 0xf;
        // A nibble is below 16: the index is in range.
        *digit = HEX[nibble as usize];
    }
    HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::IpAddr;

    fn origin(trusted: bool) -> Origin {
        let ip: IpAddr = [127, 0, 0, 1].into();
        Origin {
            peer: ip,
            client: ip,
            via_trusted_proxy: trusted,
            https: false,
        }
    }

    fn headers(id: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(&X_REQUEST_ID, HeaderValue::from_bytes(id).unwrap());
        headers
    }

    fn is_generated(id: &HeaderValue) -> bool {
        id.len() == 32
            && id
                .as_bytes()
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    }

    #[test]
    fn generated_ids_are_32_hex_digits_and_differ() {
        let ids: HashSet<HeaderValue> = (0..1000).map(|_| generate()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(is_generated));
    }

    #[test]
    fn only_a_trusted_proxy_names_a_request() {
        let sent = headers(b"abc-123");
        let kept = request_id(Some(&origin(true)), &sent);
        assert_eq!(kept, "abc-123");
        assert!(is_generated(&request_id(Some(&origin(false)), &sent)));
        assert!(is_generated(&request_id(None, &sent)));
        assert!(is_generated(&request_id(
            Some(&origin(true)),
            &HeaderMap::new()
        )));
        for bad in [&b"has space"[..], &[b'x'; 129][..], b"tab\there"] {
            let id = request_id(Some(&origin(true)), &headers(bad));
            assert!(is_generated(&id), "{bad:?} was kept");
        }
        assert_eq!(
            request_id(Some(&origin(true)), &headers(&[b'x'; 128])).len(),
            128
        );
    }
}
