//! The HTTP request path: [`proxy::Balancer`] (Pingora's `ProxyHttp`, the
//! only place that sees Pingora's session) and the parts it runs per
//! request: admission (limits, smuggling, deny rules), the request path's
//! canonical and forwarded forms, and the forwarding headers.

pub mod admission;
pub mod context;
pub mod failure;
pub mod forwarding;
pub mod path;
pub mod proxy;
pub mod respond;
