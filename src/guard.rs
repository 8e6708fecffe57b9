//! Connection-level guards in front of the HTTP proxy: a cap on client
//! connections, and a deadline for a new connection's first request header.
//!
//! Pingora times out each *read* of a request header (60 s), so a client that
//! sends one byte at a time (slowloris) can hold a connection forever, and
//! it accepts any number of connections. [`ConnectionGuard`] closes
//! connections over `limits.max_connections` on arrival, and gives each new
//! connection `limits.header_timeout` to deliver its whole first header
//! ([`HeaderDeadline`]). Later requests on a keep-alive connection are bounded
//! by Pingora's keep-alive timeout instead.

use crate::metrics::ConnectionMetrics;
use async_trait::async_trait;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::{GetProxyDigest, GetSocketDigest, GetTimingDigest};
use pingora_core::protocols::{Peek, Shutdown, SocketDigest, Ssl, Stream, TimingDigest};
use pingora_core::protocols::{UniqueID, UniqueIDType};
use pingora_core::server::ShutdownWatch;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;
use tokio::time::Sleep;

/// A server app behind a connection cap and a header deadline.
pub struct ConnectionGuard<A> {
    inner: Arc<A>,
    permits: Arc<Semaphore>,
    header_timeout: Duration,
    metrics: ConnectionMetrics,
}

impl<A> ConnectionGuard<A> {
    pub fn new(inner: A, max_connections: usize, header_timeout: Duration) -> Self {
        ConnectionGuard {
            inner: Arc::new(inner),
            permits: Arc::new(Semaphore::new(max_connections)),
            header_timeout,
            metrics: ConnectionMetrics::new(),
        }
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
        let guarded: Stream = Box::new(HeaderDeadline::new(session, self.header_timeout));
        self.inner.process_new(guarded, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

/// A client stream that fails its reads once `deadline` passes before the
/// end of the first request header (`\r\n\r\n`) has been read.
#[derive(Debug)]
pub struct HeaderDeadline {
    inner: Stream,
    /// `None` once the header is complete.
    deadline: Option<Pin<Box<Sleep>>>,
    /// The last four bytes read, to spot `\r\n\r\n` across reads.
    window: u32,
}

const HEADER_END: u32 = u32::from_be_bytes(*b"\r\n\r\n");

impl HeaderDeadline {
    pub fn new(inner: Stream, timeout: Duration) -> Self {
        HeaderDeadline {
            inner,
            deadline: Some(Box::pin(tokio::time::sleep(timeout))),
            window: 0,
        }
    }

    fn saw(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.window = (self.window << 8) | u32::from(*byte);
            if self.window == HEADER_END {
                self.deadline = None;
                return;
            }
        }
    }
}

impl AsyncRead for HeaderDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(deadline) = this.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request header took longer than limits.header_timeout",
                )));
            }
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.deadline.is_some() && matches!(result, Poll::Ready(Ok(()))) {
            this.saw(&buf.filled()[before..]);
        }
        result
    }
}

impl AsyncWrite for HeaderDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for HeaderDeadline {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for HeaderDeadline {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for HeaderDeadline {}

impl GetTimingDigest for HeaderDeadline {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for HeaderDeadline {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for HeaderDeadline {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }
    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for HeaderDeadline {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}
