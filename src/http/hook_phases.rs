//! Running a route's hooks in each phase: the views they get are built
//! here, from the session and the request's context, so that no hook ever
//! sees Pingora's types. A route without hooks never comes here.

use super::context::RequestContext;
use crate::hooks::{Answer, Request, Response, Summary, UpstreamRequest, Verdict};
use crate::routing::Route;
use crate::upstream::Upstream;
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;
use std::sync::Arc;

/// `on_request` of each hook of `route`, in order, until one answers
/// (returned). `upstream` is where the request goes, which hooks may
/// change; `path` is its canonical path.
pub(super) async fn on_request(
    session: &mut Session,
    ctx: &RequestContext,
    route: &Route,
    upstreams: &[Arc<Upstream>],
    upstream: &mut Option<Arc<Upstream>>,
    path: &str,
) -> Option<Answer> {
    let mut request = Request {
        header: session.req_header_mut(),
        path,
        client: ctx.origin.map(|o| o.client),
        route: &route.name,
        upstream: upstream.take(),
        upstreams,
    };
    let mut answer = None;
    for hook in &route.hooks {
        if let Verdict::Answer(given) = hook.on_request(&mut request).await {
            answer = Some(given);
            break;
        }
    }
    *upstream = request.upstream;
    answer
}

/// `before_upstream` of each hook of the request's route.
pub(super) async fn before_upstream(ctx: &RequestContext, header: &mut RequestHeader) {
    let (Some(route), Some(upstream), Some(member)) = (ctx.route(), &ctx.upstream, &ctx.peer)
    else {
        return;
    };
    let mut request = UpstreamRequest {
        header,
        client: ctx.origin.map(|o| o.client),
        route: &route.name,
        upstream: &upstream.name,
        peer: member.peer.addr,
    };
    for hook in &route.hooks {
        hook.before_upstream(&mut request).await;
    }
}

/// `on_response` of each hook of the request's route.
pub(super) async fn on_response(ctx: &RequestContext, header: &mut ResponseHeader) {
    let Some(route) = ctx.route() else {
        return;
    };
    let mut response = Response {
        header,
        client: ctx.origin.map(|o| o.client),
        route: &route.name,
        upstream: ctx.upstream.as_deref().map(|u| u.name.as_str()),
        peer: ctx.peer.as_ref().map(|m| m.peer.addr),
    };
    for hook in &route.hooks {
        hook.on_response(&mut response).await;
    }
}

/// `on_log` of each hook of the request's route.
pub(super) fn on_log(session: &Session, ctx: &RequestContext, route: &Route) {
    let request = session.req_header();
    let summary = Summary {
        method: &request.method,
        target: std::str::from_utf8(request.raw_path()).unwrap_or("/"),
        client: ctx.origin.map(|o| o.client),
        status: session
            .response_written()
            .map(|r| r.status)
            .filter(|s| !s.is_informational()),
        route: &route.name,
        upstream: ctx.upstream.as_deref().map(|u| u.name.as_str()),
        peer: ctx.peer.as_ref().map(|m| m.peer.addr),
        attempts: ctx.attempts,
        duration: ctx.started.elapsed(),
        upstream_header_time: ctx.upstream_header,
    };
    for hook in &route.hooks {
        hook.on_log(&summary);
    }
}
