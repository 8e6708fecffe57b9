//! The admin API: JSON over HTTP on its own listener (`admin.listen`),
//! served by Pingora's HTTP server app.
//!
//! | request | what it does |
//! |---|---|
//! | `GET /upstreams` | every upstream and peer: weights, state, admin state, in-flight requests, health record |
//! | `GET /upstreams/{upstream}` | one upstream |
//! | `POST /upstreams/{upstream}/peers/{address}/drain` | no new requests; in-flight ones finish; probes go on |
//! | `POST /upstreams/{upstream}/peers/{address}/disable` | out of rotation whatever the probes say |
//! | `POST /upstreams/{upstream}/peers/{address}/enable` | back in rotation |
//! | `PUT /upstreams/{upstream}/peers/{address}/weight` | `{"weight": N}` (1 to 1000), from the next request |
//! | `POST /reload` | what SIGHUP does, answering with the outcome |
//! | `GET /routes` | the routes, in the order they are tried, with their names |
//! | `GET /config` | the running configuration, defaults filled in, as YAML |
//!
//! Changes go through [`Live`], which builds the next snapshot and saves
//! them in the state file; each is logged with the client's address.
//! Errors are JSON (`{"error": "..."}`): 400 for a bad body, 401 without the
//! token, 404 for an unknown upstream, peer or path, 405 for a wrong method,
//! 409 for a reload that needs a restart.

