//! The request path: Pingora's [`ProxyHttp`] for switchyard.
//!
//! `request_filter` answers the status page and routes the request to an
//! upstream; `upstream_peer` picks an UP peer there (503 when none is);
//! `upstream_request_filter` adds `X-Forwarded-For`; `logging` turns the
//! request context into metrics. Nothing here allocates for metrics: the
//! handles hang off the peer and the upstream, resolved at startup.

use crate::config::HashKey;
use crate::metrics::UpstreamErrorKind;
use crate::peer::Peer;
use crate::router::Router;
use crate::status;
use crate::upstream::Upstream;
use async_trait::async_trait;
use bytes::Bytes;
use http::header;
use pingora_core::protocols::http::ServerSession;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// What one request carries from filter to filter.
pub struct RequestContext {
    started: Instant,
    upstream: Option<Arc<Upstream>>,
    peer: Option<Arc<Peer>>,
    /// When the current peer was chosen; taken when its response header
    /// arrives.
    peer_chosen_at: Option<Instant>,
}

/// The balancer.
pub struct Balancer {
    router: Router,
    status_path: String,
}

impl Balancer {
    pub fn new(router: Router, status_path: String) -> Self {
        Balancer {
            router,
            status_path,
        }
    }

    async fn serve_status_page(&self, session: &mut Session) -> Result<()> {
        let request = session.req_header();
        let format = status::Format::negotiate(
            request.uri.query(),
            request.headers.get(header::ACCEPT).map(|v| v.as_bytes()),
        );
        let head_only = request.method == http::Method::HEAD;
        let body = status::render(self.router.upstreams(), format);
        let mut response = ResponseHeader::build(200, Some(4))?;
        response.insert_header(header::CONTENT_TYPE, format.content_type())?;
        response.insert_header(header::CONTENT_LENGTH, body.len())?;
        response.insert_header(header::CACHE_CONTROL, "no-store")?;
        session
            .write_response_header(Box::new(response), head_only)
            .await?;
        if !head_only {
            session
                .write_response_body(Some(Bytes::from(body)), true)
                .await?;
        }
        Ok(())
    }
}

/// The key a hashing algorithm hashes, borrowed from the request (or, for a
/// client IP, copied into `buffer`) so that nothing is allocated.
fn hash_key<'a>(key: HashKey, session: &'a Session, buffer: &'a mut [u8; 16]) -> &'a [u8] {
    match key {
        HashKey::Uri => session
            .req_header()
            .uri
            .path_and_query()
            .map_or(b"/", |pq| pq.as_str().as_bytes()),
        HashKey::ClientIp => match client_ip(session) {
            Some(IpAddr::V4(ip)) => {
                buffer[..4].copy_from_slice(&ip.octets());
                &buffer[..4]
            }
            Some(IpAddr::V6(ip)) => {
                *buffer = ip.octets();
                &buffer[..]
            }
            None => b"",
        },
    }
}

fn client_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// A short plain-text error response, `503 Service Unavailable: <detail>`;
/// closes the client connection, as Pingora does for every error it
/// generates.
async fn respond_plain_error(session: &mut Session, code: u16, detail: Option<&str>) -> Result<()> {
    let reason = http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let text = match detail {
        Some(detail) => format!("{code} {reason}: {detail}\n"),
        None => format!("{code} {reason}\n"),
    };
    let mut response = ServerSession::generate_error(code);
    response.insert_header(header::CONTENT_TYPE, "text/plain; charset=utf-8")?;
    let body = Bytes::from(text);
    response.set_content_length(body.len())?;
    session
        .as_downstream_mut()
        .write_error_response(response, body)
        .await
}

