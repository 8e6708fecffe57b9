//! The door of the HTTP proxy: a cap on client connections, and every
//! accepted connection read through a [`ClientStream`].
//!
//! Pingora accepts any number of connections; [`ConnectionGuard`] closes
//! those over `limits.max_connections` on arrival. It counts the open ones
//! (`switchyard_client_connections`), and hands the proxy each connection
//! wrapped in a [`ClientStream`], which gives every request header
//! `limits.header_timeout` in all (Pingora times out single reads only, so a
//! client sending a byte at a time, slowloris, could hold a connection
//! forever).

use super::stream::ClientStream;
use crate::live::Live;
use crate::metrics::ConnectionMetrics;
use async_trait::async_trait;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// A server app behind a connection cap, reading through [`ClientStream`]s.
pub struct ConnectionGuard<A> {
    inner: Arc<A>,
    permits: Arc<Semaphore>,
    /// For the current `limits.header_timeout`.
    live: Arc<Live>,
    metrics: ConnectionMetrics,
}

impl<A> ConnectionGuard<A> {
    pub fn new(inner: A, max_connections: usize, live: Arc<Live>) -> Self {
        ConnectionGuard {
            inner: Arc::new(inner),
            permits: Arc::new(Semaphore::new(max_connections)),
            live,
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
        let header_timeout = self.live.current().header_timeout;
        let guarded: Stream = Box::new(ClientStream::new(session, header_timeout));
        self.inner.process_new(guarded, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}
