//! A route's `request_headers` and `response_headers`, compiled once per
//! configuration: names and values checked when the file was read.

use crate::config::HeaderEdits;
use crate::hooks::EditableHeader;
use http::{HeaderName, HeaderValue};
use pingora_error::Result;

/// Header edits, applied in order: remove, set, add.
#[derive(Default)]
pub struct HeaderRewrite {
    remove: Vec<HeaderName>,
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
}

impl HeaderRewrite {
    pub fn new(edits: &HeaderEdits) -> Self {
        let pairs =
            |map: &indexmap::IndexMap<crate::config::HeaderName, crate::config::HeaderValue>| {
                map.iter()
                    .map(|(n, v)| (n.0.clone(), v.0.clone()))
                    .collect()
            };
        HeaderRewrite {
            remove: edits.remove.iter().map(|n| n.0.clone()).collect(),
            set: pairs(&edits.set),
            add: pairs(&edits.add),
        }
    }

    /// Whether there is nothing to do.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }

    /// Apply the edits to `header`.
    pub(crate) fn apply(&self, header: &mut impl EditableHeader) -> Result<()> {
        for name in &self.remove {
            header.remove(name);
        }
        for (name, value) in &self.set {
            header.set(name.clone(), value.clone())?;
        }
        for (name, value) in &self.add {
            header.add(name.clone(), value.clone())?;
        }
        Ok(())
    }
}
