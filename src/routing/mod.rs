//! Which upstream serves a request: the longest `path_prefix` that the
//! request path starts with, like nginx's prefix `location` blocks.

use crate::upstream::Upstream;
use std::sync::Arc;

pub struct Router {
    /// Longest prefix first, so the first match is the best one.
    routes: Vec<Arc<Upstream>>,
    /// Config order, for reports.
    upstreams: Vec<Arc<Upstream>>,
}

impl Router {
    pub fn new(upstreams: Vec<Arc<Upstream>>) -> Self {
        let mut routes = upstreams.clone();
        routes.sort_by_key(|u| std::cmp::Reverse(u.path_prefix.len()));
        Router { routes, upstreams }
    }

    /// The upstream for a request path (its canonical form), if any prefix
    /// matches.
    #[inline]
    pub fn route(&self, path: &[u8]) -> Option<&Arc<Upstream>> {
        self.routes
            .iter()
            .find(|u| path.starts_with(u.path_prefix.as_bytes()))
    }

    /// Every upstream, in config order.
    pub fn upstreams(&self) -> &[Arc<Upstream>] {
        &self.upstreams
    }
}
