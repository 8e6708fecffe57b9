//! The request path: Pingora's [`ProxyHttp`] for switchyard.
//!
//! `request_filter` admits the request ([`Admission`]), answers the status
//! page and routes the request to an upstream; `upstream_peer` picks an UP
//! peer there that this request has not tried yet (503 when none is up);
//! failures feed passive health and go to another peer while the upstream's
//! policy allows (`fail_to_connect`, `error_while_proxy`, and
//! `upstream_response_filter` for `retry_on_status`); `logging` turns the
//! request context into metrics. Nothing here allocates for metrics: the
//! handles hang off the peer and the upstream, resolved at startup.

use crate::admission::Admission;
use crate::config::{Config, HashKey};
use crate::metrics::UpstreamErrorKind;
use crate::peer::Peer;
use crate::router::Router;
use crate::status;
use crate::upstream::{TriedPeers, Upstream};
use async_trait::async_trait;
use bytes::Bytes;
use http::header;
use pingora_core::modules::http::HttpModules;
use pingora_core::protocols::http::ServerSession;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest text form of an IP address (IPv6 with an embedded IPv4).
const MAX_IP_TEXT_LEN: usize = 45;

/// What one request carries from filter to filter.
pub struct RequestContext {
    started: Instant,
    upstream: Option<Arc<Upstream>>,
    /// The peer of the current attempt.
    peer: Option<Arc<Peer>>,
    /// When the current peer was chosen; taken when its response header
    /// arrives.
    peer_chosen_at: Option<Instant>,
    tried: TriedPeers,
    attempts: u32,
    /// The current peer has sent a response header: too late to retry.
    response_started: bool,
    /// The current peer's answer is dropped for a retry (`retry_on_status`).
    retrying_status: bool,
    /// The last attempt failed on a timeout: a final failure is a 504.
    timed_out: bool,
    body_bytes: u64,
}

impl RequestContext {
    /// Whether the upstream's policy allows another attempt: attempts and
    /// time left.
    fn may_try_again(&self) -> bool {
        self.upstream.as_ref().is_some_and(|u| {
            self.attempts < u.policy.max_attempts
                && self.started.elapsed() < u.policy.request_timeout
        })
    }

    /// Passive health and metrics: the current peer failed this request.
    fn peer_failed(&mut self, error: &Error) {
        let kind = UpstreamErrorKind::of(error);
        self.timed_out = is_timeout(error);
        if let (Some(upstream), Some(peer)) = (&self.upstream, &self.peer) {
            peer.metrics.count_error(kind);
            peer.record_request_failure(upstream.policy.max_fails, kind.label());
        }
    }
}

/// The balancer.
pub struct Balancer {
    router: Router,
    status_path: String,
    admission: Admission,
    keepalive_seconds: u64,
}

