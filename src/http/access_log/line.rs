//! The two formats of a line, written into a reused buffer by the writer
//! thread.
//!
//! `json` is one object per line, built by serde_json (which escapes
//! whatever a client sent). `combined` is exactly Apache's and nginx's
//! `combined`, so the tools that read those read it, followed by
//! switchyard's fields as ` key=value`; a client's bytes are escaped as
//! nginx escapes them (`"`, `\`, control and non-ASCII bytes as `\xHH`).

use super::Entry;
use serde::Serialize;
use std::io::Write;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

/// The fields of a `json` line, borrowed from the entry.
#[derive(Serialize)]
struct JsonLine<'a> {
    time: String,
    client: Option<IpAddr>,
    method: &'a str,
    path: String,
    protocol: &'static str,
    status: u16,
    bytes_in: u64,
    bytes_out: u64,
    route: Option<&'a str>,
    upstream: Option<&'a str>,
    peer: Option<&'a str>,
    attempts: u32,
    duration_ms: f64,
    upstream_header_ms: Option<f64>,
    request_id: Option<&'a str>,
}

/// Append `entry` as a `json` line (with its newline) to `out`.
pub fn json(entry: &Entry, out: &mut Vec<u8>) -> serde_json::Result<()> {
    let mut path = String::from_utf8_lossy(&entry.target).into_owned();
    if entry.target_cut {
        path.push_str("...");
    }
    let line = JsonLine {
        time: humantime::format_rfc3339_millis(entry.time).to_string(),
        client: entry.client,
        method: entry.method.as_str(),
        path,
        protocol: protocol(entry),
        status: entry.status,
        bytes_in: entry.bytes_in,
        bytes_out: entry.bytes_out,
        route: entry.route.as_deref(),
        upstream: entry.upstream.as_ref().map(|u| u.name.as_str()),
        peer: entry.peer.as_ref().map(|p| p.label.as_str()),
        attempts: entry.attempts,
        duration_ms: milliseconds(entry.duration),
        upstream_header_ms: entry.upstream_header.map(milliseconds),
        request_id: entry.request_id.as_ref().and_then(|v| v.to_str().ok()),
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.push(b'\n');
    Ok(())
}

/// Append `entry` as a `combined` line (with its newline) to `out`:
/// `client - - [time] "request" status bytes "referer" "user-agent"`, then
/// `route= upstream= peer= attempts= request_time= upstream_header_time=
/// request_id=` (`-` for none; times in seconds, as nginx's).
pub fn combined(entry: &Entry, out: &mut Vec<u8>) -> std::io::Result<()> {
    match entry.client {
        Some(client) => write!(out, "{client}")?,
        None => out.push(b'-'),
    }
    out.extend_from_slice(b" - - [");
    common_log_time(entry.time, out)?;
    out.extend_from_slice(b"] \"");
    escape(entry.method.as_str().as_bytes(), out);
    out.push(b' ');
    escape(&entry.target, out);
    if entry.target_cut {
        out.extend_from_slice(b"...");
    }
    write!(
        out,
        " {}\" {} {} \"",
        protocol(entry),
        entry.status,
        entry.bytes_out
    )?;
    header_or_dash(entry.referer.as_ref().map(|v| v.as_bytes()), out);
    out.extend_from_slice(b"\" \"");
    header_or_dash(entry.user_agent.as_ref().map(|v| v.as_bytes()), out);
    out.push(b'"');
    field("route", entry.route.as_deref().map(str::as_bytes), out);
    field(
        "upstream",
        entry.upstream.as_ref().map(|u| u.name.as_bytes()),
        out,
    );
    field("peer", entry.peer.as_ref().map(|p| p.label.as_bytes()), out);
    write!(
        out,
        " attempts={} request_time={:.3} upstream_header_time=",
        entry.attempts,
        entry.duration.as_secs_f64()
    )?;
    match entry.upstream_header {
        Some(time) => write!(out, "{:.3}", time.as_secs_f64())?,
        None => out.push(b'-'),
    }
    field(
        "request_id",
        entry.request_id.as_ref().map(|v| v.as_bytes()),
        out,
    );
    out.push(b'\n');
    Ok(())
}

/// The request line's protocol.
fn protocol(entry: &Entry) -> &'static str {
    match entry.version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_11 => "HTTP/1.1",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

fn milliseconds(duration: Duration) -> f64 {
    // Whole microseconds: a millisecond count with three decimals.
    duration.as_micros() as f64 / 1000.0
}

/// ` key=value`, the value escaped (spaces too: they separate fields), or
/// ` key=-`.
fn field(key: &str, value: Option<&[u8]>, out: &mut Vec<u8>) {
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    match value {
        Some(value) if !value.is_empty() => {
            for &byte in value {
                if byte == b' ' {
                    out.extend_from_slice(b"\\x20");
                } else {
                    escape(&[byte], out);
                }
            }
        }
        _ => out.push(b'-'),
    }
}

/// A header's value escaped, or `-` when there is none (as nginx).
fn header_or_dash(value: Option<&[u8]>, out: &mut Vec<u8>) {
    match value {
        Some(value) if !value.is_empty() => escape(value, out),
        _ => out.push(b'-'),
    }
}

/// `bytes` as nginx writes a variable into a log line: `"`, `\`, control
/// bytes and bytes above 0x7e as `\xHH`.
pub fn escape(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in bytes {
        if byte == b'"' || byte == b'\\' || !(0x20..0x7f).contains(&byte) {
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
        } else {
            out.push(byte);
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `27/Nov/2026:14:07:59 +0000`: the common log format's time, in UTC.
fn common_log_time(time: SystemTime, out: &mut Vec<u8>) -> std::io::Result<()> {
    // `2026-11-27T14:07:59Z`: fixed positions for years 0 to 9999.
    let rfc3339 = humantime::format_rfc3339_seconds(time).to_string();
    let month = rfc3339
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)));
    match (
        rfc3339.get(0..4),
        month,
        rfc3339.get(8..10),
        rfc3339.get(11..19),
    ) {
        (Some(year), Some(month), Some(day), Some(clock)) => {
            write!(out, "{day}/{month}/{year}:{clock} +0000")
        }
        _ => write!(out, "{rfc3339}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_BUFFER;
    use crate::config::{AccessLogConfig, AccessLogFormat};
    use http::HeaderValue;
    use std::sync::Arc;

    fn entry() -> Entry {
        let (target, target_cut) = Entry::bounded_target(b"/a\"b?q=\x01\xff");
        Entry {
            settings: Arc::new(AccessLogConfig {
                path: "-".to_string(),
                format: AccessLogFormat::Json,
                buffer: crate::config::PositiveCount(DEFAULT_BUFFER),
            }),
            // 2026-11-27T14:07:59.250Z
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_788_479_250),
            client: Some([192, 0, 2, 7].into()),
            method: http::Method::POST,
            target,
            target_cut,
            version: http::Version::HTTP_11,
            status: 201,
            bytes_in: 12,
            bytes_out: 345,
            route: Some("api v1".into()),
            upstream: None,
            peer: None,
            attempts: 2,
            duration: Duration::from_micros(12_345),
            upstream_header: Some(Duration::from_micros(2_600)),
            request_id: Some(HeaderValue::from_static("0123456789abcdef0123456789abcdef")),
            referer: None,
            user_agent: Some(HeaderValue::from_static("curl/8 \"x\"")),
        }
    }

    #[test]
    fn a_json_line_is_one_object_with_every_field() {
        let mut out = Vec::new();
        json(&entry(), &mut out).unwrap();
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["time"], "2026-11-27T14:07:59.250Z");
        assert_eq!(value["client"], "192.0.2.7");
        assert_eq!(value["method"], "POST");
        assert_eq!(value["path"], "/a\"b?q=\u{1}\u{fffd}");
        assert_eq!(value["status"], 201);
        assert_eq!(value["bytes_in"], 12);
        assert_eq!(value["bytes_out"], 345);
        assert_eq!(value["route"], "api v1");
        assert!(value["upstream"].is_null() && value["peer"].is_null());
        assert_eq!(value["attempts"], 2);
        assert_eq!(value["duration_ms"], 12.345);
        assert_eq!(value["upstream_header_ms"], 2.6);
        assert_eq!(value["request_id"], "0123456789abcdef0123456789abcdef");
    }

    #[test]
    fn a_combined_line_is_nginx_combined_then_the_fields() {
        let mut out = Vec::new();
        combined(&entry(), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "192.0.2.7 - - [27/Nov/2026:14:07:59 +0000] \"POST /a\\x22b?q=\\x01\\xFF HTTP/1.1\" \
             201 345 \"-\" \"curl/8 \\x22x\\x22\" route=api\\x20v1 upstream=- peer=- attempts=2 \
             request_time=0.012 upstream_header_time=0.003 \
             request_id=0123456789abcdef0123456789abcdef\n"
        );
    }

    #[test]
    fn long_targets_are_cut() {
        let long = vec![b'a'; super::super::MAX_LOGGED_TARGET + 10];
        let (target, cut) = Entry::bounded_target(&long);
        assert!(cut);
        assert_eq!(target.len(), super::super::MAX_LOGGED_TARGET);
    }
}
