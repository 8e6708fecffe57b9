//! The HTTP request path: [`proxy::Balancer`] (Pingora's `ProxyHttp`, the
//! only place that sees Pingora's session) and the parts it runs per
//! request: its context, whose fault a failure is, and switchyard's own
//! answers. What a request may do is decided in [`crate::request`].

pub mod access_log;
pub mod context;
pub mod failure;
mod hook_phases;
pub mod proxy;
pub mod respond;
