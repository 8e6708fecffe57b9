//! The request path: Pingora's [`ProxyHttp`] for switchyard.
//!
//! `request_filter` tells the client stream how the body is framed, works
//! out where the request comes from ([`Forwarding`](crate::request::forwarding::Forwarding)), admits it
//! ([`Admission`](crate::request::admission::Admission): limits, `Host`, framing, the path's two forms, deny
//! rules), answers the status page, routes the request to an upstream, and
//! reads a small body in full before any peer is involved; `upstream_peer`
//! picks an UP peer there that this request has not tried yet;
//! `upstream_request_filter` sends the normalized path and the forwarding
//! headers. Failures feed passive health and go to another peer while the
//! upstream's policy allows (`fail_to_connect`, `error_while_proxy`, and
//! `upstream_response_filter` for `retry_on_status`), unless they were not
//! the peer's doing ([`failure`]). `logging` turns the
//! request context into metrics, and into an access log line when there is
//! an access log ([`access_log`](super::access_log)). Nothing here
//! allocates for metrics: the handles hang off the peer, the upstream and
//! the route, resolved when the snapshot is built. Every request gets an
//! `X-Request-ID` ([`crate::request::request_id`]) unless
//! `request_id: false`.
//!
//! The request's time budget (`timeouts.request`) starts once its body is
//! complete, and bounds connecting and waiting for a response header over
//! all attempts. Pingora times out single reads only, so the budget is
//! enforced through the client stream ([`ClientStream::set_budget`]), which
//! Pingora polls while it waits for the peer.

use super::access_log::{AccessLog, Entry};
use super::context::RequestContext;
use super::failure::{self, is_broken_connection, is_timeout};
use super::hook_phases;
use super::respond;
use crate::listen::stream::{ClientStream, Framing};
use crate::live::Live;
use crate::metrics::UpstreamErrorKind;
use crate::peer::latency::Tick;
use crate::peer::{InFlight, Member};
use crate::request::admission::content_length;
use crate::request::forwarding::Origin;
use crate::request::hash_key;
use crate::request::https_redirect;
use crate::request::request_id::{self, X_REQUEST_ID};
use crate::resources::is_exhausted;
use crate::routing::matcher::RequestView;
use crate::routing::Action;
use crate::upstream::overload::{Acquire, Waited};
use crate::upstream::{TriedPeers, Upstream};
use async_trait::async_trait;
use bytes::Bytes;
use http::{header, HeaderValue};
use pingora_core::modules::http::HttpModules;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The pool group of connections made for a retry on a fresh connection:
/// none of them is ever pooled (the retry says `Connection: close`), so a
/// lookup in this group finds nothing and connects anew.
const FRESH_CONNECTION_GROUP: u64 = u64::MAX;

/// The balancer: serves each request with the live snapshot it arrives in.
pub struct Balancer {
    live: Arc<Live>,
    /// Where the lines go when the snapshot has an access log.
    access_log: Arc<AccessLog>,
}

impl Balancer {
    /// The balancer of `live`, logging requests to `access_log` while the
    /// configuration has one.
    pub fn new(live: Arc<Live>, access_log: Arc<AccessLog>) -> Self {
        Balancer { live, access_log }
    }

