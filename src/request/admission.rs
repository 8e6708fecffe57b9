//! What a request must satisfy before it is routed: size limits, a `Host`,
//! unambiguous framing (no request smuggling), a path that can be made safe
//! ([`path`]), and the `deny` rules, matched against that
//! path's canonical form.
//!
//! Pingora already answers malformed request lines, conflicting
//! `Content-Length` headers and several `Host` headers with 400. What it lets
//! through and switchyard refuses: `Transfer-Encoding` together with
//! `Content-Length` (the classic smuggling vector: two hops may disagree
//! about where the body ends), any transfer coding but a lone `chunked`, an
//! HTTP/1.1 request without `Host` (RFC 9112 §3.2), and requests over the
//! configured limits.

use super::path::{self, RequestPath};
use crate::config::{allowed, Cidr, Config, DenyRule, EscapedSlashes};
use http::{header, Version};
use pingora_http::RequestHeader;
use std::net::IpAddr;

/// Why a request is refused: the status to answer and a short reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
}

impl Refusal {
    const fn new(status: u16, reason: &'static str) -> Self {
        Refusal { status, reason }
    }
}

/// The admission rules of one configuration.
pub struct Admission {
    max_header_bytes: u64,
    max_headers: usize,
    max_body_bytes: u64,
    reject_encoded_slash: bool,
    deny: Vec<DenyRule>,
    status_allow: Vec<Cidr>,
}

impl Admission {
    pub fn new(config: &Config) -> Self {
        Admission {
            max_header_bytes: config.limits.max_header_bytes.0,
            max_headers: config.limits.max_headers.0,
            max_body_bytes: config.limits.max_body_bytes.0,
            reject_encoded_slash: config.escaped_slashes == EscapedSlashes::Reject,
            deny: config.deny.clone(),
            status_allow: config.status_allow.clone(),
        }
    }

    /// The largest request body accepted.
    pub fn max_body_bytes(&self) -> u64 {
        self.max_body_bytes
    }

    /// Check a request header from `client`; its path read into the forms
    /// rules match and peers get, or how to refuse it.
    /// `had_content_length`: the header as received carried a
    /// `Content-Length` (Pingora drops it from a request that also has
    /// `Transfer-Encoding`, so `request` alone cannot tell).
    pub fn check<'r>(
        &self,
        request: &'r RequestHeader,
        had_content_length: bool,
        client: Option<IpAddr>,
    ) -> Result<RequestPath<'r>, Refusal> {
        self.check_size(request)?;
        if request.version == Version::HTTP_11 && !request.headers.contains_key(header::HOST) {
            return Err(Refusal::new(400, "an HTTP/1.1 request needs a Host header"));
        }
        self.check_framing(request, had_content_length)?;
        let path = path::read(request.raw_path(), self.reject_encoded_slash)
            .map_err(|e| Refusal::new(400, e.reason()))?;
        if self
            .deny
            .iter()
            .any(|rule| rule.denies(&path.canonical, client))
        {
            return Err(Refusal::new(403, "this path is not available to you"));
        }
        Ok(path)
    }

    /// Whether `client` may see the status page.
    pub fn may_see_status(&self, client: Option<IpAddr>) -> bool {
        allowed(&self.status_allow, client)
    }

    fn check_size(&self, request: &RequestHeader) -> Result<(), Refusal> {
        if request.raw_path().len() as u64 > self.max_header_bytes {
            return Err(Refusal::new(414, "request target too long"));
        }
        let headers = &request.headers;
        if headers.len() > self.max_headers {
            return Err(Refusal::new(431, "too many request headers"));
        }
        // Name, ": ", value and CRLF of each line.
        let bytes: u64 = headers
            .iter()
            .map(|(name, value)| (name.as_str().len() + value.len() + 4) as u64)
            .sum();
        if bytes > self.max_header_bytes {
            return Err(Refusal::new(431, "request header fields too large"));
        }
        Ok(())
    }

    fn check_framing(
        &self,
        request: &RequestHeader,
        had_content_length: bool,
    ) -> Result<(), Refusal> {
        let headers = &request.headers;
        let lengths = headers.get_all(header::CONTENT_LENGTH).iter().count();
        let codings: Vec<_> = headers.get_all(header::TRANSFER_ENCODING).iter().collect();
        if !codings.is_empty() {
            if lengths > 0 || had_content_length {
                return Err(Refusal::new(
                    400,
                    "Transfer-Encoding and Content-Length together",
                ));
            }
            let chunked_only = codings.len() == 1
                && codings[0]
                    .to_str()
                    .is_ok_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
            if !chunked_only {
                return Err(Refusal::new(400, "unsupported Transfer-Encoding"));
            }
        }
        if lengths > 1 {
            return Err(Refusal::new(400, "more than one Content-Length"));
        }
        if let Some(length) = content_length(request)? {
            if length > self.max_body_bytes {
                return Err(Refusal::new(413, "request body too large"));
            }
        }
        Ok(())
    }
}

