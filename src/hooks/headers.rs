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

/// Headers that say how a message is framed or how the connection goes on:
/// a hook may not edit them. Their values were acted on before any hook ran
/// (the body's framing, `Expect`, an upgrade), so an edit would make the
/// peer or the client read the message differently from switchyard:
/// request smuggling.
const PROTECTED: [HeaderName; 9] = [
    http::header::CONTENT_LENGTH,
    http::header::TRANSFER_ENCODING,
    http::header::CONNECTION,
    http::header::TE,
    http::header::TRAILER,
    http::header::UPGRADE,
    http::header::EXPECT,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
];

/// Whether hooks may not edit `name` (see [`Headers`]).
pub(crate) fn is_protected(name: &HeaderName) -> bool {
    PROTECTED.contains(name)
}

/// The headers of a request or response that a hook may edit: all but
/// those that frame the message or steer the connection
/// (`Content-Length`, `Transfer-Encoding`, `Connection`, `Keep-Alive`,
/// `Proxy-Connection`, `TE`, `Trailer`, `Upgrade`, `Expect`), which
/// switchyard has acted on already.
pub struct Headers<'a> {
    inner: &'a mut dyn EditableHeader,
}

/// A hook tried to edit a header that frames the message (see [`Headers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedHeader(pub HeaderName);

impl std::fmt::Display for ProtectedHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "hooks may not edit {}: it frames the message", self.0)
    }
}

impl std::error::Error for ProtectedHeader {}

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
    pub fn set(&mut self, name: HeaderName, value: HeaderValue) -> Result<(), ProtectedHeader> {
        let name = allowed(name)?;
        if let Err(e) = self.inner.set(name, value) {
            log::debug!("a hook's header was not set: {e}");
        }
        Ok(())
    }

    /// Add `value` to those `name` has.
    pub fn add(&mut self, name: HeaderName, value: HeaderValue) -> Result<(), ProtectedHeader> {
        let name = allowed(name)?;
        if let Err(e) = self.inner.add(name, value) {
            log::debug!("a hook's header was not added: {e}");
        }
        Ok(())
    }

    /// Remove every value of `name`.
    pub fn remove(&mut self, name: &HeaderName) -> Result<(), ProtectedHeader> {
        let name = allowed(name.clone())?;
        self.inner.remove(&name);
        Ok(())
    }
}

/// `name`, unless hooks may not edit it.
fn allowed(name: HeaderName) -> Result<HeaderName, ProtectedHeader> {
    if is_protected(&name) {
        Err(ProtectedHeader(name))
    } else {
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora_http::RequestHeader;

    #[test]
    fn hooks_edit_headers_but_not_the_framing() {
        let mut request = RequestHeader::build("POST", b"/", None).unwrap();
        request.insert_header("content-length", "5").unwrap();
        let mut headers = Headers::new(&mut request);
        let tag = HeaderName::from_static("x-tag");
        headers
            .set(tag.clone(), HeaderValue::from_static("a"))
            .unwrap();
        headers
            .add(tag.clone(), HeaderValue::from_static("b"))
            .unwrap();
        assert_eq!(headers.map().get_all(&tag).iter().count(), 2);
        headers.remove(&tag).unwrap();
        assert!(headers.get(&tag).is_none());
        let length = http::header::CONTENT_LENGTH;
        assert!(headers.remove(&length).is_err());
        let chunked = HeaderValue::from_static("chunked");
        let refused = headers.add(http::header::TRANSFER_ENCODING, chunked);
        assert_eq!(
            refused.unwrap_err().to_string(),
            "hooks may not edit transfer-encoding: it frames the message"
        );
        assert_eq!(request.headers.get(&length).unwrap(), "5");
    }
}
