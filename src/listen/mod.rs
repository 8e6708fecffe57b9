//! Client connections, before HTTP: the connection cap, the stream that
//! follows a connection request by request ([`stream::ClientStream`]: header
//! deadlines, chunked framing checks, the request budget), and graceful
//! draining.

pub mod chunked;
pub mod drain;
pub mod guard;
pub mod stream;
