//! Editing Pingora's request and response headers through one small
//! interface: the routes' header edits use it, and hooks get it wrapped in
//! [`Headers`], which hides Pingora's types.

use http::{HeaderMap, HeaderName, HeaderValue};
use pingora_error::Result;
use pingora_http::{RequestHeader, ResponseHeader};

/// A request or response header that can be read and edited. Pingora's
/// two header types have the same methods, but no trait of their own for
/// them; going through theirs keeps the case map Pingora may hold in step.
pub(crate) trait EditableHeader: Send {
    fn map(&self) -> &HeaderMap;
    fn remove(&mut self, name: &HeaderName);
    fn set(&mut self, name: HeaderName, value: HeaderValue) -> Result<()>;
    fn add(&mut self, name: HeaderName, value: HeaderValue) -> Result<()>;
}

macro_rules! editable_header {
    ($($header:ty),*) => {$(
        impl EditableHeader for $header {
            fn map(&self) -> &HeaderMap {
                &self.headers
            }
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

/// The headers of a request or response that a hook may edit.
pub struct Headers<'a> {
    inner: &'a mut dyn EditableHeader,
}

impl<'a> Headers<'a> {
    pub(crate) fn new(inner: &'a mut dyn EditableHeader) -> Self {
        Headers { inner }
    }

    /// Every header as it is now.
    pub fn map(&self) -> &HeaderMap {
        self.inner.map()
    }

    /// The first value of `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.inner.map().get(name)
    }

    /// Replace every value of `name` with `value`.
    pub fn set(&mut self, name: HeaderName, value: HeaderValue) {
        if let Err(e) = self.inner.set(name, value) {
            log::debug!("a hook's header was not set: {e}");
        }
    }

    /// Add `value` to those `name` has.
    pub fn add(&mut self, name: HeaderName, value: HeaderValue) {
        if let Err(e) = self.inner.add(name, value) {
            log::debug!("a hook's header was not added: {e}");
        }
    }

    /// Remove every value of `name`.
    pub fn remove(&mut self, name: &HeaderName) {
        self.inner.remove(name);
    }
}
