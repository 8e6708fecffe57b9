//! A route's `match`, compiled once per configuration: byte comparisons
//! and a compiled regular expression, nothing allocated per request.

use crate::config::MatchConfig;
use http::{HeaderMap, HeaderName, Method};

/// What the matchers read of a request.
pub struct RequestView<'a> {
    pub method: &'a Method,
    /// The canonical path (decoded, dot segments resolved, slashes merged).
    pub path: &'a [u8],
    /// The absolute-form target's authority, else the `Host` header.
    pub host: Option<&'a [u8]>,
    pub headers: &'a HeaderMap,
    /// The query, as sent.
    pub query: Option<&'a [u8]>,
}

enum HostMatch {
    /// The whole host, lower case.
    Exact(Box<[u8]>),
    /// `*.example.com`: `.example.com`, a suffix after at least one label.
    Suffix(Box<[u8]>),
}

enum PathMatch {
    Any,
    Prefix(Box<[u8]>),
    Exact(Box<[u8]>),
    Regex(regex::bytes::Regex),
}

/// A value a header or query parameter must have; `None`: any (present).
type Expected = Option<Box<[u8]>>;

/// A compiled `match`: every part given must hold.
pub struct Matcher {
    host: Option<HostMatch>,
    path: PathMatch,
    case_sensitive: bool,
    methods: Vec<Method>,
    /// A header and the value it must have (`None`: present).
    headers: Vec<(HeaderName, Expected)>,
    /// A query parameter and the value it must have (`None`: present).
    query: Vec<(Box<[u8]>, Expected)>,
}

/// `"*"` in `headers` and `query`: any value.
fn value_of(text: &str) -> Expected {
    (text != "*").then(|| text.as_bytes().into())
}

impl Matcher {
    pub fn new(config: &MatchConfig) -> Self {
        let bytes = |text: &str| -> Box<[u8]> { text.as_bytes().into() };
        let host = config.host.as_ref().map(|h| match h.0.strip_prefix('*') {
            Some(suffix) => HostMatch::Suffix(bytes(suffix)),
            None => HostMatch::Exact(bytes(&h.0)),
        });
        let path = if let Some(prefix) = &config.path_prefix {
            PathMatch::Prefix(bytes(&prefix.0))
        } else if let Some(path) = &config.path {
            PathMatch::Exact(bytes(&path.0))
        } else if let Some(regex) = &config.path_regex {
            let compiled = regex::bytes::RegexBuilder::new(regex.0.as_str())
                .case_insensitive(!config.case_sensitive)
                .build();
            // It compiled when the file was read; case folding does not
            // change that.
            PathMatch::Regex(compiled.unwrap_or_else(|_| regex.0.clone()))
        } else {
            PathMatch::Any
        };
        Matcher {
            host,
            path,
            case_sensitive: config.case_sensitive,
            methods: config.methods.iter().map(|m| m.0.clone()).collect(),
            headers: config
                .headers
                .iter()
                .map(|(name, value)| (name.0.clone(), value_of(value)))
                .collect(),
            query: config
                .query
                .iter()
                .map(|(key, value)| (bytes(key), value_of(value)))
                .collect(),
        }
    }

    /// Whether `request` is one this matches.
    #[inline]
    pub fn matches(&self, request: &RequestView<'_>) -> bool {
        self.host_matches(request.host)
            && self.path_matches(request.path)
            && (self.methods.is_empty() || self.methods.contains(request.method))
            && self.headers.iter().all(|(name, expected)| {
                let mut values = request.headers.get_all(name).iter();
                match expected {
                    None => values.next().is_some(),
                    Some(value) => values.any(|v| v.as_bytes() == &**value),
                }
            })
            && self.query.iter().all(|(key, expected)| {
                query_pairs(request.query.unwrap_or_default())
                    .any(|(k, v)| k == &**key && expected.as_ref().is_none_or(|e| v == &**e))
            })
    }

