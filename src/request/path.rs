//! The request path twice over: the form that rules match, and the form that
//! peers get.
//!
//! A peer and switchyard must not disagree about which resource a request
//! names, or a `deny` rule can be walked around: `//api/switch`,
//! `/api/./switch`, `/x/../api/switch`, `/api/%73witch`, `/api%2fswitch` all
//! reach `/api/switch` on one backend or another. So each request target is
//! read once into two forms:
//!
//! - the **forwarded** path, minimally normalized as RFC 3986 §6.2.2 allows
//!   without changing what the path means: percent-encoded unreserved
//!   characters decoded, dot segments (`.`, `..`) resolved. Empty segments
//!   (`//`) and encoded slashes (`%2F`) stay as sent: legitimate paths use
//!   them (`/group%2Fproject`, object-store keys);
//! - the **canonical** path that deny rules, the status path and routing
//!   match: the forwarded path with every escape decoded (`%2F` included),
//!   path parameters (`;jsessionid=...`) cut off each segment, and empty
//!   segments dropped. A rule that covers a prefix covers every spelling of
//!   it that a backend could read as that prefix.
//!
//! What cannot be made safe is refused ([`PathError`], answered with 400): a
//! raw or encoded backslash (some servers read it as `/`), NUL and other
//! control characters, a malformed escape, a `..` above the root, a dot
//! segment hidden in an encoded slash or behind a path parameter
//! (`/api/switch/..;/`: `/api/` to Tomcat, under `/api/switch/` to Go), and
//! a target that is not a path (`%20/api/switch` is what Pingora makes of
//! `GET  /api/switch`, with two spaces).
//!
//! A path with nothing to normalize (the common case) is checked in one pass
//! and borrowed, not copied.

use std::borrow::Cow;
use std::fmt;

/// Why a request target is refused (400 Bad Request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not `/path`, `http(s)://authority/path` or `*`.
    NotAPath,
    /// A raw or percent-encoded control character (NUL included).
    Control,
    /// A raw or percent-encoded backslash.
    Backslash,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// A `..` segment that would climb above `/`.
    AboveRoot,
    /// An encoded slash where `escaped_slashes: reject` forbids it.
    EncodedSlash,
    /// A `.` or `..` segment hidden in an encoded slash or behind a path
    /// parameter, which backends resolve differently.
    HiddenDotSegment,
}

impl PathError {
    /// The reason given to the client.
    pub fn reason(self) -> &'static str {
        match self {
            PathError::NotAPath => "the request target is not a path",
            PathError::Control => "control character in the request path",
            PathError::Backslash => "backslash in the request path",
            PathError::BadEscape => "malformed percent-escape in the request path",
            PathError::AboveRoot => "the request path climbs above /",
            PathError::EncodedSlash => "encoded slash (%2F) in the request path",
            PathError::HiddenDotSegment => {
                "dot segment hidden in an encoded slash or a path parameter"
            }
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// A request target read into its two forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath<'a> {
    /// What rules and routing match (see the module docs).
    pub canonical: Cow<'a, [u8]>,
    /// The origin-form target (path and query) to send to the peer, when it
    /// differs from the one received; `None` forwards the target as it came.
    pub forward: Option<Vec<u8>>,
    /// The authority of an absolute-form target (`http://host/path`), which
    /// replaces the `Host` header (RFC 9112 §3.2.2).
    pub authority: Option<&'a [u8]>,
}

/// Read `target`, the raw request-target of a request line.
/// `reject_encoded_slash` refuses `%2F` (config `escaped_slashes: reject`).
pub fn read(target: &[u8], reject_encoded_slash: bool) -> Result<RequestPath<'_>, PathError> {
    if target == b"*" {
        // OPTIONS * (asterisk-form): no path to normalize.
        return Ok(RequestPath {
            canonical: Cow::Borrowed(target),
            forward: None,
            authority: None,
        });
    }
    let (authority, origin) = split_absolute_form(target)?;
    let (path, query) = match origin.iter().position(|b| *b == b'?') {
        Some(at) => origin.split_at(at),
        None => (origin, &b""[..]),
    };
    if path.first() != Some(&b'/') {
        return Err(PathError::NotAPath);
    }
    if is_plain(path) {
        return Ok(RequestPath {
            canonical: Cow::Borrowed(path),
            // An absolute-form target goes on in origin form.
            forward: authority.map(|_| origin.to_vec()),
            authority,
        });
    }
    let forwarded = forwarded_path(path, reject_encoded_slash)?;
    let canonical = canonical_path(&forwarded)?;
    let forward = (authority.is_some() || forwarded != path).then(|| {
        let mut target = forwarded;
        target.extend_from_slice(query);
        target
    });
    Ok(RequestPath {
        canonical: Cow::Owned(canonical),
        forward,
        authority,
    })
}