/// The status code Pingora would answer an error with (0: the client is
/// gone, send nothing).
fn error_status(error: &Error) -> u16 {
    match error.etype() {
        ErrorType::HTTPStatus(code) => *code,
        _ => match error.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match error.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

#[async_trait]
impl ProxyHttp for Balancer {
    type CTX = RequestContext;

    fn new_ctx(&self) -> RequestContext {
        RequestContext {
            started: Instant::now(),
            upstream: None,
            peer: None,
            peer_chosen_at: None,
        }
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestContext,
    ) -> Result<bool> {
        let path = session.req_header().uri.path();
        if path == self.status_path {
            self.serve_status_page(session).await?;
            return Ok(true);
        }
        let Some(upstream) = self.router.route(path) else {
            respond_plain_error(session, 404, Some("no upstream serves this path")).await?;
            return Ok(true);
        };
        upstream.metrics.request_started();
        ctx.upstream = Some(Arc::clone(upstream));
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestContext,
    ) -> Result<Box<HttpPeer>> {
        let Some(upstream) = ctx.upstream.as_ref() else {
            return Error::e_explain(ErrorType::InternalError, "request was not routed");
        };
        let mut buffer = [0u8; 16];
        let key = hash_key(upstream.hash_key, session, &mut buffer);
        let Some(peer) = upstream.select(key) else {
            return Error::e_explain(ErrorType::HTTPStatus(503), "no peer is up");
        };
        let http_peer = peer.http_peer();
        ctx.peer = Some(Arc::clone(peer));
        ctx.peer_chosen_at = Some(Instant::now());
        Ok(http_peer)
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        _ctx: &mut RequestContext,
    ) -> Result<()> {
        let Some(ip) = client_ip(session) else {
            return Ok(());
        };
        let forwarded_for = match upstream_request.headers.get("x-forwarded-for") {
            Some(existing) => {
                let mut value = existing.as_bytes().to_vec();
                value.extend_from_slice(b", ");
                value.extend_from_slice(ip.to_string().as_bytes());
                value
            }
            None => ip.to_string().into_bytes(),
        };
        upstream_request.insert_header("X-Forwarded-For", forwarded_for)
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestContext,
    ) -> Result<()> {
        if upstream_response.status.is_informational() {
            return Ok(());
        }
        if let (Some(peer), Some(chosen)) = (&ctx.peer, ctx.peer_chosen_at.take()) {
            peer.metrics
                .observe_upstream_response(chosen.elapsed().as_secs_f64());
        }
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestContext,
        e: Box<Error>,
    ) -> Box<Error> {
        if let Some(peer) = &ctx.peer {
            peer.metrics.count_error(UpstreamErrorKind::of(&e));
        }
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestContext,
        client_reused: bool,
    ) -> Box<Error> {
        if let Some(chosen) = &ctx.peer {
            chosen.metrics.count_error(UpstreamErrorKind::of(&e));
        }
        // Pingora's default policy: retry only idempotent requests whose body
        // can be replayed, and reused-connection errors only on reuse.
        let mut e = e.more_context(format!("Peer: {peer}"));
        if !session.req_header().method.is_idempotent() || session.as_ref().retry_buffer_truncated()
        {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        _ctx: &mut RequestContext,
    ) -> FailToProxy {
        let code = error_status(e);
        if code > 0 {
            // Only the errors switchyard raises itself carry a detail meant
            // for the client (e.g. "no peer is up").
            let detail = match e.etype() {
                ErrorType::HTTPStatus(_) => e.context.as_ref().map(|c| c.as_str()),
                _ => None,
            };
            if let Err(write_error) = respond_plain_error(session, code, detail).await {
                log::debug!("could not send the {code} response: {write_error}");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestContext) {
        let Some(upstream) = ctx.upstream.as_ref() else {
            return;
        };
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let counters = match &ctx.peer {
            Some(peer) => &peer.metrics.requests,
            None => &upstream.metrics.unrouted,
        };
        counters.record(status);
        upstream
            .metrics
            .observe_request(ctx.started.elapsed().as_secs_f64());
        upstream.metrics.request_finished();
    }
}