impl Balancer {
    pub fn new(router: Router, config: &Config) -> Self {
        Balancer {
            router,
            status_path: config.status_path.0.clone(),
            admission: Admission::new(config),
            keepalive_seconds: config.limits.keepalive_timeout.0.as_secs().max(1),
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

/// Whether a request with `Transfer-Encoding` arrived with a
/// `Content-Length` too, which Pingora removes from the parsed header. Only
/// such (rare) requests pay for a look at the raw header.
fn had_content_length(session: &Session) -> bool {
    let request = session.req_header();
    if !request.headers.contains_key(header::TRANSFER_ENCODING) {
        return request.headers.contains_key(header::CONTENT_LENGTH);
    }
    session.as_downstream().as_http1().is_some_and(|h1| {
        h1.get_headers_raw_bytes()
            .split(|b| *b == b'\n')
            .any(|line| line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:"))
    })
}

fn is_timeout(error: &Error) -> bool {
    matches!(
        error.etype(),
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
    )
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

/// The status to answer an error with (0: the client is gone, send
/// nothing): a peer that timed out is a 504, any other peer failure a 502.
fn error_status(error: &Error) -> u16 {
    match error.etype() {
        ErrorType::HTTPStatus(code) => *code,
        _ => match error.esource() {
            ErrorSource::Upstream if is_timeout(error) => 504,
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

    /// No downstream modules. Pingora's default adds its response
    /// compression module, switched off, which still builds a context and
    /// runs its filters on every request; switchyard passes bodies through
    /// as the peers sent them.
    fn init_downstream_modules(&self, _modules: &mut HttpModules) {}

    fn new_ctx(&self) -> RequestContext {
        RequestContext {
            started: Instant::now(),
            upstream: None,
            peer: None,
            peer_chosen_at: None,
            tried: TriedPeers::default(),
            attempts: 0,
            response_started: false,
            retrying_status: false,
            timed_out: false,
            body_bytes: 0,
        }
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestContext,
    ) -> Result<bool> {
        // While shutting down Pingora has already turned keep-alive off (the
        // answer says `Connection: close`); leave it off then.
        if session.as_downstream().get_keepalive().is_some() {
            session.set_keepalive(Some(self.keepalive_seconds));
        }
        let client = client_ip(session);
        let had_content_length = had_content_length(session);
        if let Err(refusal) = self
            .admission
            .check(session.req_header(), had_content_length, client)
        {
            log::info!(
                "refused {} from {}: {} {}",
                session.req_header().uri,
                client.map_or_else(|| "?".to_string(), |ip| ip.to_string()),
                refusal.status,
                refusal.reason
            );
            respond_plain_error(session, refusal.status, Some(refusal.reason)).await?;
            return Ok(true);
        }
        let path = session.req_header().uri.path();
        if path == self.status_path {
            if self.admission.may_see_status(client) {
                self.serve_status_page(session).await?;
            } else {
                let detail = Some("the status page is not available to you");
                respond_plain_error(session, 403, detail).await?;
            }
            return Ok(true);
        }
        let Some(upstream) = self.router.route(path) else {
            respond_plain_error(session, 404, Some("no upstream serves this path")).await?;
            return Ok(true);
        };
        upstream.metrics.request_started();
        ctx.upstream = Some(Arc::clone(upstream));
        // Keep the start of the body so a failed attempt can be replayed on
        // another peer.
        session.enable_retry_buffering();
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestContext,
    ) -> Result<()> {
        if let Some(chunk) = body {
            ctx.body_bytes += chunk.len() as u64;
            if ctx.body_bytes > self.admission.max_body_bytes() {
                return Error::e_explain(ErrorType::HTTPStatus(413), "request body too large");
            }
        }
        Ok(())
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestContext,
    ) -> Result<Box<HttpPeer>> {
        let Some(upstream) = ctx.upstream.as_ref() else {
            return Error::e_explain(ErrorType::InternalError, "request was not routed");
        };
        let remaining = upstream
            .policy
            .request_timeout
            .saturating_sub(ctx.started.elapsed());
        if remaining.is_zero() {
            return Error::e_explain(ErrorType::HTTPStatus(504), "the request ran out of time");
        }
        let mut buffer = [0u8; 16];
        let key = hash_key(upstream.hash_key, session, &mut buffer);
        let Some(peer) = upstream.select(key, ctx.tried) else {
            let (code, why) = match (ctx.attempts, ctx.timed_out) {
                (0, _) => (503, "no peer is up"),
                (_, true) => (504, "every peer tried timed out"),
                (_, false) => (502, "every peer tried failed"),
            };
            return Error::e_explain(ErrorType::HTTPStatus(code), why);
        };
        let mut http_peer = peer.http_peer();
        // The request's time budget bounds every wait on the peer.
        let options = &mut http_peer.options;
        for limit in [
            &mut options.connection_timeout,
            &mut options.read_timeout,
            &mut options.write_timeout,
        ] {
            if limit.is_none_or(|d: Duration| d > remaining) {
                *limit = Some(remaining);
            }
        }
        ctx.tried.add(peer.index);
        ctx.attempts += 1;
        ctx.response_started = false;
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
        // One allocation, which becomes the header value as it is.
        let existing = upstream_request.headers.get("x-forwarded-for");
        let mut forwarded_for =
            Vec::with_capacity(existing.map_or(0, |v| v.len() + 2) + MAX_IP_TEXT_LEN);
        if let Some(existing) = existing {
            forwarded_for.extend_from_slice(existing.as_bytes());
            forwarded_for.extend_from_slice(b", ");
        }
        // Writing into a Vec cannot fail.
        let _ = write!(forwarded_for, "{ip}");
        upstream_request.insert_header("X-Forwarded-For", forwarded_for)
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestContext,
    ) -> Result<()> {
        if upstream_response.status.is_informational() {
            return Ok(());
        }
        ctx.response_started = true;
        let (Some(upstream), Some(peer)) = (&ctx.upstream, &ctx.peer) else {
            return Ok(());
        };
        if let Some(chosen) = ctx.peer_chosen_at.take() {
            peer.metrics
                .observe_upstream_response(chosen.elapsed().as_secs_f64());
        }
        let status = upstream_response.status;
        if upstream.policy.fails_on_status(status.as_u16()) {
            peer.record_request_failure(upstream.policy.max_fails, status.as_str());
        } else {
            peer.health.record_request_success();
        }
        let retry = upstream.policy.retries_status(status.as_u16())
            && session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated()
            && ctx.may_try_again()
            && upstream.has_untried_peer(ctx.tried);
        if retry {
            // This answer is dropped; error_while_proxy sends the request on
            // to another peer.
            ctx.retrying_status = true;
            return Error::e_explain(
                ErrorType::HTTPStatus(status.as_u16()),
                "retrying on another peer",
            );
        }
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestContext,
        mut e: Box<Error>,
    ) -> Box<Error> {
        ctx.peer_failed(&e);
        // Nothing of the request was sent: any method may go elsewhere.
        e.set_retry(ctx.may_try_again());
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestContext,
        _client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        if std::mem::take(&mut ctx.retrying_status) {
            e.set_retry(true);
            return e;
        }
        if e.esource() != &ErrorSource::Upstream {
            // The client went away or sent something bad: not the peer's fault.
            e.set_retry(false);
            return e;
        }
        ctx.peer_failed(&e);
        // Once the peer answered, for a method that must not run twice, or
        // with a body too long to replay, the failure is final.
        let retry = !ctx.response_started
            && session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated()
            && ctx.may_try_again();
        e.set_retry(retry);
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
