//! The active health checks, scheduled over the live peer set.
//!
//! Pingora's health-check services are fixed when the server starts, one per
//! upstream with its interval; switchyard's upstreams, peers and probe
//! settings change while it runs. [`ProbeService`] keeps one schedule: each
//! upstream of the current snapshot gets a round (all its peers probed at
//! once, with Pingora's `HttpHealthCheck` through the upstream's
//! [`Prober`](crate::peer::probe::Prober)) `health_check.interval` after the
//! end of its last one. After a change every upstream is probed at once, so
//! that added peers (DOWN until their first probe passes) join quickly. The
//! service reports ready after the first round of every upstream: the proxy
//! listener opens only then, so a peer that is down at startup never gets a
//! request.

use super::Live;
use crate::upstream::Upstream;
use async_trait::async_trait;
use futures::future::join_all;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use pingora_core::services::ServiceReadyNotifier;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How often the schedule looks again when nothing is due sooner.
const IDLE_LOOK: Duration = Duration::from_secs(1);

/// Probes the peers of the live snapshot's upstreams.
pub struct ProbeService {
    live: Arc<Live>,
}

impl ProbeService {
    pub fn new(live: Arc<Live>) -> Self {
        ProbeService { live }
    }
}

/// Probe every peer of `upstream` once, all at the same time.
async fn round(upstream: Arc<Upstream>) -> String {
    join_all(upstream.peers.iter().map(|m| upstream.prober.probe(m))).await;
    upstream.name.clone()
}

#[async_trait]
impl BackgroundService for ProbeService {
    async fn start_with_ready_notifier(
        &self,
        mut shutdown: ShutdownWatch,
        ready: ServiceReadyNotifier,
    ) {
        // The first round of every upstream, then ready. (The snapshot is
        // not kept: a replaced one must be free to go.)
        let mut due: HashMap<String, Instant> = {
            let first = self.live.current();
            join_all(first.upstreams.iter().cloned().map(round)).await;
            first
                .upstreams
                .iter()
                .map(|u| (u.name.clone(), Instant::now() + u.prober.interval))
                .collect()
        };
        ready.notify_ready();
        let mut running: HashSet<String> = HashSet::new();
        let mut rounds: JoinSet<String> = JoinSet::new();
        loop {
            let snapshot = self.live.current();
            let now = Instant::now();
            let mut next = now + IDLE_LOOK;
            for upstream in &snapshot.upstreams {
                if running.contains(&upstream.name) {
                    continue;
                }
                let at = *due.entry(upstream.name.clone()).or_insert(now);
                if at <= now {
                    running.insert(upstream.name.clone());
                    rounds.spawn(round(Arc::clone(upstream)));
                } else {
                    next = next.min(at);
                }
            }
            due.retain(|name, _| snapshot.upstream(name).is_some());
            drop(snapshot);
            tokio::select! {
                Some(done) = rounds.join_next() => match done {
                    Ok(name) => {
                        let interval = self
                            .live
                            .current()
                            .upstream(&name)
                            .map_or(IDLE_LOOK, |u| u.prober.interval);
                        due.insert(name.clone(), Instant::now() + interval);
                        running.remove(&name);
                    }
                    Err(e) => {
                        // A round that panicked names no upstream: let
                        // every upstream's next round start when due.
                        log::error!("a probe round failed: {e}");
                        running.clear();
                    }
                },
                _ = tokio::time::sleep_until(next) => {}
                _ = self.live.swapped() => {
                    // Probe everything of the new snapshot now.
                    for at in due.values_mut() {
                        *at = Instant::now();
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