use super::auth::Access;
use super::status::json;
use crate::config::Weight;
use crate::live::changes::{Changes, ReloadError};
use crate::live::{Live, NotFound};
use crate::peer::admin::AdminState;
use async_trait::async_trait;
use http::{header, Method, Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

/// Request bodies larger than this are refused (the largest valid one,
/// `{"weight": 1000}`, is a few bytes).
const MAX_BODY_BYTES: usize = 4096;

/// What `POST /reload` does. The process layer, which knows the file the
/// process was started with, provides it.
#[async_trait]
pub trait Reload: Send + Sync {
    /// Re-read the configuration file and apply it, or change nothing.
    async fn reload(&self) -> Result<Changes, ReloadError>;
}

#[async_trait]
impl<T: Reload + ?Sized> Reload for Arc<T> {
    async fn reload(&self) -> Result<Changes, ReloadError> {
        (**self).reload().await
    }
}

/// The admin API of a running balancer.
pub struct AdminApi {
    live: Arc<Live>,
    access: Access,
    reload: Box<dyn Reload>,
}

/// A response: status and JSON (or YAML) body.
struct Answer {
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
    /// `Allow` for a 405.
    allow: Option<&'static str>,
}

impl Answer {
    fn json(status: StatusCode, value: &impl serde::Serialize) -> Answer {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_else(|e| {
            format!("{{\"error\":\"cannot render the answer: {e}\"}}").into_bytes()
        });
        body.push(b'\n');
        Answer {
            status,
            content_type: "application/json",
            body,
            allow: None,
        }
    }

    fn error(status: StatusCode, message: impl std::fmt::Display) -> Answer {
        Answer::json(status, &json!({ "error": message.to_string() }))
    }
}

impl From<NotFound> for Answer {
    fn from(not_found: NotFound) -> Answer {
        Answer::error(StatusCode::NOT_FOUND, not_found)
    }
}

/// The admin API's requests, once the path is understood.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Upstreams,
    Upstream(String),
    SetAdminState(String, SocketAddr, AdminState),
    SetWeight(String, SocketAddr),
    Reload,
    Routes,
    Config,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WeightBody {
    weight: u16,
}

impl AdminApi {
    /// The API over `live`, letting in what `access` allows; `reload` is
    /// what `POST /reload` runs.
    pub fn new(live: Arc<Live>, access: Access, reload: Box<dyn Reload>) -> Self {
        AdminApi {
            live,
            access,
            reload,
        }
    }

    async fn answer(&self, session: &mut ServerSession) -> Answer {
        let authorization = session
            .req_header()
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        if !self.access.allows(authorization) {
            return Answer::error(
                StatusCode::UNAUTHORIZED,
                "this admin API needs `Authorization: Bearer <token>` with the right token",
            );
        }
        let method = session.req_header().method.clone();
        let route = match route(session.req_header().uri.path()) {
            Ok(route) => route,
            Err(answer) => return answer,
        };
        let allowed = match route {
            Route::Upstreams | Route::Upstream(_) | Route::Routes | Route::Config => "GET, HEAD",
            Route::SetAdminState(..) | Route::Reload => "POST",
            Route::SetWeight(..) => "PUT",
        };
        let method_ok = allowed.split(", ").any(|m| m == method.as_str());
        if !method_ok {
            return Answer {
                allow: Some(allowed),
                ..Answer::error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("{method} is not allowed here; use {allowed}"),
                )
            };
        }
        let client = session
            .client_addr()
            .map_or_else(|| "unknown client".to_string(), |a| a.to_string());
        match route {
            Route::Upstreams => {
                let snapshot = self.live.current();
                Answer::json(StatusCode::OK, &json::Page::of(&snapshot.upstreams))
            }
            Route::Upstream(name) => {
                let snapshot = self.live.current();
                match snapshot.upstream(&name) {
                    Some(upstream) => {
                        Answer::json(StatusCode::OK, &json::UpstreamView::of(upstream))
                    }
                    None => NotFound::Upstream(name).into(),
                }
            }
            Route::SetAdminState(upstream, addr, state) => {
                self.set_admin_state(&client, &upstream, addr, state)
            }
            Route::SetWeight(upstream, addr) => {
                let body = match read_body(session).await {
                    Ok(body) => body,
                    Err(answer) => return answer,
                };
                self.set_weight(&client, &upstream, addr, &body)
            }
            Route::Reload => self.reload(&client).await,
            Route::Routes => {
                let snapshot = self.live.current();
                let routes: Vec<serde_json::Value> = snapshot
                    .routes
                    .iter()
                    .map(|route| {
                        let mut shown = serde_json::to_value(&route.config).unwrap_or_default();
                        shown["name"] = json!(&*route.name);
                        shown
                    })
                    .collect();
                Answer::json(StatusCode::OK, &json!({ "routes": routes }))
            }
            Route::Config => {
                let snapshot = self.live.current();
                match serde_yaml::to_string(&snapshot.config) {
                    Ok(yaml) => Answer {
                        status: StatusCode::OK,
                        content_type: "application/yaml",
                        body: yaml.into_bytes(),
                        allow: None,
                    },
                    Err(e) => Answer::error(StatusCode::INTERNAL_SERVER_ERROR, e),
                }
            }
        }
    }

    fn set_admin_state(
        &self,
        client: &str,
        upstream: &str,
        addr: SocketAddr,
        state: AdminState,
    ) -> Answer {
        match self.live.set_admin_state(upstream, addr, state) {
            Ok(before) => {
                log::info!(
                    "admin {client}: upstream {upstream}: peer {addr} is {} (was {})",
                    state.as_str(),
                    before.as_str()
                );
                self.peer_answer(upstream, addr)
            }
            Err(e) => e.into(),
        }
    }

    fn set_weight(&self, client: &str, upstream: &str, addr: SocketAddr, body: &[u8]) -> Answer {
        let weight = match serde_json::from_slice::<WeightBody>(body) {
            Ok(WeightBody { weight }) if (1..=Weight::MAX).contains(&weight) => weight,
            Ok(WeightBody { weight }) => {
                return Answer::error(
                    StatusCode::BAD_REQUEST,
                    format!("weight {weight} is out of range: 1 to {}", Weight::MAX),
                )
            }
            Err(e) => {
                return Answer::error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "expected {{\"weight\": N}} with N from 1 to {}: {e}",
                        Weight::MAX
                    ),
                )
            }
        };
        match self.live.set_weight(upstream, addr, weight) {
            Ok(before) => {
                log::info!(
                    "admin {client}: upstream {upstream}: peer {addr} has weight {weight} (was {before})"
                );
                self.peer_answer(upstream, addr)
            }
            Err(e) => e.into(),
        }
    }

    async fn reload(&self, client: &str) -> Answer {
        log::info!("admin {client}: reload");
        match self.reload.reload().await {
            Ok(changes) => Answer::json(
                StatusCode::OK,
                &json!({
                    "reloaded": changes.to_string(),
                    "added": changes.added,
                    "removed": changes.removed,
                    "changed": changes.changed,
                }),
            ),
            Err(e @ ReloadError::Invalid(_)) => Answer::error(StatusCode::BAD_REQUEST, e),
            Err(e @ ReloadError::NeedsRestart(_)) => Answer::error(StatusCode::CONFLICT, e),
        }
    }

    /// The peer as `GET /upstreams` shows it, after a change.
    fn peer_answer(&self, upstream: &str, addr: SocketAddr) -> Answer {
        let snapshot = self.live.current();
        match snapshot.member(upstream, addr) {
            Ok(member) => Answer::json(StatusCode::OK, &super::status::PeerView::of(member)),
            Err(e) => e.into(),
        }
    }
}

