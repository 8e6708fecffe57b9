//! The status page in the format of lua-resty-upstream-healthcheck's
//! `prometheus_status_page()`, byte for byte: per peer, in config order
//! (primaries, then backups), an `UP` and a `DOWN` series, one of them 1;
//! then per upstream `UP`, `DOWN` and `UNKNOWN` (UP while any peer is; every
//! switchyard upstream has a health check, so never UNKNOWN). A peer from
//! a name has one more label, `hostname`, the name.

use super::shown_up;
use crate::peer::Member;
use crate::upstream::Upstream;
use std::fmt::Write;
use std::sync::Arc;

const METRIC: &str = "nginx_upstream_status_info";

pub fn render(upstreams: &[Arc<Upstream>]) -> String {
    let mut page = String::with_capacity(256 + 256 * upstreams.len());
    page.push_str("# HELP nginx_upstream_status_info The running status of nginx upstream\n");
    page.push_str("# TYPE nginx_upstream_status_info gauge\n");
    for upstream in upstreams {
        let primary = peers(&mut page, &upstream.name, upstream.primaries(), "PRIMARY");
        let backup = peers(&mut page, &upstream.name, upstream.backups(), "BACKUP");
        let up = primary || backup;
        for (status, value) in [("UP", up), ("DOWN", !up), ("UNKNOWN", false)] {
            // Writing to a String cannot fail.
            let _ = writeln!(
                page,
                "{METRIC}{{name=\"{}\",status=\"{status}\"}} {}",
                upstream.name,
                u8::from(value)
            );
        }
    }
    page
}

/// The series of `members`; whether any of them is UP.
fn peers<'a>(
    page: &mut String,
    upstream: &str,
    members: impl Iterator<Item = &'a Arc<Member>>,
    role: &str,
) -> bool {
    let mut any_up = false;
    for member in members {
        let up = shown_up(member);
        any_up |= up;
        let hostname = member
            .name
            .as_deref()
            .map(|name| format!(",hostname=\"{name}\""))
            .unwrap_or_default();
        for (status, value) in [("UP", up), ("DOWN", !up)] {
            let _ = writeln!(
                page,
                "{METRIC}{{name=\"{upstream}\",endpoint=\"{}\",status=\"{status}\",role=\"{role}\"{hostname}}} {}",
                member.peer.label,
                u8::from(value)
            );
        }
    }
    any_up
}
