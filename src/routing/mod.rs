//! Which route serves a request: the first of the configuration's routes
//! whose `match` holds (in the order written, like HAProxy's `use_backend`
//! rules and Envoy's routes), and what it does with it: send it to an
//! upstream, split it among several, redirect it or answer it.
//!
//! Routes are compiled with the snapshot ([`RouteTable::new`]); matching
//! compares bytes and runs compiled regular expressions, and allocates
//! nothing. Each route counts its requests in metric series of its own
//! ([`request_metrics`]).

pub mod matcher;
pub mod request_metrics;
pub mod rewrite;

use crate::config::{ActionConfig, RouteConfig};
use crate::hooks::{Hook, HookSet};
use crate::upstream::{Carryover, Upstream};
use bytes::Bytes;
use http::HeaderValue;
use matcher::{Matcher, RequestView};
use request_metrics::RouteMetrics;
use rewrite::HeaderRewrite;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The routes of one configuration, in order.
pub struct RouteTable {
    routes: Vec<Route>,
    /// Whether any route matches on the host (else requests need not say).
    needs_host: bool,
}

/// One compiled route.
pub struct Route {
    /// As configured, or `route-N` (shared with the access log's lines).
    pub name: Arc<str>,
    /// As configured (for the admin API).
    pub config: RouteConfig,
    matcher: Matcher,
    pub action: Action,
    /// Taken off the start of the path the peer sees.
    pub strip_prefix: Option<Box<[u8]>>,
    pub request_headers: HeaderRewrite,
    pub response_headers: HeaderRewrite,
    /// The hook instances that see its requests, in order.
    pub hooks: Vec<Arc<dyn Hook>>,
    /// Where its requests are counted.
    pub metrics: RouteMetrics,
}

/// What a route does with a request.
pub enum Action {
    /// Send it to this upstream.
    Upstream(Arc<Upstream>),
    /// Send it to one of these.
    Split(Split),
    /// Answer `status` with this `Location`.
    Redirect { status: u16, location: HeaderValue },
    /// Answer `status` with this body.
    Respond { status: u16, body: Bytes },
}

/// Upstreams in proportion to their weights. Request n goes where the
/// golden-ratio sequence's n-th point falls, so that any run of requests
/// is split within a request or two of the weights, with no lock.
pub struct Split {
    /// Each upstream with the end of its share of `total`.
    targets: Vec<(Arc<Upstream>, u64)>,
    total: u64,
    next: AtomicU64,
}

impl Split {
    /// The upstream for the next request.
    pub fn pick(&self) -> &Arc<Upstream> {
        const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let point = ((u128::from(n.wrapping_mul(GOLDEN)) * u128::from(self.total)) >> 64) as u64;
        let index = self
            .targets
            .iter()
            .position(|(_, end)| point < *end)
            .unwrap_or(self.targets.len() - 1);
        &self.targets[index].0
    }
}

impl Action {
    /// Whether this action may send a request to `upstream`.
    fn sends_to(&self, upstream: &Upstream) -> bool {
        match self {
            Action::Upstream(target) => target.index == upstream.index,
            Action::Split(split) => split.targets.iter().any(|(t, _)| t.index == upstream.index),
            Action::Redirect { .. } | Action::Respond { .. } => false,
        }
    }
}

impl RouteTable {
    /// The routes of `routes` over `upstreams` and `hooks` (which they were
    /// checked against when the file was read; one that names what is not
    /// there is an error, never a route left out), with their metric
    /// handles from `carryover`.
    pub fn new(
        routes: &[RouteConfig],
        upstreams: &[Arc<Upstream>],
        hooks: &HookSet,
        carryover: &mut dyn Carryover,
    ) -> Result<Self, String> {
        let find = |name: &str| {
            upstreams
                .iter()
                .find(|u| u.name == name)
                .cloned()
                .ok_or_else(|| format!("a route names the upstream `{name}`, which is not there"))
        };
        let routes = routes
            .iter()
            .enumerate()
            .map(|(index, config)| {
                let action = match &config.action {
                    ActionConfig::Upstream(name) => Action::Upstream(find(name)?),
                    ActionConfig::Split(targets) => {
                        let mut total = 0;
                        let mut shares = Vec::with_capacity(targets.len());
                        for target in targets.iter().filter(|t| t.weight.0 > 0) {
                            total += u64::from(target.weight.0);
                            shares.push((find(&target.upstream)?, total));
                        }
                        Action::Split(Split {
                            targets: shares,
                            total,
                            next: AtomicU64::new(0),
                        })
                    }
                    ActionConfig::Redirect(redirect) => Action::Redirect {
                        status: redirect.status.0,
                        location: redirect.to.0.clone(),
                    },
                    ActionConfig::Respond(respond) => Action::Respond {
                        status: respond.status.0,
                        body: Bytes::from(respond.body.clone()),
                    },
                };
                // A route whose hook is missing is no route at all: without
                // it, its requests would go on unchecked.
                let hooks = config
                    .hooks
                    .iter()
                    .map(|name| {
                        hooks.get(name).cloned().ok_or_else(|| {
                            format!("a route names the hook `{name}`, which is not there")
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                let name: Arc<str> = config.effective_name(index).into();
                // A hook may send a request to any upstream
                // (`Request::send_to`).
                let sends_to = |upstream: &Upstream| !hooks.is_empty() || action.sends_to(upstream);
                let metrics = RouteMetrics::new(&name, upstreams, sends_to, carryover);
                Ok(Route {
                    hooks,
                    name,
                    metrics,
                    config: config.clone(),
                    matcher: Matcher::new(&config.matches),
                    action,
                    strip_prefix: config.strip_prefix.as_ref().map(|p| p.0.as_bytes().into()),
                    request_headers: HeaderRewrite::new(&config.request_headers),
                    response_headers: HeaderRewrite::new(&config.response_headers),
                })
            })
            .collect::<Result<Vec<Route>, String>>()?;
        let needs_host = routes.iter().any(|r| r.config.matches.host.is_some());
        Ok(RouteTable { routes, needs_host })
    }

    /// Whether any route looks at the request's host.
    #[inline]
    pub fn needs_host(&self) -> bool {
        self.needs_host
    }

    /// The first route that takes `request`, and its index.
    #[inline]
    pub fn route(&self, request: &RequestView<'_>) -> Option<(usize, &Route)> {
        self.routes
            .iter()
            .enumerate()
            .find(|(_, route)| route.matcher.matches(request))
    }

    /// The route at `index`.
    pub fn get(&self, index: usize) -> Option<&Route> {
        self.routes.get(index)
    }

    /// Every route, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }
}

impl Route {
    /// The target (path and query) the peer sees for `target`: without
    /// `strip_prefix` when it starts with it (`/v2/a?b` -> `/a?b`, `/v2`
    /// -> `/`; ignoring case when the route's match does); `None` when
    /// there is nothing to strip.
    pub fn stripped(&self, target: &[u8]) -> Option<Vec<u8>> {
        let prefix = self.strip_prefix.as_deref()?;
        let head = target.get(..prefix.len())?;
        let same = if self.config.matches.case_sensitive {
            head == prefix
        } else {
            head.eq_ignore_ascii_case(prefix)
        };
        if !same {
            return None;
        }
        let rest = &target[prefix.len()..];
        let mut stripped = Vec::with_capacity(rest.len() + 1);
        if !rest.starts_with(b"/") {
            stripped.push(b'/');
        }
        stripped.extend_from_slice(rest);
        Some(stripped)
    }
}
