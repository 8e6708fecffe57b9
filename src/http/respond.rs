//! switchyard's own answers: short plain-text errors, the status page, and
//! the answers of routes (`redirect`, `respond`).
//!
//! They are complete responses with a `Content-Length`, so the client's
//! connection stays open after a 403, 404 or 503, as after any answer from a
//! peer (Pingora's own error responses close it, and name Pingora in a
//! `Server` header, which switchyard's do not). After a refusal that leaves
//! the request's framing or size in doubt (400, 408, 413, 414, 431) the
//! connection is closed, as nginx does.

use crate::admin::status;
use crate::hooks::Answer;
use crate::request::request_id::X_REQUEST_ID;
use crate::upstream::Upstream;
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue};
use pingora_error::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use std::sync::Arc;

/// Statuses after which the client connection is closed.
fn closes_connection(code: u16) -> bool {
    matches!(code, 400 | 408 | 413 | 414 | 431)
}

/// `503 Service Unavailable: <detail>` as plain text, unless a response
/// has already been sent.
pub async fn plain_error(
    session: &mut Session,
    code: u16,
    detail: Option<&str>,
    request_id: Option<&HeaderValue>,
) -> Result<()> {
    // After a `100 Continue` the answer is still to come.
    if session
        .response_written()
        .is_some_and(|r| !r.status.is_informational())
    {
        return Ok(());
    }
    let reason = http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let text = match detail {
        Some(detail) => format!("{code} {reason}: {detail}\n"),
        None => format!("{code} {reason}\n"),
    };
    if closes_connection(code) {
        session.set_keepalive(None);
    }
    write(
        session,
        code,
        "text/plain; charset=utf-8",
        Bytes::from(text),
        request_id,
    )
    .await
}

/// A redirect (`status`) to `location`, with a short text body.
pub async fn redirect(
    session: &mut Session,
    status: u16,
    location: &HeaderValue,
    request_id: Option<&HeaderValue>,
) -> Result<()> {
    let text = format!(
        "{status} redirect: {}\n",
        String::from_utf8_lossy(location.as_bytes())
    );
    let location = [(header::LOCATION, location.clone())];
    write_with(
        session,
        status,
        "text/plain; charset=utf-8",
        Bytes::from(text),
        &location,
        request_id,
    )
    .await
}

/// What a hook answered.
pub async fn answer(
    session: &mut Session,
    answer: &Answer,
    request_id: Option<&HeaderValue>,
) -> Result<()> {
    if answer.status.is_informational() {
        log::error!(
            "a hook answered {}, which is no final answer: 500 instead",
            answer.status
        );
        return plain_error(session, 500, None, request_id).await;
    }
    let code = answer.status.as_u16();
    if closes_connection(code) {
        session.set_keepalive(None);
    }
    let body = if matches!(code, 204 | 304) {
        Bytes::new()
    } else {
        answer.body.clone()
    };
    let plain = "text/plain; charset=utf-8";
    write_with(session, code, plain, body, &answer.headers, request_id).await
}

/// `status` with `body` as plain text (a route's `respond:`).
pub async fn body(
    session: &mut Session,
    status: u16,
    body: Bytes,
    request_id: Option<&HeaderValue>,
) -> Result<()> {
    write(
        session,
        status,
        "text/plain; charset=utf-8",
        body,
        request_id,
    )
    .await
}

/// The status page of `upstreams`, in the format the request asks for.
pub async fn status_page(
    session: &mut Session,
    upstreams: &[Arc<Upstream>],
    request_id: Option<&HeaderValue>,
) -> Result<()> {
    let request = session.req_header();
    let format = status::Format::negotiate(
        request.uri.query(),
        request.headers.get(header::ACCEPT).map(|v| v.as_bytes()),
    );
    let body = status::render(upstreams, format);
    write(
        session,
        200,
        format.content_type(),
        Bytes::from(body),
        request_id,
    )
    .await
}

/// A complete response: header, `Content-Length` and body (none for HEAD).
async fn write(
    session: &mut Session,
    code: u16,
    content_type: &str,
    body: Bytes,
    request_id: Option<&HeaderValue>,
) -> Result<()> {
    write_with(session, code, content_type, body, &[], request_id).await
}

/// [`write`], with more headers (a `Content-Type` among them replaces
/// `content_type`).
async fn write_with(
    session: &mut Session,
    code: u16,
    content_type: &str,
    body: Bytes,
    extra: &[(HeaderName, HeaderValue)],
    request_id: Option<&HeaderValue>,
) -> Result<()> {
    let mut response = ResponseHeader::build(code, Some(5 + extra.len()))?;
    response.insert_header(header::CONTENT_TYPE, content_type)?;
    for (name, value) in extra {
        if name == header::CONTENT_TYPE {
            response.insert_header(name.clone(), value.clone())?;
        } else {
            response.append_header(name.clone(), value.clone())?;
        }
    }
    if let Some(id) = request_id {
        response.insert_header(&X_REQUEST_ID, id.clone())?;
    }
    // A 204 has no body, and says nothing of its length.
    if code != 204 {
        response.insert_header(header::CONTENT_LENGTH, body.len())?;
    }
    response.insert_header(header::CACHE_CONTROL, "no-store")?;
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(response), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}