/// `http://host/path` -> (Some(host), `/path`); an origin-form target is
/// returned as it is.
fn split_absolute_form(target: &[u8]) -> Result<(Option<&[u8]>, &[u8]), PathError> {
    if target.first() == Some(&b'/') {
        return Ok((None, target));
    }
    let rest = strip_prefix_ignore_case(target, b"http://")
        .or_else(|| strip_prefix_ignore_case(target, b"https://"))
        .ok_or(PathError::NotAPath)?;
    let end = rest
        .iter()
        .position(|b| *b == b'/' || *b == b'?')
        .unwrap_or(rest.len());
    let (authority, origin) = rest.split_at(end);
    if authority.is_empty() || origin.first() != Some(&b'/') {
        // `http://host` and `http://host?q` name no path: RFC 9112 gives
        // them `/`, but nothing legitimate sends them to a balancer.
        return Err(PathError::NotAPath);
    }
    Ok((Some(authority), origin))
}

fn strip_prefix_ignore_case<'a>(text: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &text[prefix.len()..])
}

/// Whether `path` needs no work: no escape, backslash, control or
/// non-ASCII byte, no empty segment, no dot segment, no path parameter.
fn is_plain(path: &[u8]) -> bool {
    let mut previous = 0u8;
    for (index, &byte) in path.iter().enumerate() {
        let plain = match byte {
            b'%' | b'\\' | b';' => false,
            0..=0x20 | 0x7f..=0xff => false,
            b'/' => previous != b'/',
            // A segment that starts with a dot may be `.` or `..`.
            b'.' => previous != b'/' || !is_dot_segment_at(path, index),
            _ => true,
        };
        if !plain {
            return false;
        }
        previous = byte;
    }
    true
}

/// Whether the segment starting at `start` is `.` or `..`.
fn is_dot_segment_at(path: &[u8], start: usize) -> bool {
    let end = path[start..]
        .iter()
        .position(|b| *b == b'/')
        .map_or(path.len(), |n| start + n);
    matches!(&path[start..end], b"." | b"..")
}

/// RFC 3986 "unreserved": decoding these never changes a path's meaning.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The byte that `%XY` at `path[at..]` encodes.
fn escaped_byte(path: &[u8], at: usize) -> Result<u8, PathError> {
    match (path.get(at + 1).copied(), path.get(at + 2).copied()) {
        (Some(high), Some(low)) => match (hex_value(high), hex_value(low)) {
            (Some(high), Some(low)) => Ok(high << 4 | low),
            _ => Err(PathError::BadEscape),
        },
        _ => Err(PathError::BadEscape),
    }
}

/// A byte that no form of the path may contain, raw or decoded.
fn check_byte(byte: u8) -> Result<(), PathError> {
    match byte {
        b'\\' => Err(PathError::Backslash),
        0..=0x1f | 0x7f => Err(PathError::Control),
        _ => Ok(()),
    }
}

/// The forwarded form: unreserved escapes decoded, the others kept as sent,
/// dot segments resolved (RFC 3986 §5.2.4, empty segments kept).
fn forwarded_path(path: &[u8], reject_encoded_slash: bool) -> Result<Vec<u8>, PathError> {
    let mut decoded = Vec::with_capacity(path.len());
    let mut at = 0;
    while at < path.len() {
        let byte = path[at];
        if byte == b'%' {
            let value = escaped_byte(path, at)?;
            check_byte(value)?;
            if value == b'/' && reject_encoded_slash {
                return Err(PathError::EncodedSlash);
            }
            if is_unreserved(value) {
                decoded.push(value);
            } else {
                decoded.extend_from_slice(&path[at..at + 3]);
            }
            at += 3;
        } else {
            check_byte(byte)?;
            decoded.push(byte);
            at += 1;
        }
    }
    resolve_dot_segments(&decoded)
}