    fn host_matches(&self, host: Option<&[u8]>) -> bool {
        let Some(pattern) = &self.host else {
            return true;
        };
        let Some(host) = host.map(without_port) else {
            return false;
        };
        match pattern {
            HostMatch::Exact(exact) => host.eq_ignore_ascii_case(exact),
            HostMatch::Suffix(suffix) => {
                host.len() > suffix.len()
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
        }
    }

    fn path_matches(&self, path: &[u8]) -> bool {
        let same = |a: &[u8], b: &[u8]| {
            if self.case_sensitive {
                a == b
            } else {
                a.eq_ignore_ascii_case(b)
            }
        };
        match &self.path {
            PathMatch::Any => true,
            PathMatch::Prefix(prefix) => {
                path.len() >= prefix.len() && same(&path[..prefix.len()], prefix)
            }
            PathMatch::Exact(exact) => same(path, exact),
            PathMatch::Regex(regex) => regex.is_match(path),
        }
    }
}

/// `host` without a port: `example.com:8080` -> `example.com`,
/// `[::1]:8080` -> `[::1]`.
fn without_port(host: &[u8]) -> &[u8] {
    if host.first() == Some(&b'[') {
        return match host.iter().position(|b| *b == b']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.iter().rposition(|b| *b == b':') {
        Some(colon) => &host[..colon],
        None => host,
    }
}

/// The `key=value` pairs of a query, as sent (a key without `=` has an
/// empty value).
fn query_pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .split(|b| *b == b'&')
        .map(|pair| match pair.iter().position(|b| *b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &[][..]),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(yaml: &str) -> Matcher {
        Matcher::new(&serde_yaml::from_str(yaml).unwrap())
    }

    fn request<'a>(
        method: &'a Method,
        path: &'a str,
        host: Option<&'a str>,
        headers: &'a HeaderMap,
        query: Option<&'a str>,
    ) -> RequestView<'a> {
        RequestView {
            method,
            path: path.as_bytes(),
            host: host.map(str::as_bytes),
            headers,
            query: query.map(str::as_bytes),
        }
    }

    #[test]
    fn hosts_match_exactly_or_by_wildcard_ignoring_case_and_port() {
        let get = Method::GET;
        let headers = HeaderMap::new();
        let exact = matcher("{ host: api.example.com }");
        for host in ["api.example.com", "API.Example.com:8080"] {
            assert!(
                exact.matches(&request(&get, "/", Some(host), &headers, None)),
                "{host}"
            );
        }
        assert!(!exact.matches(&request(&get, "/", Some("www.example.com"), &headers, None)));
        assert!(!exact.matches(&request(&get, "/", None, &headers, None)));
        let wildcard = matcher("{ host: \"*.example.com\" }");
        assert!(wildcard.matches(&request(
            &get,
            "/",
            Some("a.b.example.com:80"),
            &headers,
            None
        )));
        assert!(!wildcard.matches(&request(&get, "/", Some("example.com"), &headers, None)));
        assert!(!wildcard.matches(&request(&get, "/", Some("badexample.com"), &headers, None)));
        assert_eq!(without_port(b"[::1]:8080"), b"[::1]");
    }

    #[test]
    fn paths_methods_headers_and_queries() {
        let mut headers = HeaderMap::new();
        headers.insert("x-canary", "1".parse().unwrap());
        let (get, post) = (Method::GET, Method::POST);
        let m = matcher(
            "{ path_prefix: /v2/, methods: [GET], headers: { x-canary: \"1\" }, query: { beta: \"1\", debug: \"*\" } }",
        );
        assert!(m.matches(&request(
            &get,
            "/v2/x",
            None,
            &headers,
            Some("debug&beta=1")
        )));
        assert!(
            !m.matches(&request(
                &get,
                "/V2/x",
                None,
                &headers,
                Some("debug&beta=1")
            )),
            "case-sensitive"
        );
        assert!(!m.matches(&request(
            &post,
            "/v2/x",
            None,
            &headers,
            Some("debug&beta=1")
        )));
        assert!(!m.matches(&request(&get, "/v2/x", None, &headers, Some("beta=1"))));
        assert!(!m.matches(&request(
            &get,
            "/v2/x",
            None,
            &HeaderMap::new(),
            Some("debug&beta=1")
        )));
        let insensitive = matcher("{ path: /Exact, case_sensitive: false }");
        assert!(insensitive.matches(&request(&get, "/exact", None, &headers, None)));
        assert!(!insensitive.matches(&request(&get, "/exact/", None, &headers, None)));
        let regex = matcher("{ path_regex: \"^/v[0-9]+/\" }");
        assert!(regex.matches(&request(&get, "/v12/a", None, &headers, None)));
        assert!(!regex.matches(&request(&get, "/vx/a", None, &headers, None)));
    }
}