#[async_trait]
impl ServeHttp for AdminApi {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let answer = self.answer(session).await;
        let mut response = Response::builder()
            .status(answer.status)
            .header(header::CONTENT_TYPE, answer.content_type)
            .header(header::CONTENT_LENGTH, answer.body.len())
            .header(header::CACHE_CONTROL, "no-store");
        if answer.status == StatusCode::UNAUTHORIZED {
            response = response.header(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"switchyard admin\"",
            );
        }
        if let Some(allow) = answer.allow {
            response = response.header(header::ALLOW, allow);
        }
        let head = session.req_header().method == Method::HEAD;
        let body = if head { Vec::new() } else { answer.body };
        response.body(body).unwrap_or_else(|e| {
            log::error!("admin API: cannot build a response: {e}");
            Response::new(Vec::new())
        })
    }
}

/// The route of `path`, or the 404 to answer.
fn route(path: &str) -> Result<Route, Answer> {
    let not_found = || Answer::error(StatusCode::NOT_FOUND, format!("no such admin path: {path}"));
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let peer = |upstream: &str, address: &str| -> Result<SocketAddr, Answer> {
        address.parse().map_err(|_| {
            Answer::error(
                StatusCode::NOT_FOUND,
                NotFound::Peer(upstream.to_string(), address.to_string()),
            )
        })
    };
    match segments.as_slice() {
        ["upstreams"] => Ok(Route::Upstreams),
        ["upstreams", upstream] => Ok(Route::Upstream(upstream.to_string())),
        ["upstreams", upstream, "peers", address, action] => {
            let addr = peer(upstream, address)?;
            let upstream = upstream.to_string();
            match *action {
                "drain" => Ok(Route::SetAdminState(upstream, addr, AdminState::Draining)),
                "disable" => Ok(Route::SetAdminState(upstream, addr, AdminState::Disabled)),
                "enable" => Ok(Route::SetAdminState(upstream, addr, AdminState::Active)),
                "weight" => Ok(Route::SetWeight(upstream, addr)),
                _ => Err(not_found()),
            }
        }
        ["reload"] => Ok(Route::Reload),
        ["routes"] => Ok(Route::Routes),
        ["config"] => Ok(Route::Config),
        _ => Err(not_found()),
    }
}

/// The request body, up to [`MAX_BODY_BYTES`].
async fn read_body(session: &mut ServerSession) -> Result<Vec<u8>, Answer> {
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(Answer::error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("the body is larger than {MAX_BODY_BYTES} bytes"),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(Answer::error(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {e}"),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_routed() {
        let addr: SocketAddr = "127.0.0.1:8001".parse().unwrap();
        let v6: SocketAddr = "[::1]:8001".parse().unwrap();
        let b = || "backend".to_string();
        assert_eq!(route("/upstreams").ok(), Some(Route::Upstreams));
        assert_eq!(route("/upstreams/").ok(), Some(Route::Upstreams));
        assert_eq!(route("/upstreams/backend").ok(), Some(Route::Upstream(b())));
        assert_eq!(
            route("/upstreams/backend/peers/127.0.0.1:8001/drain").ok(),
            Some(Route::SetAdminState(b(), addr, AdminState::Draining))
        );
        assert_eq!(
            route("/upstreams/backend/peers/%5B::1%5D:8001/enable").ok(),
            Some(Route::SetAdminState(b(), v6, AdminState::Active))
        );
        assert_eq!(
            route("/upstreams/backend/peers/[::1]:8001/weight").ok(),
            Some(Route::SetWeight(b(), v6))
        );
        assert_eq!(route("/reload").ok(), Some(Route::Reload));
        assert_eq!(route("/config").ok(), Some(Route::Config));
        for missing in [
            "/",
            "/upstream",
            "/upstreams/backend/peers",
            "/upstreams/backend/peers/127.0.0.1:8001/explode",
            "/upstreams/backend/peers/nothing/drain",
        ] {
            let answer = route(missing).expect_err(missing);
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{missing}");
        }
    }
}
