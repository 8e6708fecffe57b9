//! The status page in the text format of lua-resty-upstream-healthcheck's
//! `status_page()`, byte for byte; a peer from a name shows the name after
//! its address: `127.0.0.2:8001 (backend:8001) UP`.

use super::shown_up;
use crate::peer::Member;
use crate::upstream::Upstream;
use std::fmt::Write;
use std::sync::Arc;

pub fn render(upstreams: &[Arc<Upstream>]) -> String {
    let mut page = String::new();
    for (index, upstream) in upstreams.iter().enumerate() {
        if index > 0 {
            page.push('\n');
        }
        // Writing to a String cannot fail.
        let _ = writeln!(page, "Upstream {}", upstream.name);
        page.push_str("    Primary Peers\n");
        peers(&mut page, upstream.primaries());
        page.push_str("    Backup Peers\n");
        peers(&mut page, upstream.backups());
    }
    page
}

fn peers<'a>(page: &mut String, members: impl Iterator<Item = &'a Arc<Member>>) {
    for member in members {
        let state = if shown_up(member) { "UP" } else { "DOWN" };
        let _ = match &member.name {
            None => writeln!(page, "        {} {state}", member.peer.label),
            Some(name) => writeln!(page, "        {} ({name}) {state}", member.peer.label),
        };
    }
}
