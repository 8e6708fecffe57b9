//! Where `redirect_https` sends a request: the same host and path, over
//! HTTPS on the TLS listener's port.

use http::header::HeaderValue;

/// `https://HOST[:PORT]TARGET` for a request to `authority` (its Host)
/// for `target` (origin-form: path and query), `port` omitted when it is
/// 443; `None` when the host is not one to send a client to.
pub fn location(authority: &[u8], target: &[u8], port: u16) -> Option<HeaderValue> {
    let host = host_of(std::str::from_utf8(authority).ok()?)?;
    let target = std::str::from_utf8(target)
        .ok()
        .filter(|t| t.starts_with('/'))?;
    let location = if port == 443 {
        format!("https://{host}{target}")
    } else {
        format!("https://{host}:{port}{target}")
    };
    HeaderValue::from_str(&location).ok()
}

/// The host of an authority (`host`, `host:port`, `[v6]:port`), without
/// its port; `None` if it is empty or holds what no host name does.
fn host_of(authority: &str) -> Option<&str> {
    let host = if authority.starts_with('[') {
        &authority[..=authority.find(']')?]
    } else {
        authority.split(':').next()?
    };
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b));
    valid.then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_host_and_path_on_the_tls_port() {
        let at = |host: &str, target: &str, port| {
            location(host.as_bytes(), target.as_bytes(), port)
                .map(|l| l.to_str().unwrap().to_string())
        };
        assert_eq!(
            at("example.com:8080", "/a/b?x=1", 443).as_deref(),
            Some("https://example.com/a/b?x=1")
        );
        assert_eq!(
            at("example.com", "/", 8443).as_deref(),
            Some("https://example.com:8443/")
        );
        assert_eq!(
            at("[::1]:80", "/v6", 8443).as_deref(),
            Some("https://[::1]:8443/v6")
        );
        assert_eq!(at("evil.com/x", "/", 443), None);
        assert_eq!(at("", "/", 443), None);
        assert_eq!(at("a.com", "*", 443), None);
    }
}
