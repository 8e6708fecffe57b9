//! The door of the HTTP proxy: a cap on client connections, the TLS
//! handshake, and every accepted connection read through a [`ClientStream`].
//!
//! Pingora accepts any number of connections; [`ConnectionGuard`] closes
//! those over `limits.max_connections` on arrival. It counts the open ones
//! (`switchyard_client_connections`). On a listener with `proxy_protocol`
//! it first reads the PROXY header, within `limits.header_timeout`, and
//! takes the client's address from it. On a TLS listener it runs the
//! handshake itself, under the connection's permit and within
//! `limits.header_timeout`, with the endpoint of the live configuration (so
//! a reload's certificates serve the next handshake): Pingora's own TLS
//! listener would run it before any of that, for up to 60 s, logging an
//! error per failed handshake. Then it hands the proxy the connection
//! wrapped in a [`ClientStream`], which gives every request header
//! `limits.header_timeout` in all (Pingora times out single reads only, so
//! a client sending a byte at a time, slowloris, could hold a connection
//! forever), or watches the frames of an HTTP/2 connection.

use super::h2_frames::{FrameWatch, PREFACE};
use super::proxy_protocol;
use super::stream::ClientStream;
use crate::live::Live;
use crate::metrics::tls::{HandshakeMetrics, HandshakeResult};
use crate::metrics::ConnectionMetrics;
use async_trait::async_trait;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::l4::stream::Stream as TcpStream;
use pingora_core::protocols::tls::server::handshake;
use pingora_core::protocols::{Stream, ALPN};
use pingora_core::server::ShutdownWatch;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use tokio::time::{timeout_at, Instant};

/// The server app of the proxy's listeners, behind one connection cap.
pub struct ConnectionGuard<A> {
    inner: Arc<A>,
    permits: Arc<Semaphore>,
    /// For the listeners' current settings and `limits`.
    live: Arc<Live>,
    /// The listeners' addresses, in `listen` order (fixed while the
    /// process runs).
    addrs: Vec<SocketAddr>,
    metrics: ConnectionMetrics,
    /// By listener; TLS listeners only.
    handshakes: Vec<Option<HandshakeMetrics>>,
}

impl<A> ConnectionGuard<A> {
    /// The guard of `live`'s listeners, serving `inner` with at most
    /// `max_connections` open in all.
    pub fn new(inner: A, max_connections: usize, live: Arc<Live>) -> Self {
        let listen = live.current().config.listen.clone();
        let addrs: Vec<SocketAddr> = listen.addrs().collect();
        ConnectionGuard {
            inner: Arc::new(inner),
            permits: Arc::new(Semaphore::new(max_connections)),
            handshakes: listen
                .0
                .iter()
                .map(|l| {
                    let label = l.addr.0.to_string();
                    l.tls.as_ref().map(|_| HandshakeMetrics::new(&label))
                })
                .collect(),
            addrs,
            live,
            metrics: ConnectionMetrics::new(),
        }
    }

    /// The listener (its `listen` index) `stream` was accepted on: the one
    /// of its local address, or of its port on an unspecified address.
    fn listener_of(&self, stream: &Stream) -> Option<usize> {
        if self.addrs.len() == 1 {
            return Some(0);
        }
        let digest = stream.get_socket_digest()?;
        let local = digest.local_addr()?.as_inet()?.to_owned();
        let canonical = SocketAddr::new(local.ip().to_canonical(), local.port());
        self.addrs
            .iter()
            .position(|a| *a == local || *a == canonical)
            .or_else(|| {
                self.addrs
                    .iter()
                    .position(|a| a.ip().is_unspecified() && a.port() == local.port())
            })
    }

    /// The connection made ready for HTTP: TLS done, the protocol chosen,
    /// wrapped for the proxy. `None` closes it.
    async fn prepare(&self, stream: Stream) -> Option<Stream> {
        let index = self.listener_of(&stream)?;
        let snapshot = self.live.current();
        let limits = &snapshot.config.limits;
        let header_timeout = snapshot.header_timeout;
        let deadline = Instant::now() + header_timeout;
        let listener = snapshot.listeners.get(index)?;
        // The listener's own TCP stream (the handshake needs its type).
        let mut tcp = stream.into_any().downcast::<TcpStream>().ok()?;
        if listener.proxy_protocol {
            let header = timeout_at(deadline, proxy_protocol::read_header(&mut *tcp)).await;
            match header {
                Ok(Ok(header)) => {
                    tcp.rewind(&header.read_past);
                    if let Some(client) = header.client {
                        proxy_protocol::set_client_addr(&mut tcp, client);
                    }
                }
                Ok(Err(e)) => {
                    log::debug!("PROXY header on {} refused: {e}", listener.label);
                    return None;
                }
                Err(_) => {
                    log::debug!(
                        "no PROXY header on {} within limits.header_timeout",
                        listener.label
                    );
                    return None;
                }
            }
        }
        let mut prior_knowledge = false;
        let stream: Stream = if let Some(tls) = &listener.tls {
            let handshaken = timeout_at(deadline, handshake(tls.acceptor(), *tcp)).await;
            let (result, outcome) = match handshaken {
                Ok(Ok(tls_stream)) => (HandshakeResult::Ok, Some(Box::new(tls_stream) as Stream)),
                Ok(Err(e)) => {
                    log::debug!("TLS handshake on {} failed: {e}", listener.label);
                    (HandshakeResult::Failed, None)
                }
                Err(_) => (HandshakeResult::Timeout, None),
            };
            if let Some(Some(metrics)) = self.handshakes.get(index) {
                metrics.record(result);
            }
            outcome?
        } else {
            if listener.http2 {
                let preface = timeout_at(deadline, starts_with_preface(&mut tcp)).await;
                prior_knowledge = matches!(preface, Ok(Ok(true)));
            }
            tcp
        };
        let http2 = prior_knowledge || matches!(stream.selected_alpn_proto(), Some(ALPN::H2));
        let guarded = if http2 {
            let watch = FrameWatch::new(limits.max_header_bytes.0, limits.http2_max_streams.0);
            ClientStream::http2(stream, header_timeout, deadline, watch, prior_knowledge)
        } else {
            ClientStream::until(stream, header_timeout, deadline)
        };
        Some(Box::new(guarded.on_listener(index)))
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for ConnectionGuard<A> {
    async fn process_new(
        self: &Arc<Self>,
        session: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let Ok(_permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            // Dropping the stream closes the connection.
            self.metrics.refused();
            log::debug!("connection refused: limits.max_connections reached");
            return None;
        };
        let _open = self.metrics.opened();
        let guarded = self.prepare(session).await?;
        self.inner.process_new(guarded, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

/// Whether the connection starts with HTTP/2's client preface (h2c by prior
/// knowledge). Reads no more than it takes to tell, and puts back what it
/// read: an HTTP/1 request shorter than the preface is not waited for.
async fn starts_with_preface(tcp: &mut TcpStream) -> std::io::Result<bool> {
    let mut read = [0u8; PREFACE.len()];
    let mut filled = 0;
    let matches = loop {
        let n = tcp.read(&mut read[filled..]).await?;
        filled += n;
        if n == 0 || read[..filled] != PREFACE[..filled] {
            break false;
        }
        if filled == PREFACE.len() {
            break true;
        }
    };
    tcp.rewind(&read[..filled]);
    Ok(matches)
}
