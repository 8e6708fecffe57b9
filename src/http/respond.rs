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
pub async fn plain_error(session: &mut Session, code: u16, detail: Option<&str>) -> Result<()> {
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
    )
    .await
}

/// A redirect (`status`) to `location`, with a short text body.
pub async fn redirect(session: &mut Session, status: u16, location: &HeaderValue) -> Result<()> {
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
    )
    .await
}

/// What a hook answered.
pub async fn answer(session: &mut Session, answer: &Answer) -> Result<()> {
    let code = answer.status.as_u16();
    if closes_connection(code) {
        session.set_keepalive(None);
    }
    let body = answer.body.clone();
    write_with(
        session,
        code,
        "text/plain; charset=utf-8",
        body,
        &answer.headers,
    )
    .await
}

/// `status` with `body` as plain text (a route's `respond:`).
pub async fn body(session: &mut Session, status: u16, body: Bytes) -> Result<()> {
    write(session, status, "text/plain; charset=utf-8", body).await
}

/// The status page of `upstreams`, in the format the request asks for.
pub async fn status_page(session: &mut Session, upstreams: &[Arc<Upstream>]) -> Result<()> {
    let request = session.req_header();
    let format = status::Format::negotiate(
        request.uri.query(),
        request.headers.get(header::ACCEPT).map(|v| v.as_bytes()),
    );
    let body = status::render(upstreams, format);
    write(session, 200, format.content_type(), Bytes::from(body)).await
}

/// A complete response: header, `Content-Length` and body (none for HEAD).
async fn write(session: &mut Session, code: u16, content_type: &str, body: Bytes) -> Result<()> {
    write_with(session, code, content_type, body, &[]).await
}

/// [`write`], with more headers (a `Content-Type` among them replaces
/// `content_type`).
async fn write_with(
    session: &mut Session,
    code: u16,
    content_type: &str,
    body: Bytes,
    extra: &[(HeaderName, HeaderValue)],
) -> Result<()> {
    let mut response = ResponseHeader::build(code, Some(4 + extra.len()))?;
    response.insert_header(header::CONTENT_TYPE, content_type)?;
    for (name, value) in extra {
        if name == header::CONTENT_TYPE {
            response.insert_header(name.clone(), value.clone())?;
        } else {
            response.append_header(name.clone(), value.clone())?;
        }
    }
    response.insert_header(header::CONTENT_LENGTH, body.len())?;
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
