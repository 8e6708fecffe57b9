//! Hooks: Rust code that a route runs on its requests, the seam through
//! which switchyard is extended without changing switchyard.
//!
//! A hook *type* is a Rust type that implements [`Hook`], registered under
//! a name with the function that builds it from its settings
//! ([`crate::Switchyard::hook_type`]). A hook *instance* is an entry of the
//! configuration's `hooks:` map, `{ type: NAME, ...settings }`; the
//! settings are deserialized by the type (serde), so that their errors name
//! the file, the key and the line like any other. A route lists the
//! instances that see its requests (`hooks: [a, b]`), which run in that
//! order, phase by phase:
//! - [`Hook::on_request`], once the route is chosen: answer the request
//!   directly (401, 429...), send it to another upstream, edit its headers;
//! - [`Hook::before_upstream`], before each attempt at a peer: edit the
//!   headers that peer gets;
//! - [`Hook::on_response`], on the response the client gets from a peer:
//!   see its status, edit its headers;
//! - [`Hook::on_log`], once the request is over: status, peer, timings.
//!
//! Every phase does nothing unless the type says otherwise. Hooks see
//! narrow views of the request ([`Request`], [`UpstreamRequest`],
//! [`Response`], [`Summary`]), never Pingora's own types, so that a Pingora
//! upgrade does not break them.
//!
//! Instances are part of the live configuration: a reload builds the ones
//! whose settings changed and keeps the others, with their state (a
//! reload does not reset every client's rate-limit bucket). Routes without
//! hooks pay nothing for them.
//!
//! Two types come built in, as useful as they are examples of the API:
//! [`api_key`] and [`rate_limit`].

pub mod api_key;
mod headers;
pub mod rate_limit;
mod types;
mod view;

pub use async_trait::async_trait;
pub(crate) use headers::{is_protected, EditableHeader};
pub use headers::{Headers, ProtectedHeader};
pub use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
pub(crate) use types::{HookSet, HookTypes};
pub use view::{Request, Response, Summary, UnknownUpstream, UpstreamRequest};

use bytes::Bytes;

/// A hook type: what it does in each phase of a request. Every method
/// defaults to doing nothing. Implement it with `#[async_trait]` (re-exported
/// here as [`async_trait`](macro@async_trait)).
///
/// An instance serves every request of its routes at once, from several
/// threads: keep its state in atomics or a concurrent map. The phases run
/// on the request's task: a phase that waits (on a database, say) holds the
/// request, with no time limit but the ones it sets itself. Building an
/// instance (the function registered with
/// [`Switchyard::hook_type`](crate::Switchyard::hook_type)) happens when the
/// configuration is read, at start before a daemon forks, and on each
/// reload: read files there, but start no task or thread.
#[async_trait]
pub trait Hook: Send + Sync + 'static {
    /// The route has been chosen: answer the request here
    /// ([`Verdict::Answer`]), or let it go on ([`Verdict::Continue`]),
    /// perhaps to another upstream ([`Request::send_to`]) or with other
    /// headers ([`Request::headers_mut`]). The first hook that answers
    /// ends the request; the hooks after it do not run.
    async fn on_request(&self, _request: &mut Request<'_>) -> Verdict {
        Verdict::Continue
    }

    /// A peer has been chosen and the request is about to be sent to it
    /// (again for each retry): edit what it gets.
    async fn before_upstream(&self, _request: &mut UpstreamRequest<'_>) {}

    /// A peer's response is about to go to the client: see it, edit its
    /// headers. Not called for answers switchyard or a hook makes itself.
    async fn on_response(&self, _response: &mut Response<'_>) {}

    /// The request is over (answered, failed, or the client left).
    fn on_log(&self, _summary: &Summary<'_>) {}

    /// A reload kept this instance, its settings unchanged. Return a
    /// replacement to use from now on (for example one built after
    /// re-reading a file its settings name), `None` to go on with this one
    /// and its state, or an error, which refuses the whole reload. Change
    /// nothing in `self` here: the reload may still be refused after this
    /// returns, and a refused reload must change nothing.
    fn reload(&self) -> Result<Option<Box<dyn Hook>>, String> {
        Ok(None)
    }
}

/// What [`Hook::on_request`] decided.
#[non_exhaustive]
pub enum Verdict {
    /// Go on: the next hook, then the route's upstream.
    Continue,
    /// Answer the client with this, now.
    Answer(Answer),
}

/// A response a hook makes itself: a final status (an informational one,
/// 1xx, is answered as 500), headers, and a body (none for 204 and 304).
#[derive(Debug, Clone)]
pub struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Bytes,
}

impl Answer {
    /// An answer with `status` and no body.
    pub fn new(status: StatusCode) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// The same with a header (added: a name may come more than once).
    /// Headers that frame the message (see [`Headers`]) are switchyard's
    /// to set, and left out.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        if is_protected(&name) {
            log::debug!("a hook's answer may not set {name}: left out");
        } else {
            self.headers.push((name, value));
        }
        self
    }

    /// The same with this body; plain text unless a `Content-Type` header
    /// says otherwise.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Its status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}
