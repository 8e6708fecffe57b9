//! Graceful draining of client keep-alive connections.
//!
//! On a graceful shutdown (SIGTERM, or SIGQUIT during a hot upgrade) Pingora
//! stops accepting and then, at once, drops every client connection that is
//! idle between two requests. A client that has just sent its next request
//! on such a connection sees it reset: a failed request during what should
//! be a zero-downtime upgrade. [`Draining`] keeps those connections open
//! instead: a request that arrives on one during the grace period is served
//! with `Connection: close` (Pingora does that once shutdown has begun), so
//! the client reconnects, to the new process after an upgrade. Connections
//! still idle when the grace period ends close with the process, as nginx's
//! do.

use async_trait::async_trait;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use std::sync::Arc;

/// A server app whose idle connections outlive the start of a shutdown.
pub struct Draining<A> {
    inner: Arc<A>,
}

impl<A> Draining<A> {
    pub fn new(inner: A) -> Self {
        Draining {
            inner: Arc::new(inner),
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Draining<A> {
    async fn process_new(
        self: &Arc<Self>,
        session: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        self.inner.process_new(session, shutdown).await
    }

    /// Called once the listeners are closed. Deliberately does not call the
    /// inner app's cleanup, which would drop the idle connections.
    async fn cleanup(&self) {
        log::info!(
            "stopped accepting; open client connections are served with `Connection: close` until the grace period ends"
        );
    }
}
