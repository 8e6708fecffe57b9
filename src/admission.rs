//! What a request must satisfy before it is routed: size limits, unambiguous
//! framing (no request smuggling), and the `deny` rules.
//!
//! Pingora already answers malformed request lines and conflicting
//! `Content-Length` headers with 400. What it lets through and switchyard
//! refuses: `Transfer-Encoding` together with `Content-Length` (the classic
//! smuggling vector: two hops may disagree about where the body ends), any
//! transfer coding but a lone `chunked`, and requests over the configured
//! limits.

use crate::config::{allowed, Cidr, Config, DenyRule};
use http::header;
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

pub struct Admission {
    max_header_bytes: u64,
    max_headers: usize,
    max_body_bytes: u64,
    deny: Vec<DenyRule>,
    status_allow: Vec<Cidr>,
}

impl Admission {
    pub fn new(config: &Config) -> Self {
        Admission {
            max_header_bytes: config.limits.max_header_bytes.0,
            max_headers: config.limits.max_headers.0,
            max_body_bytes: config.limits.max_body_bytes.0,
            deny: config.deny.clone(),
            status_allow: config.status_allow.clone(),
        }
    }

    /// The largest request body accepted.
    pub fn max_body_bytes(&self) -> u64 {
        self.max_body_bytes
    }

    /// Check a request header; `Err` says how to refuse it.
    /// `had_content_length`: the header as received carried a
    /// `Content-Length` (Pingora drops it from a request that also has
    /// `Transfer-Encoding`, so `request` alone cannot tell).
    pub fn check(
        &self,
        request: &RequestHeader,
        had_content_length: bool,
        client: Option<IpAddr>,
    ) -> Result<(), Refusal> {
        self.check_size(request)?;
        self.check_framing(request, had_content_length)?;
        let path = request.uri.path();
        if self.deny.iter().any(|rule| rule.denies(path, client)) {
            return Err(Refusal::new(403, "this path is not available to you"));
        }
        Ok(())
    }

    /// Whether `client` may see the status page.
    pub fn may_see_status(&self, client: Option<IpAddr>) -> bool {
        allowed(&self.status_allow, client)
    }

    fn check_size(&self, request: &RequestHeader) -> Result<(), Refusal> {
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
        if let Some(length) = headers.get(header::CONTENT_LENGTH) {
            let length: u64 = length
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or(Refusal::new(400, "invalid Content-Length"))?;
            if length > self.max_body_bytes {
                return Err(Refusal::new(413, "request body too large"));
            }
        }
        Ok(())
    }
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
    }

    #[test]
    fn deny_rules_apply_by_client_address() {
        assert_eq!(status(&request("/api/switch", &[])), 403);
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(admission()
            .check(&request("/api/switch", &[]), false, Some(local))
            .is_ok());
        assert!(
            admission().may_see_status(None),
            "no status_allow: everyone"
        );
    }
}