/// The canonical form of a forwarded path: every escape decoded, path
/// parameters cut off each segment (`;jsessionid=...`: Tomcat and Jetty
/// route without them), empty segments dropped.
///
/// The forwarded path has no dot segments left, so a `.` or `..` that
/// appears here was hidden from the first pass, in an encoded slash
/// (`/a%2F..`) or behind a path parameter (`/a/..;/`): backends disagree on
/// whether to resolve it (Tomcat does, Go's ServeMux does not), so no one
/// canonical form covers them all, and the request is refused.
fn canonical_path(forwarded: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut decoded = Vec::with_capacity(forwarded.len());
    let mut at = 0;
    while at < forwarded.len() {
        if forwarded[at] == b'%' {
            // Checked (and the dangerous bytes refused) by forwarded_path.
            decoded.push(escaped_byte(forwarded, at)?);
            at += 3;
        } else {
            decoded.push(forwarded[at]);
            at += 1;
        }
    }
    let mut out = Segments::with_capacity(decoded.len());
    for segment in decoded[1..].split(|b| *b == b'/') {
        let segment = segment
            .iter()
            .position(|b| *b == b';')
            .map_or(segment, |end| &segment[..end]);
        match segment {
            b"" => out.ends_in_directory = true,
            b"." | b".." => return Err(PathError::HiddenDotSegment),
            _ => out.push(segment),
        }
    }
    Ok(out.finish())
}

/// Resolve `.` and `..` segments of an absolute path (RFC 3986 §5.2.4,
/// empty segments kept). A `..` above the root is an error rather than
/// silently dropped: a client that sends one is probing.
fn resolve_dot_segments(path: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Segments::with_capacity(path.len());
    // Skip the leading `/`; every segment is what follows a `/`.
    for segment in path[1..].split(|b| *b == b'/') {
        match segment {
            b"." => out.ends_in_directory = true,
            b".." => out.pop()?,
            _ => out.push(segment),
        }
    }
    Ok(out.finish())
}

/// An absolute path rebuilt a segment at a time.
struct Segments {
    out: Vec<u8>,
    /// Where each `/segment` in `out` starts.
    starts: Vec<usize>,
    /// The path ends in `/` (its last segment was `.`, `..` or empty).
    ends_in_directory: bool,
}

impl Segments {
    fn with_capacity(capacity: usize) -> Self {
        Segments {
            out: Vec::with_capacity(capacity),
            starts: Vec::new(),
            ends_in_directory: false,
        }
    }

    fn push(&mut self, segment: &[u8]) {
        self.starts.push(self.out.len());
        self.out.push(b'/');
        self.out.extend_from_slice(segment);
        self.ends_in_directory = false;
    }

    /// Drop the last segment (`..`); there must be one.
    fn pop(&mut self) -> Result<(), PathError> {
        let start = self.starts.pop().ok_or(PathError::AboveRoot)?;
        self.out.truncate(start);
        self.ends_in_directory = true;
        Ok(())
    }

