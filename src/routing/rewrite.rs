//! A route's `request_headers` and `response_headers`, compiled once per
//! configuration: names and values checked when the file was read.

use crate::config::HeaderEdits;
use http::{HeaderName, HeaderValue};
use pingora_error::Result;
use pingora_http::{RequestHeader, ResponseHeader};

/// Header edits, applied in order: remove, set, add.
#[derive(Default)]
pub struct HeaderRewrite {
    remove: Vec<HeaderName>,
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
}

/// A request or response header that edits can be applied to.
pub trait EditableHeader {
    fn remove(&mut self, name: &HeaderName);
    fn set(&mut self, name: HeaderName, value: HeaderValue) -> Result<()>;
    fn add(&mut self, name: HeaderName, value: HeaderValue) -> Result<()>;
}

/// Pingora's request and response headers have the same methods, but no
/// trait of their own for them.
macro_rules! editable_header {
    ($($header:ty),*) => {$(
        impl EditableHeader for $header {
            fn remove(&mut self, name: &HeaderName) {
                self.remove_header(name);
            }
            fn set(&mut self, name: HeaderName, value: HeaderValue) -> Result<()> {
                self.insert_header(name, value)
            }
            fn add(&mut self, name: HeaderName, value: HeaderValue) -> Result<()> {
                self.append_header(name, value).map(|_| ())
            }
        }
    )*};
}

editable_header!(RequestHeader, ResponseHeader);

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
    pub fn apply(&self, header: &mut impl EditableHeader) -> Result<()> {
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
