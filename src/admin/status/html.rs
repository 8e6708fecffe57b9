//! The status page for a browser: one table per upstream, a coloured state
//! per peer, the health record and the requests served. Self-contained (no
//! external assets) and refreshing itself every few seconds.

use super::PeerView;
use crate::upstream::Upstream;
use std::fmt::Write;
use std::sync::Arc;

/// Seconds between reloads of the page.
const REFRESH_SECONDS: u32 = 2;

const STYLE: &str = "
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; min-width: 60em; }
th, td { padding: .35em .8em; border-bottom: 1px solid #ddd; text-align: left; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.state { font-weight: 600; padding: .1em .6em; border-radius: .8em; color: #fff; }
.up .state { background: #2e7d32; } .down .state { background: #c62828; }
tr.down { background: #fdecea; } tr.draining, tr.disabled { color: #777; }
td.admin { font-variant: small-caps; } .error { color: #c62828; font-family: monospace; }
.muted { color: #888; }
";

pub fn render(upstreams: &[Arc<Upstream>]) -> String {
    let mut page = String::with_capacity(4096);
    // Writing to a String cannot fail.
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <title>switchyard: peer status</title><style>{STYLE}</style></head><body>\n\
         <h1>switchyard: peer status</h1>\n\
         <p class=\"muted\">Refreshes every {REFRESH_SECONDS} s. Also as \
         <a href=\"?format=text\">text</a> and <a href=\"?format=json\">JSON</a>.</p>\n"
    );
    for upstream in upstreams {
        upstream_table(&mut page, upstream);
    }
    page.push_str("</body></html>\n");
    page
}

fn upstream_table(page: &mut String, upstream: &Upstream) {
    let peers: Vec<PeerView<'_>> = upstream.peers.iter().map(|p| PeerView::of(p)).collect();
    let up = peers.iter().filter(|p| p.state == "up").count();
    let _ = write!(
        page,
        "<h2 class=\"upstream\" data-upstream=\"{name}\">Upstream {name} \
         <span class=\"muted\">({up} of {total} peers up)</span></h2>\n\
         <table><thead><tr><th>Peer</th><th>Role</th><th>State</th><th>Admin</th><th>Weight</th>\
         <th>Successes</th><th>Failures</th><th>Last probe</th><th>Latency</th>\
         <th>Last error</th><th>Down because</th><th>In flight</th><th>Answers in</th><th>Requests</th>\
         </tr></thead><tbody>\n",
        name = escape(&upstream.name),
        total = peers.len(),
    );
    for peer in &peers {
        peer_row(page, peer);
    }
    page.push_str("</tbody></table>\n");
    for name in upstream.names.iter().map(|n| n.status()) {
        let addresses = if name.addresses.is_empty() {
            "no address".to_string()
        } else {
            let list: Vec<String> = name.addresses.iter().map(|a| a.to_string()).collect();
            list.join(", ")
        };
        let error = name
            .error
            .as_deref()
            .map(|e| format!(": <span class=\"error\">{}</span>", escape(e)))
            .unwrap_or_default();
        let _ = writeln!(
            page,
            "<p class=\"name muted\" data-name=\"{name}\" data-condition=\"{condition}\">\
             {name} gives {addresses} ({condition}{error})</p>",
            name = escape(&name.name),
            condition = name.condition,
        );
    }
}

fn peer_row(page: &mut String, peer: &PeerView<'_>) {
    let state_label = if peer.state == "up" { "UP" } else { "DOWN" };
    let role = if peer.backup { "backup" } else { "primary" };
    let last_probe = peer.last_probe.as_deref().unwrap_or("not yet");
    let milliseconds =
        |ms: Option<f64>| ms.map_or_else(|| "-".to_string(), |ms| format!("{ms:.1} ms"));
    let latency = milliseconds(peer.last_probe_latency_ms);
    let answers_in = milliseconds(peer.latency_ewma_ms);
    let error = peer.last_error.as_deref().unwrap_or("");
    let _ = writeln!(
        page,
        "<tr class=\"peer {state} {admin}\" data-peer=\"{address}\" data-state=\"{state}\" \
         data-admin-state=\"{admin}\">\
         <td>{address}{name}</td><td>{role}</td><td><span class=\"state\">{state_label}</span></td>\
         <td class=\"admin\">{admin}</td><td class=\"num\">{weight}</td><td class=\"num\">{successes}</td>\
         <td class=\"num\">{failures}</td><td>{last_probe}</td><td class=\"num\">{latency}</td>\
         <td class=\"error\">{error}</td><td class=\"error\">{down}</td>\
         <td class=\"num\">{in_flight}</td><td class=\"num\">{answers_in}</td>\
         <td class=\"num\">{requests}</td></tr>",
        state = peer.state,
        address = escape(peer.address),
        name = peer
            .name
            .map(|n| format!("<br><span class=\"muted\">{}</span>", escape(n)))
            .unwrap_or_default(),
        admin = peer.admin_state,
        weight = weight(peer),
        in_flight = peer.in_flight,
        successes = peer.consecutive_successes,
        failures = peer.consecutive_failures,
        last_probe = escape(last_probe),
        error = escape(error),
        down = escape(peer.down_reason.as_deref().unwrap_or("")),
        requests = peer.requests,
    );
}

/// The weight, and the configured one when an operator set another.
fn weight(peer: &PeerView<'_>) -> String {
    if peer.weight == peer.configured_weight {
        peer.weight.to_string()
    } else {
        format!("{} (configured {})", peer.weight, peer.configured_weight)
    }
}

/// Escape text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<b a=\"x\">'&'</b>"),
            "&lt;b a=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/b&gt;"
        );
    }
}
