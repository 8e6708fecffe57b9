//! What a request is and may do, before any peer is involved: admission
//! (limits, `Host`, framing, deny rules), the request path's canonical and
//! forwarded forms, where the request comes from (trusted proxies,
//! forwarding headers), the key `consistent_hash` hashes, and its
//! `X-Request-ID`. Plain functions over
//! Pingora's request header; the live snapshot holds the rules of one
//! configuration.

pub mod admission;
pub mod forwarding;
pub mod hash_key;
pub mod https_redirect;
pub mod path;
pub mod request_id;