/// The request's `Content-Length`, if it has one.
pub fn content_length(request: &RequestHeader) -> Result<Option<u64>, Refusal> {
    request
        .headers
        .get(header::CONTENT_LENGTH)
        .map(|length| {
            length
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or(Refusal::new(400, "invalid Content-Length"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission() -> Admission {
        let config = Config::parse(
            "limits: { max_header_bytes: 200, max_headers: 5, max_body_bytes: 100 }
deny: [{ path_prefix: /api/switch, allow: [127.0.0.0/8] }]
upstreams: { b: { peers: [127.0.0.1:1] } }
",
            "test.yaml",
        )
        .unwrap();
        Admission::new(&config)
    }

    fn request(path: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut request = RequestHeader::build("POST", path.as_bytes(), None).unwrap();
        request.append_header("Host", "x").unwrap();
        for (name, value) in headers {
            request.append_header(name.to_string(), *value).unwrap();
        }
        request
    }

    fn status(request: &RequestHeader) -> u16 {
        let outside: IpAddr = "203.0.113.1".parse().unwrap();
        let had_length = request.headers.contains_key(header::CONTENT_LENGTH);
        admission()
            .check(request, had_length, Some(outside))
            .err()
            .map_or(200, |r| r.status)
    }

    #[test]
    fn framing_must_be_unambiguous() {
        assert_eq!(status(&request("/", &[("content-length", "5")])), 200);
        assert_eq!(
            status(&request("/", &[("transfer-encoding", "chunked")])),
            200
        );
        assert_eq!(
            status(&request("/", &[("transfer-encoding", " Chunked ")])),
            200
        );
        let both = [("transfer-encoding", "chunked"), ("content-length", "5")];
        assert_eq!(status(&request("/", &both)), 400);
        assert_eq!(
            status(&request("/", &[("transfer-encoding", "gzip, chunked")])),
            400
        );
        assert_eq!(
            status(&request("/", &[("transfer-encoding", "xchunked")])),
            400
        );
        let twice = [
            ("transfer-encoding", "chunked"),
            ("transfer-encoding", "chunked"),
        ];
        assert_eq!(status(&request("/", &twice)), 400);
        let lengths = [("content-length", "5"), ("content-length", "5")];
        assert_eq!(status(&request("/", &lengths)), 400);
        // What Pingora leaves of a request that had both: the TE alone.
        let chunked = request("/", &[("transfer-encoding", "chunked")]);
        assert!(admission().check(&chunked, true, None).is_err());
        assert_eq!(status(&request("/", &[("content-length", "-1")])), 400);
    }

    #[test]
    fn limits_are_enforced() {
        assert_eq!(status(&request("/", &[("content-length", "101")])), 413);
        let many: Vec<(&str, &str)> = (0..6).map(|_| ("x-a", "1")).collect();
        assert_eq!(status(&request("/", &many)), 431);
        let big = "v".repeat(300);
        assert_eq!(status(&request("/", &[("x-big", &big)])), 431);
        assert_eq!(status(&request(&format!("/{big}"), &[])), 414);
    }

    #[test]
    fn http_1_1_needs_a_host() {
        let mut no_host = RequestHeader::build("GET", b"/", None).unwrap();
        assert_eq!(
            admission().check(&no_host, false, None).unwrap_err().status,
            400
        );
        no_host.set_version(Version::HTTP_10);
        assert!(admission().check(&no_host, false, None).is_ok());
    }

    #[test]
    fn deny_rules_apply_to_every_spelling_of_a_path() {
        for path in [
            "/api/switch",
            "//api/switch",
            "/API/switch",
            "/api/%73witch",
            "/x/../api/switch",
        ] {
            assert_eq!(status(&request(path, &[])), 403, "{path}");
        }
        assert_eq!(status(&request("/api/a\\b", &[])), 400);
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(admission()
            .check(&request("/api/switch", &[]), false, Some(local))
            .is_ok());
        assert!(
            !admission().may_see_status(Some("203.0.113.1".parse().unwrap())),
            "status_allow defaults to private networks"
        );
        assert!(admission().may_see_status(Some(local)));
    }
}