    fn finish(mut self) -> Vec<u8> {
        if self.out.is_empty() || self.ends_in_directory {
            self.out.push(b'/');
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(target: &str) -> Result<String, PathError> {
        read(target.as_bytes(), false).map(|p| String::from_utf8_lossy(&p.canonical).into_owned())
    }

    fn forwarded(target: &str) -> Option<String> {
        read(target.as_bytes(), false)
            .unwrap()
            .forward
            .map(|f| String::from_utf8(f).unwrap())
    }

    #[test]
    fn every_spelling_of_a_path_has_one_canonical_form() {
        for spelling in [
            "/api/switch",
            "//api/switch",
            "/api//switch",
            "/api/./switch",
            "/./api/switch",
            "/x/../api/switch",
            "/api/%73witch",
            "/%61pi/switch",
            "/api%2fswitch",
            "/api%2Fswitch",
            "http://x//api/switch",
            "HTTPS://x/api/switch",
            "/api/switch;jsessionid=1",
            "/api/;x/switch",
            "/api/%2e/switch",
            "/api/x/%2e%2e/switch",
        ] {
            assert_eq!(canonical(spelling).unwrap(), "/api/switch", "{spelling}");
        }
        assert_eq!(canonical("/api/switch/").unwrap(), "/api/switch/");
        assert_eq!(canonical("/api/switch/.").unwrap(), "/api/switch/");
        assert_eq!(canonical("/").unwrap(), "/");
        assert_eq!(canonical("//").unwrap(), "/");
        assert_eq!(canonical("/a/b/..").unwrap(), "/a/");
        assert_eq!(canonical("/index.html").unwrap(), "/index.html");
        assert_eq!(canonical("/.well-known/x").unwrap(), "/.well-known/x");
        assert_eq!(canonical("/a/...").unwrap(), "/a/...");
        assert_eq!(canonical("/caf%C3%A9").unwrap(), "/café");
    }

    #[test]
    fn the_peer_gets_a_minimally_normalized_path() {
        assert_eq!(forwarded("/api/data?x=1"), None, "nothing to do");
        assert_eq!(
            forwarded("/api/%73witch?a=%2e").as_deref(),
            Some("/api/switch?a=%2e")
        );
        assert_eq!(
            forwarded("/x/../api/switch").as_deref(),
            Some("/api/switch")
        );
        assert_eq!(forwarded("/./a/./b/").as_deref(), Some("/a/b/"));
        // `//` and `%2F` mean something to some backends: kept.
        assert_eq!(forwarded("//api//switch"), None);
        assert_eq!(forwarded("/group%2Fproject"), None);
        assert_eq!(
            forwarded("/group%2fproject/%41"),
            Some("/group%2fproject/A".into())
        );
        // RFC 3986 resolution: `..` removes the empty segment before it.
        assert_eq!(forwarded("/a//../b").as_deref(), Some("/a/b"));
        assert_eq!(
            forwarded("http://x//api/switch?q").as_deref(),
            Some("//api/switch?q")
        );
        assert_eq!(forwarded("*"), None);
    }

    #[test]
    fn the_canonical_form_covers_the_forwarded_one() {
        // The forwarded `/api/switch/` must not escape a rule on
        // `/api/switch` through a canonical form that resolves differently.
        let path = read(b"/api/switch//..", false).unwrap();
        assert_eq!(path.forward.as_deref(), Some(&b"/api/switch/"[..]));
        assert_eq!(&*path.canonical, b"/api/switch/");
    }

    #[test]
    fn what_cannot_be_made_safe_is_refused() {
        for (target, error) in [
            ("/api\\switch", PathError::Backslash),
            ("/api%5cswitch", PathError::Backslash),
            ("/api%00", PathError::Control),
            ("/a%0d%0aSet-Cookie:x", PathError::Control),
            ("/a\x7f", PathError::Control),
            ("/a%zz", PathError::BadEscape),
            ("/a%4", PathError::BadEscape),
            ("/..", PathError::AboveRoot),
            ("/a/../..", PathError::AboveRoot),
            ("/..%2f", PathError::HiddenDotSegment),
            ("/api/switch/..;/", PathError::HiddenDotSegment),
            ("/api/switch/%2F..", PathError::HiddenDotSegment),
            ("/api/switch/..%3B", PathError::HiddenDotSegment),
            ("/x/..;/api/switch", PathError::HiddenDotSegment),
            ("/api/x%2F..%2Fswitch", PathError::HiddenDotSegment),
            ("%20/api/switch", PathError::NotAPath),
            ("api/switch", PathError::NotAPath),
            ("ftp://x/a", PathError::NotAPath),
            ("http://x", PathError::NotAPath),
            ("http:///a", PathError::NotAPath),
        ] {
            assert_eq!(read(target.as_bytes(), false), Err(error), "{target}");
        }
        assert_eq!(read(b"/a%2fb", true), Err(PathError::EncodedSlash));
        assert!(read(b"/a/b", true).is_ok());
    }

    #[test]
    fn absolute_form_names_the_authority() {
        let path = read(b"http://example.com:8080/a?b", false).unwrap();
        assert_eq!(path.authority, Some(&b"example.com:8080"[..]));
        assert_eq!(path.forward.as_deref(), Some(&b"/a?b"[..]));
        assert_eq!(&*path.canonical, b"/a");
    }

    #[test]
    fn plain_paths_are_borrowed() {
        let path = read(b"/api/data.json?x=/../", false).unwrap();
        assert!(matches!(path.canonical, Cow::Borrowed(b"/api/data.json")));
        assert_eq!(path.forward, None);
    }
}