    /// Queue the access log line of a finished request, when there is an
    /// access log.
    fn log_request(&self, session: &Session, ctx: &RequestContext) {
        let Some(settings) = ctx.snapshot.as_ref().and_then(|s| s.access_log.as_ref()) else {
            return;
        };
        let request = session.req_header();
        let (target, target_cut) = Entry::bounded_target(request.raw_path());
        let combined = settings.format == crate::config::AccessLogFormat::Combined;
        let header = |name: header::HeaderName| {
            combined
                .then(|| request.headers.get(name).cloned())
                .flatten()
        };
        self.access_log.log(Entry {
            settings: Arc::clone(settings),
            time: SystemTime::now(),
            client: ctx.origin.map(|o| o.client),
            method: request.method.clone(),
            target,
            target_cut,
            version: request.version,
            status: status_sent(session),
            bytes_in: session.body_bytes_read() as u64,
            bytes_out: session.body_bytes_sent() as u64,
            route: ctx.route().map(|r| Arc::clone(&r.name)),
            upstream: ctx.upstream.clone(),
            peer: ctx.peer.as_ref().map(|m| Arc::clone(&m.peer)),
            attempts: ctx.attempts,
            duration: ctx.started.elapsed(),
            upstream_header: ctx.upstream_header,
            request_id: ctx.request_id.clone(),
            referer: header(header::REFERER),
            user_agent: header(header::USER_AGENT),
        });
    }

    /// Start the request's time budget: its body is complete (`since`
    /// then). Each attempt arms the client stream with it (`upstream_peer`);
    /// one under way already is armed here.
    fn start_budget(&self, session: &Session, ctx: &mut RequestContext, since: Instant) {
        let Some(upstream) = &ctx.upstream else {
            return;
        };
        if ctx.deadline.is_some() {
            return;
        }
        let deadline = since + upstream.policy.request_timeout;
        ctx.deadline = Some(deadline);
        if ctx.peer.is_some() {
            if let Some(stream) = client_stream(session) {
                stream.set_budget(Some(tokio::time::Instant::from_std(deadline)));
            }
        }
    }

    /// Read a body of `length` bytes now, before any peer is chosen: a slow
    /// client then holds no peer's connection, and its slowness cannot be
    /// taken for the peer's. Pingora keeps the body (in its retry buffer)
    /// and sends it on.
    async fn read_body_first(&self, session: &mut Session) -> Result<()> {
        loop {
            match session.read_request_body().await {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(e) if is_timeout(&e) => return Err(body_too_slow()),
                Err(mut e) => {
                    e.as_down();
                    return Err(e);
                }
            }
        }
    }
}

/// The status of the response sent, 0 for none (a `100 Continue` alone is
/// no answer).
fn status_sent(session: &Session) -> u16 {
    session
        .response_written()
        .filter(|r| !r.status.is_informational())
        .map_or(0, |r| r.status.as_u16())
}

/// 408 for a client whose body stalled: its own fault, no peer's.
fn body_too_slow() -> Box<Error> {
    let mut e = Error::explain(
        ErrorType::HTTPStatus(408),
        "the request body took too long (limits.body_timeout)",
    );
    e.as_down();
    e.set_retry(false);
    e
}

/// The client stream of a request, when the connection came through
/// switchyard's listener.
fn client_stream(session: &Session) -> Option<&ClientStream> {
    session.as_downstream().stream().and_then(ClientStream::of)
}

