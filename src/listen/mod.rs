//! Client connections, before HTTP: the listeners and their TLS, the
//! PROXY protocol header of a connection from an L4 balancer, the
//! connection cap and the handshake under it, the stream that follows a
//! connection request by request ([`stream::ClientStream`]: header
//! deadlines, chunked framing checks, the request budget), and graceful
//! draining.

pub mod chunked;
pub mod drain;
pub mod guard;
pub mod h2_frames;
pub mod listeners;
pub mod proxy_protocol;
pub mod stream;
pub mod tls;
