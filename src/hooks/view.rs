//! What a hook sees of a request in each phase, and may change: narrow
//! views over switchyard's own state, so that hooks never hold Pingora's
//! types.

use super::headers::Headers;
use crate::upstream::Upstream;
use http::{HeaderMap, Method, StatusCode};
use pingora_http::{RequestHeader, ResponseHeader};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// A request in [`Hook::on_request`](super::Hook::on_request): the route
/// is chosen, no peer yet.
pub struct Request<'a> {
    pub(crate) header: &'a mut RequestHeader,
    pub(crate) path: &'a str,
    pub(crate) client: Option<IpAddr>,
    pub(crate) route: &'a str,
    /// Where the request goes now: the route's upstream (or its split's
    /// pick), or one a hook chose; `None` for a route that answers.
    pub(crate) upstream: Option<Arc<Upstream>>,
    /// Every upstream of the configuration, for [`Request::send_to`].
    pub(crate) upstreams: &'a [Arc<Upstream>],
}

/// The accessors every view has: headers (to read and to edit), the
/// client, the route.
macro_rules! common_accessors {
    ($($view:ident: $headers:literal),*) => {$(
        impl $view<'_> {
            #[doc = concat!("The headers ", $headers, ".")]
            pub fn headers(&self) -> &HeaderMap {
                &self.header.headers
            }

            #[doc = concat!("The headers ", $headers, ", to edit.")]
            pub fn headers_mut(&mut self) -> Headers<'_> {
                Headers::new(self.header)
            }

            /// The client's address (behind `trusted_proxies`, the address
            /// they forwarded); `None` when the connection has no IP address.
            pub fn client(&self) -> Option<IpAddr> {
                self.client
            }

            /// The name of the route that took the request.
            pub fn route(&self) -> &str {
                self.route
            }
        }
    )*};
}

common_accessors!(
    Request: "of the request (what the peer gets)",
    UpstreamRequest: "the peer gets",
    Response: "the client gets"
);

impl Request<'_> {
    /// The request method.
    pub fn method(&self) -> &Method {
        &self.header.method
    }

    /// The canonical path: normalized (`.` and `..` resolved, unreserved
    /// characters decoded), as routes match it.
    pub fn path(&self) -> &str {
        self.path
    }

    /// The query string, as sent (without the `?`).
    pub fn query(&self) -> Option<&str> {
        self.header.uri.query()
    }

    /// The upstream the request goes to now, if any.
    pub fn upstream(&self) -> Option<&str> {
        self.upstream.as_deref().map(|u| u.name.as_str())
    }

    /// Send the request to the upstream called `name` instead.
    pub fn send_to(&mut self, name: &str) -> Result<(), UnknownUpstream> {
        let upstream = self
            .upstreams
            .iter()
            .find(|u| u.name == name)
            .ok_or_else(|| UnknownUpstream(name.to_string()))?;
        self.upstream = Some(Arc::clone(upstream));
        Ok(())
    }
}

/// [`Request::send_to`] named an upstream the configuration does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownUpstream(pub String);

impl fmt::Display for UnknownUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no upstream `{}`", self.0)
    }
}

impl std::error::Error for UnknownUpstream {}

/// The request about to be sent to a peer, in
/// [`Hook::before_upstream`](super::Hook::before_upstream).
pub struct UpstreamRequest<'a> {
    pub(crate) header: &'a mut RequestHeader,
    pub(crate) client: Option<IpAddr>,
    pub(crate) route: &'a str,
    pub(crate) upstream: &'a str,
    pub(crate) peer: SocketAddr,
}

impl UpstreamRequest<'_> {
    /// The request method.
    pub fn method(&self) -> &Method {
        &self.header.method
    }

    /// The path the peer gets (after `strip_prefix`).
    pub fn path(&self) -> &str {
        self.header.uri.path()
    }

    /// The upstream the peer belongs to.
    pub fn upstream(&self) -> &str {
        self.upstream
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

/// A peer's response on its way to the client, in
/// [`Hook::on_response`](super::Hook::on_response).
pub struct Response<'a> {
    pub(crate) header: &'a mut ResponseHeader,
    pub(crate) client: Option<IpAddr>,
    pub(crate) route: &'a str,
    pub(crate) upstream: Option<&'a str>,
    pub(crate) peer: Option<SocketAddr>,
}

impl Response<'_> {
    /// The response status.
    pub fn status(&self) -> StatusCode {
        self.header.status
    }

    /// The upstream that answered.
    pub fn upstream(&self) -> Option<&str> {
        self.upstream
    }

    /// The peer that answered.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }
}

/// A request that is over, in [`Hook::on_log`](super::Hook::on_log).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Summary<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request target as the client sent it.
    pub target: &'a str,
    /// The client's address.
    pub client: Option<IpAddr>,
    /// The status the client got; `None` when no response was sent.
    pub status: Option<StatusCode>,
    /// The name of the route that took the request.
    pub route: &'a str,
    /// The upstream it went to, if any.
    pub upstream: Option<&'a str>,
    /// The last peer tried, if any.
    pub peer: Option<SocketAddr>,
    /// Peers tried.
    pub attempts: u32,
    /// From the request's arrival to the end of its response.
    pub duration: Duration,
    /// From choosing the last peer to its response header, when it sent one.
    pub upstream_header_time: Option<Duration>,
}