/// Whether a request asks for a WebSocket. Pingora forwards no other
/// `Upgrade` (its default upstream request policy), so no other can become
/// a tunnel.
fn is_websocket_upgrade(request: &RequestHeader) -> bool {
    request.method == http::Method::GET
        && request.version == http::Version::HTTP_11
        && request
            .headers
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// Whether a response is an interim one (`100 Continue`, `103 Early
/// Hints`), which another follows; a `101` is final (a tunnel follows).
fn is_interim(status: http::StatusCode) -> bool {
    status.is_informational() && status != http::StatusCode::SWITCHING_PROTOCOLS
}

/// Whether the client waits for `100 Continue` before sending its body.
fn expects_continue(request: &RequestHeader) -> bool {
    request.version == http::Version::HTTP_11
        && request
            .headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// How a request's body is framed (Pingora has already refused what it
/// cannot frame).
fn framing_of(request: &RequestHeader) -> Framing {
    if request.headers.contains_key(header::TRANSFER_ENCODING) {
        Framing::Chunked
    } else {
        match content_length(request) {
            Ok(Some(length)) if length > 0 => Framing::Length(length),
            _ => Framing::Empty,
        }
    }
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

/// A request target for a log line: at most 200 bytes of it, escaped.
fn loggable(target: &[u8]) -> String {
    let shown = &target[..target.len().min(200)];
    let mut text = shown.escape_ascii().to_string();
    if shown.len() < target.len() {
        text.push_str("...");
    }
    text
}

/// A peer for a request with hash key `key` that has tried `tried`,
/// counted in flight there from `now` (`max_requests` permitting).
fn look_for_peer<'a>(
    upstream: &'a Upstream,
    key: &[u8],
    tried: TriedPeers,
    now: Tick,
) -> Acquire<(&'a Arc<Member>, InFlight)> {
    let limit = upstream.policy.limits.max_requests;
    match upstream.select(key, tried) {
        Some(member) => match member.peer.start_request_within(limit, now) {
            Some(in_flight) => Acquire::Got((member, in_flight)),
            None => {
                // Another request took the last slot; this one's count is
                // back down.
                upstream.slot_freed();
                Acquire::Full
            }
        },
        None if upstream.policy.limits.limits_peers() && upstream.has_untried_peer(tried) => {
            Acquire::Full
        }
        None => Acquire::NoPeer,
    }
}

/// A peer for a request that found every peer it may go to at
/// `max_requests` (see [`look_for_peer`]): after one more look (a count a
/// racing request has just raised may be down again), a wait in the
/// upstream's queue, at most `queue.timeout` and the `budget_left` of the
/// request's time. Without a queue, or with a full one, a 503 (504 when
/// the request's time runs out); `None` when no peer may take it any more.
async fn wait_for_peer<'a>(
    upstream: &'a Upstream,
    key: &[u8],
    tried: TriedPeers,
    budget_left: Duration,
) -> Result<Option<(&'a Arc<Member>, InFlight)>> {
    match look_for_peer(upstream, key, tried, Tick::now()) {
        Acquire::Got(picked) => return Ok(Some(picked)),
        Acquire::NoPeer => return Ok(None),
        Acquire::Full => {}
    }
    let Some(queue) = &upstream.policy.limits.queue else {
        if tried != TriedPeers::NONE {
            // A retry with nowhere to go: the request ends with the error
            // it had.
            return Ok(None);
        }
        return Error::e_explain(ErrorType::HTTPStatus(503), "every peer is at max_requests");
    };
    let look = || look_for_peer(upstream, key, tried, Tick::now());
    match upstream.overload.wait_for(queue, budget_left, look).await {
        Waited::Got(picked) => Ok(Some(picked)),
        Waited::NoPeer => Ok(None),
        Waited::QueueFull => Error::e_explain(
            ErrorType::HTTPStatus(503),
            "every peer is at max_requests and the queue is full",
        ),
        Waited::TimedOut => Error::e_explain(
            ErrorType::HTTPStatus(503),
            "every peer is at max_requests (waited queue.timeout)",
        ),
        Waited::OutOfTime => Error::e_explain(
            ErrorType::HTTPStatus(504),
            "the request ran out of time (timeouts.request) waiting for a peer",
        ),
    }
}

/// What `request_filter` decided about a request, before it answers.
enum Admitted {
    Refused(u16, &'static str),
    StatusPage,
    NotRouted,
    /// The index of the route that takes it.
    Routed(usize),
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
        RequestContext::new()
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestContext,
    ) -> Result<bool> {
        // The client stream hands out the body only once told its framing.
        let framing = framing_of(session.req_header());
        if let Some(stream) = client_stream(session) {
            stream.set_framing(framing);
        }
        // One configuration for the whole request.
        let snapshot = self.live.current();
        ctx.snapshot = Some(Arc::clone(&snapshot));
        // While shutting down Pingora has already turned keep-alive off (the
        // answer says `Connection: close`); leave it off then.
        if session.as_downstream().get_keepalive().is_some() {
            session.set_keepalive(Some(snapshot.keepalive_seconds));
        }
        // Pipelined requests are served one after the other, in order.
        session.as_downstream_mut().set_pipelining_enabled(true);
        session.set_read_timeout(Some(snapshot.body_timeout));

        let peer_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let https = session
            .digest()
            .is_some_and(|digest| digest.ssl_digest.is_some());
        ctx.origin = peer_ip.map(|ip| Origin {
            https,
            ..snapshot
                .forwarding
                .origin(ip, &session.req_header().headers)
        });
        if snapshot.request_id {
            ctx.request_id = Some(request_id::request_id(
                ctx.origin.as_ref(),
                &session.req_header().headers,
            ));
        }
        let request_id = ctx.request_id.as_ref();
        let client = ctx.origin.map(|o| o.client);
        let had_content_length = had_content_length(session);
        // The canonical path, for the hooks of a route that has some.
        let mut hook_path = None;
        let admitted =
            match snapshot
                .admission
                .check(session.req_header(), had_content_length, client)
            {
                Err(refusal) => Admitted::Refused(refusal.status, refusal.reason),
                Ok(path) => {
                    let decision = if *path.canonical == *snapshot.status_path.as_bytes() {
                        Admitted::StatusPage
                    } else {
                        let request = session.req_header();
                        let view = RequestView {
                            method: &request.method,
                            path: &path.canonical,
                            host: snapshot
                                .routes
                                .needs_host()
                                .then(|| {
                                    path.authority.or_else(|| {
                                        request.headers.get(header::HOST).map(|h| h.as_bytes())
                                    })
                                })
                                .flatten(),
                            headers: &request.headers,
                            query: request.uri.query().map(str::as_bytes),
                        };
                        match snapshot.routes.route(&view) {
                            Some((index, route)) => {
                                if !route.hooks.is_empty() {
                                    hook_path =
                                        Some(String::from_utf8_lossy(&path.canonical).into_owned());
                                }
                                Admitted::Routed(index)
                            }
                            None => Admitted::NotRouted,
                        }
                    };
                    ctx.forward_host = path
                        .authority
                        .and_then(|host| HeaderValue::from_bytes(host).ok());
                    ctx.forward_target = path.forward;
                    decision
                }
            };
        if snapshot.listeners.redirects && !matches!(admitted, Admitted::Refused(..)) {
            let port = client_stream(session)
                .and_then(|stream| snapshot.listeners.redirect_of(stream.listener()));
            if let Some(port) = port {
                let request = session.req_header();
                let host = ctx
                    .forward_host
                    .as_ref()
                    .or(request.headers.get(header::HOST));
                let target = ctx.forward_target.as_deref().unwrap_or(request.raw_path());
                let location =
                    host.and_then(|host| https_redirect::location(host.as_bytes(), target, port));
                return match location {
                    Some(location) => {
                        respond::redirect(session, 308, &location, request_id).await?;
                        Ok(true)
                    }
                    None => {
                        let detail = Some("a request to redirect to HTTPS needs a Host");
                        respond::plain_error(session, 400, detail, request_id).await?;
                        Ok(true)
                    }
                };
            }
        }
        let index = match admitted {
            Admitted::Refused(status, reason) => {
                log::info!(
                    "refused {} from {}: {status} {reason}",
                    loggable(session.req_header().raw_path()),
                    client.map_or_else(|| "?".to_string(), |ip| ip.to_string()),
                );
                respond::plain_error(session, status, Some(reason), request_id).await?;
                return Ok(true);
            }
            Admitted::StatusPage if snapshot.admission.may_see_status(client) => {
                respond::status_page(session, &snapshot.upstreams, request_id).await?;
                return Ok(true);
            }
            Admitted::StatusPage => {
                let detail = Some("the status page is not available to you");
                respond::plain_error(session, 403, detail, request_id).await?;
                return Ok(true);
            }
            Admitted::NotRouted => {
                let detail = Some("no route serves this request");
                respond::plain_error(session, 404, detail, request_id).await?;
                return Ok(true);
            }
            Admitted::Routed(index) => index,
        };
        let Some(route) = snapshot.routes.get(index) else {
            return Error::e_explain(ErrorType::InternalError, "a route that is not there");
        };
        ctx.route = Some(index);
        let mut upstream = match &route.action {
            Action::Upstream(upstream) => Some(Arc::clone(upstream)),
            Action::Split(split) => Some(Arc::clone(split.pick())),
            Action::Redirect { .. } | Action::Respond { .. } => None,
        };
        if let Some(path) = hook_path {
            let upstreams = &snapshot.upstreams;
            let answer =
                hook_phases::on_request(session, ctx, route, upstreams, &mut upstream, &path).await;
            if let Some(answer) = answer {
                respond::answer(session, &answer, ctx.request_id.as_ref()).await?;
                return Ok(true);
            }
        }
        let request_id = ctx.request_id.as_ref();
        let upstream = match (upstream, &route.action) {
            (Some(upstream), _) => upstream,
            (None, Action::Redirect { status, location }) => {
                respond::redirect(session, *status, location, request_id).await?;
                return Ok(true);
            }
            (None, Action::Respond { status, body }) => {
                respond::body(session, *status, body.clone(), request_id).await?;
                return Ok(true);
            }
            (None, _) => {
                return Error::e_explain(ErrorType::InternalError, "a route without an upstream")
            }
        };
        let no_peer = !upstream.has_untried_peer(TriedPeers::NONE);
        ctx.set_upstream(Arc::clone(&upstream));
        if no_peer {
            // Answered here, the client keeps its connection.
            let request_id = ctx.request_id.as_ref();
            respond::plain_error(session, 503, Some("no peer is up"), request_id).await?;
            return Ok(true);
        }
        ctx.upgrade = is_websocket_upgrade(session.req_header());
        // Keep the start of the body so a failed attempt can be replayed on
        // another peer.
        session.enable_retry_buffering();
        // Without a body, the request was complete when it arrived.
        let mut body_complete = (framing == Framing::Empty).then_some(ctx.started);
        if let Framing::Length(length) = framing {
            if length <= snapshot.buffer_body_bytes && !ctx.upgrade {
                if expects_continue(session.req_header()) {
                    // The client waits for a go-ahead before it sends the
                    // body, which is read here: give it, as nginx does
                    // (without the connection close that Pingora attaches
                    // to an answer sent before the body is in).
                    let downstream = session.as_downstream_mut();
                    downstream.set_close_on_response_before_downstream_finish(false);
                    let sent = downstream.write_continue_response().await;
                    downstream.set_close_on_response_before_downstream_finish(true);
                    sent?;
                    ctx.continue_sent = true;
                }
                self.read_body_first(session).await?;
                body_complete = Some(Instant::now());
            }
        }
        if let Some(since) = body_complete {
            self.start_budget(session, ctx, since);
        }
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        _body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestContext,
    ) -> Result<()> {
        let max_body_bytes = ctx
            .snapshot
            .as_ref()
            .map_or(u64::MAX, |s| s.admission.max_body_bytes());
        if session.body_bytes_read() as u64 > max_body_bytes {
            let mut e = Error::explain(ErrorType::HTTPStatus(413), "request body too large");
            e.as_down();
            return Err(e);
        }
        if end_of_stream {
            self.start_budget(session, ctx, Instant::now());
        }
        Ok(())
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestContext,
    ) -> Result<Box<HttpPeer>> {
        let fresh = std::mem::take(&mut ctx.fresh_connection);
        if !fresh {
            // The previous attempt, if any, is over (a retry on a fresh
            // connection keeps its peer and its slot there).
            ctx.end_attempt();
        }
        let Some(upstream) = ctx.upstream.as_ref() else {
            return Error::e_explain(ErrorType::InternalError, "request was not routed");
        };
        let remaining = ctx.remaining(upstream.policy.request_timeout);
        if remaining.is_zero() {
            return Error::e_explain(ErrorType::HTTPStatus(504), "the request ran out of time");
        }
        let mut now = Instant::now();
        let peer = match (&ctx.peer, fresh) {
            // The same peer again, in the same slot of its requests in flight.
            (Some(peer), true) => Arc::clone(peer),
            _ => {
                let mut buffer = [0u8; 16];
                let client = ctx.origin.map(|o| o.client);
                let key = match &upstream.hash_key {
                    Some(key) => hash_key::of(key, session.req_header(), client, &mut buffer),
                    None => b"",
                };
                let picked = match look_for_peer(upstream, key, ctx.tried, Tick::at(now)) {
                    Acquire::Got(picked) => Some(picked),
                    Acquire::NoPeer => None,
                    Acquire::Full => {
                        let waited = wait_for_peer(upstream, key, ctx.tried, remaining).await?;
                        now = Instant::now();
                        waited
                    }
                };
                let Some((peer, in_flight)) = picked else {
                    let (code, why) = match (ctx.attempts, ctx.timed_out) {
                        (0, _) => (503, "no peer is up"),
                        (_, true) => (504, "every peer tried timed out"),
                        (_, false) => (502, "every peer tried failed"),
                    };
                    return Error::e_explain(ErrorType::HTTPStatus(code), why);
                };
                ctx.tried.add(peer.index);
                ctx.attempts += 1;
                ctx.in_flight = Some(in_flight);
                Arc::clone(peer)
            }
        };
        let mut http_peer = peer.http_peer();
        if fresh {
            http_peer.group_key = FRESH_CONNECTION_GROUP;
        }
        ctx.fresh_attempt = fresh;
        let options = &mut http_peer.options;
        if ctx.upgrade {
            // A tunnel idles in either direction; the budget still bounds
            // the wait for the 101.
            options.read_timeout = Some(upstream.policy.tunnel_timeout);
            options.write_timeout = Some(upstream.policy.tunnel_timeout);
        }
        // The budget bounds connecting; the client stream bounds the wait
        // for the response header (Pingora keeps one read timeout for the
        // whole exchange, so clamping it would cut long response bodies).
        if options.connection_timeout.is_none_or(|d| d > remaining) {
            options.connection_timeout = Some(remaining);
        }
        if let (Some(deadline), Some(stream)) = (ctx.deadline, client_stream(session)) {
            stream.set_budget(Some(tokio::time::Instant::from_std(deadline)));
        }
        ctx.response_started = false;
        ctx.peer = Some(peer);
        ctx.peer_chosen_at = Some(now);
        Ok(http_peer)
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestContext,
    ) -> Result<()> {
        if let (Some(origin), Some(snapshot)) = (&ctx.origin, &ctx.snapshot) {
            snapshot.forwarding.apply(upstream_request, origin)?;
        }
        if let Some(target) = &ctx.forward_target {
            upstream_request.set_raw_path(target)?;
        }
        if let Some(route) = ctx.route() {
            if let Some(stripped) = route.stripped(upstream_request.raw_path()) {
                upstream_request.set_raw_path(&stripped)?;
            }
            if !route.request_headers.is_empty() {
                route.request_headers.apply(upstream_request)?;
            }
            if !route.hooks.is_empty() {
                hook_phases::before_upstream(ctx, upstream_request).await;
            }
        }
        if let Some(id) = &ctx.request_id {
            upstream_request.insert_header(&X_REQUEST_ID, id.clone())?;
        }
        if let Some(host) = &ctx.forward_host {
            upstream_request.insert_header(header::HOST, host.clone())?;
        } else if !upstream_request.headers.contains_key(header::HOST) {
            // An HTTP/1.0 request may come without Host; HTTP/1.1 to the
            // peer needs one: the peer's address.
            if let Some(member) = &ctx.peer {
                upstream_request.insert_header(header::HOST, member.peer.label.as_str())?;
            }
        }
        if ctx.continue_sent {
            // The body is at hand: the peer has nothing to agree to.
            upstream_request.remove_header(&header::EXPECT);
        }
        if ctx.fresh_attempt {
            // Keep the retry's connection out of the pool.
            upstream_request.insert_header(header::CONNECTION, "close")?;
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestContext,
    ) -> Result<()> {
        let status = upstream_response.status;
        if is_interim(status) {
            return Ok(());
        }
        ctx.response_started = true;
        let (Some(upstream), Some(member)) = (&ctx.upstream, &ctx.peer) else {
            return Ok(());
        };
        if status == http::StatusCode::SWITCHING_PROTOCOLS {
            // A tunnel now: it idles by timeouts.tunnel, both ways.
            session.set_read_timeout(Some(upstream.policy.tunnel_timeout));
            if let Some(stream) = client_stream(session) {
                stream.open_tunnel();
            }
        }
        let peer = &member.peer;
        if let Some(chosen) = ctx.peer_chosen_at.take() {
            let now = Instant::now();
            let waited = now.saturating_duration_since(chosen);
            peer.metrics.observe_upstream_response(waited.as_secs_f64());
            member.record_latency(waited, Tick::at(now));
            ctx.upstream_header = Some(waited);
        }
        if upstream.policy.fails_on_status(status.as_u16()) {
            peer.record_request_failure(upstream.policy.max_fails, status.as_str());
        } else {
            peer.health.record_request_success();
        }
        let retry = upstream.policy.retries_status(status.as_u16())
            && session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated()
            && ctx.may_try_again()
            && upstream.has_peer_for_retry(ctx.tried);
        if retry && ctx.within_retry_budget() {
            // This answer is dropped; error_while_proxy sends the request on
            // to another peer.
            ctx.retrying_status = true;
            return Error::e_explain(
                ErrorType::HTTPStatus(status.as_u16()),
                "retrying on another peer",
            );
        }
        // The answer is here: the time budget no longer applies.
        if let Some(stream) = client_stream(session) {
            stream.set_budget(None);
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestContext,
    ) -> Result<()> {
        // An interim response (`100 Continue`, `103 Early Hints`) is not the
        // answer: the edits and hooks are for the final one.
        if is_interim(response.status) {
            return Ok(());
        }
        if let Some(id) = &ctx.request_id {
            response.insert_header(&X_REQUEST_ID, id.clone())?;
        }
        if let Some(route) = ctx.route() {
            if !route.response_headers.is_empty() {
                route.response_headers.apply(response)?;
            }
            if !route.hooks.is_empty() {
                hook_phases::on_response(ctx, response).await;
            }
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
        if is_exhausted(&e) {
            log::warn!("cannot connect to a peer: this host is out of resources: {e}");
            e.set_retry(false);
            return e;
        }
        ctx.peer_failed(&e);
        // Nothing of the request was sent: any method may go elsewhere.
        e.set_retry(ctx.may_try_again() && ctx.within_retry_budget());
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
        let mut e = e.more_context(format!("Peer: {peer}"));
        if std::mem::take(&mut ctx.retrying_status) {
            e.set_retry(true);
            return e;
        }
        if !ctx.response_started && ctx.out_of_time() {
            // The client stream's budget ended the wait: the peer was too
            // slow to answer.
            ctx.timed_out = true;
            ctx.count_against_peer(UpstreamErrorKind::ReadTimeout);
            let mut timeout = Error::explain(
                ErrorType::HTTPStatus(504),
                "the request ran out of time (timeouts.request)",
            );
            timeout.set_retry(false);
            return timeout;
        }
        if !session.is_body_done() {
            e.set_retry(false);
            // The client's body is incomplete. A stalled client, or a peer
            // that waited for the rest of the body and gave up on reading
            // it, is the client's doing: 408, and nothing counts against
            // the peer. A peer that stopped taking the body or broke the
            // connection is not.
            let clients_doing =
                e.esource() != &ErrorSource::Upstream || e.etype() == &ErrorType::ReadTimedout;
            if clients_doing {
                return if is_timeout(&e) { body_too_slow() } else { e };
            }
            ctx.peer_failed(&e);
            return e;
        }
        if e.esource() != &ErrorSource::Upstream || is_exhausted(&e) {
            // The client went away or sent something bad, or this host is
            // out of resources: not the peer's fault.
            e.set_retry(false);
            return e;
        }
        let method_may_repeat = session.req_header().method.is_idempotent();
        let body_kept = !session.as_ref().retry_buffer_truncated();
        if client_reused && !ctx.response_started && is_broken_connection(&e) {
            // A pooled connection that the peer had closed while it was
            // idle: not the peer's failure. Once more, on a new connection,
            // when the request may be sent again.
            let may_resend = body_kept && (method_may_repeat || failure::failed_while_sending(&e));
            if may_resend && !ctx.fresh_connection_used {
                log::debug!("retrying on a new connection after a reused one broke: {e}");
                ctx.fresh_connection = true;
                ctx.fresh_connection_used = true;
                e.set_retry(true);
                return e;
            }
            e.set_retry(
                method_may_repeat && body_kept && ctx.may_try_again() && ctx.within_retry_budget(),
            );
            return e;
        }
        ctx.peer_failed(&e);
        // Once the peer answered, for a method that must not run twice, or
        // with a body too long to replay, the failure is final.
        let retry = !ctx.response_started
            && method_may_repeat
            && body_kept
            && ctx.may_try_again()
            && ctx.within_retry_budget();
        e.set_retry(retry);
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestContext,
    ) -> FailToProxy {
        let code = failure::status_of(e);
        if code == 0 {
            log::debug!("client gone: {e}");
        } else if e.esource() == &ErrorSource::Downstream {
            log::info!(
                "refused {} from {}: {code} {e}",
                loggable(session.req_header().raw_path()),
                ctx.origin
                    .map_or_else(|| "?".to_string(), |o| o.client.to_string()),
            );
        }
        if code > 0 {
            // Pingora closes the connection after a failure to proxy: the
            // answer says so, or a keep-alive client would send its next
            // request into the closing connection (and see it reset).
            session.set_keepalive(None);
            let detail = failure::detail_of(e);
            let request_id = ctx.request_id.as_ref();
            let sent = respond::plain_error(session, code, detail.as_deref(), request_id).await;
            if let Err(write_error) = sent {
                log::debug!("could not send the {code} response: {write_error}");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// Clients that go away or send what cannot be served are their own
    /// business, logged (at info, as refusals) by `fail_to_proxy`: not an
    /// ERROR line each.
    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestContext, error: &Error) -> bool {
        error.esource() == &ErrorSource::Downstream
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestContext) {
        if let Some(stream) = client_stream(session) {
            stream.request_finished();
        }
        self.log_request(session, ctx);
        if let Some(upstream) = ctx.upstream.as_ref() {
            let peer = ctx.peer.as_deref();
            if let Some(member) = peer {
                member.peer.count_served();
            }
            // Requests with an upstream were routed there.
            if let Some(route) = ctx.route() {
                let seconds = ctx.started.elapsed().as_secs_f64();
                route
                    .metrics
                    .record(upstream, peer, status_sent(session), seconds);
            }
        }
        // Last: a hook's code is not switchyard's, and whatever it does,
        // the request has been counted and logged.
        if let Some(route) = ctx.route() {
            if !route.hooks.is_empty() {
                hook_phases::on_log(session, ctx, route);
            }
        }
    }
}
