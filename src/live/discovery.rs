//! DNS discovery over the live configuration: the peer names of the
//! current snapshot are resolved when due (their TTL, `resolver.refresh`),
//! and when what a name gives changes, a new snapshot is built from the
//! same configuration and swapped in, exactly as a reload would: new
//! addresses wait DOWN for their first probe, vanished ones get no new
//! requests while their in-flight ones finish, the others stay the same
//! peers.
//!
//! Names are resolved once before the server starts
//! ([`resolve_at_start`]), so that the first snapshot has their peers (and
//! `-t` can warn about names that do not resolve), and a reload resolves
//! the names it adds before it applies them.

use super::changes::Changes;
use super::Live;
use crate::config::{Config, PeerName, ResolverConfig};
use crate::upstream::discovery::dns::Resolver;
use crate::upstream::discovery::{Answer, Discovered};
use async_trait::async_trait;
use futures::future::join_all;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A name of an upstream.
pub type UpstreamName = (String, PeerName);

/// How long the schedule sleeps when no name is known (a reload that adds
/// one wakes it).
const IDLE_LOOK: Duration = Duration::from_secs(60);

/// The names of `config` resolved once, before the server starts; and the
/// names that gave no address, with why, for `-t` to print.
pub fn resolve_at_start(config: &Config) -> (Discovered, Vec<String>) {
    let mut discovered = Discovered::default();
    let names = discovered.unknown(config);
    if names.is_empty() {
        return (discovered, Vec::new());
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let why =
                format!("cannot resolve peer names at start: {e}; they are resolved once running");
            log::error!("{why}");
            return (discovered, vec![why]);
        }
    };
    let answers = runtime.block_on(async {
        let (resolver, warning) = match Resolver::new(&config.resolver) {
            Ok((resolver, warning)) => (Some(resolver), warning),
            Err(e) => (None, Some(e)),
        };
        if let Some(warning) = &warning {
            log::warn!("{warning}");
        }
        // Each resolution is bounded by `resolver.timeout`.
        (resolve(resolver.as_ref(), names).await, warning)
    });
    // Nothing of the runtime may outlive this (a daemon forks next).
    runtime.shutdown_timeout(Duration::from_secs(1));
    let (answers, warning) = answers;
    let now = Instant::now();
    for ((upstream, name), answer) in answers {
        discovered.record_answer(&upstream, &name, answer, now, &config.resolver);
    }
    let mut warnings: Vec<String> = warning.into_iter().collect();
    for (upstream, settings) in &config.upstreams.0 {
        for name in settings.peers.names() {
            let status = discovered.status(upstream, name).status();
            if status.addresses.is_empty() {
                warnings.push(format!(
                    "upstream {upstream}: {name} gives no peer now ({}); switchyard starts without \
                     it and resolves it again every {}",
                    status.error.as_deref().unwrap_or("not resolved"),
                    humantime::format_duration(config.resolver.refresh.0)
                ));
            }
        }
    }
    (discovered, warnings)
}

/// Resolve `names` all at once; without a resolver, each fails.
async fn resolve(
    resolver: Option<&Resolver>,
    names: Vec<UpstreamName>,
) -> Vec<(UpstreamName, Answer)> {
    join_all(names.into_iter().map(|key| async move {
        let answer = match resolver {
            Some(resolver) => resolver.resolve(&key.1).await,
            None => Answer::Failed("no resolver".to_string()),
        };
        (key, answer)
    }))
    .await
}

impl Live {
    /// The resolver for `settings`: the one made before, unless the
    /// settings changed. Making one is logged (with why it failed), not
    /// each use.
    fn resolver(&self, settings: &ResolverConfig) -> Result<Arc<Resolver>, String> {
        let mut current = self.resolver.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(made) = &*current {
            if made.settings == *settings {
                return made.resolver.clone();
            }
        }
        let made = Resolver::new(settings).map(|(resolver, warning)| {
            if let Some(warning) = warning {
                log::warn!("{warning}");
            }
            Arc::new(resolver)
        });
        if let Err(e) = &made {
            log::error!("{e}; peer names keep their last known addresses");
        }
        *current = Some(MadeResolver {
            settings: settings.clone(),
            resolver: made.clone(),
        });
        made
    }

    /// Resolve `names` with the resolver of `settings`, all at once.
    async fn resolve(
        &self,
        settings: &ResolverConfig,
        names: Vec<UpstreamName>,
    ) -> Vec<(UpstreamName, Answer)> {
        let resolver = self.resolver(settings).ok();
        resolve(resolver.as_deref(), names).await
    }

    /// Resolve the names of `config` that were never resolved (a reload
    /// adds them), so that the snapshot `config` becomes has their peers.
    pub async fn resolve_new_names(&self, config: &Config) {
        let names = self.lock_registry().discovered.unknown(config);
        if names.is_empty() {
            return;
        }
        let answers = self.resolve(&config.resolver, names).await;
        let now = Instant::now();
        let mut registry = self.lock_registry();
        for ((upstream, name), answer) in answers {
            registry
                .discovered
                .record_answer(&upstream, &name, answer, now, &config.resolver);
        }
    }

    /// One round of discovery: resolve the names that are due; when what
    /// any of them gives changed, swap in a snapshot with it. Returns when
    /// the next round is due.
    async fn discover(&self) -> Instant {
        let snapshot = self.current();
        let due = self
            .lock_registry()
            .discovered
            .due(&snapshot.config, Instant::now());
        if !due.is_empty() {
            let answers = self.resolve(&snapshot.config.resolver, due).await;
            let now = Instant::now();
            let mut registry = self.lock_registry();
            // A reload may have swapped meanwhile: build on what runs now,
            // and drop the answers for names it no longer has.
            let current = self.current();
            let settings = &current.config.resolver;
            let mut changed = false;
            for ((upstream, name), answer) in answers {
                if Discovered::has(&current.config, &upstream, &name) {
                    changed |= registry
                        .discovered
                        .record_answer(&upstream, &name, answer, now, settings);
                }
            }
            if changed {
                match registry.rebuild(current.config.clone()) {
                    Ok(next) => {
                        let changes = Changes::between(&current, &next);
                        if changes != Changes::default() {
                            log::info!("DNS: {changes}");
                        }
                        drop(current);
                        self.swap(next, registry);
                    }
                    // The running configuration was built once already.
                    Err(e) => log::error!("DNS answers not applied: {e}"),
                }
            }
        }
        drop(snapshot);
        let current = self.current();
        self.lock_registry()
            .discovered
            .next_due(&current.config)
            .unwrap_or_else(|| Instant::now() + IDLE_LOOK)
    }
}

/// The resolver made for some `resolver:` settings, or why none could be.
pub(super) struct MadeResolver {
    settings: ResolverConfig,
    resolver: Result<Arc<Resolver>, String>,
}

/// Resolves the peer names of the live snapshot as they come due.
pub struct DiscoveryService {
    live: Arc<Live>,
}

impl DiscoveryService {
    pub fn new(live: Arc<Live>) -> Self {
        DiscoveryService { live }
    }
}

#[async_trait]
impl BackgroundService for DiscoveryService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            // Listening for swaps before the round: one that happens while
            // it runs (a reload adding a name) still wakes the next.
            let swapped = self.live.swapped();
            tokio::pin!(swapped);
            swapped.as_mut().enable();
            let next = self.live.discover().await;
            tokio::select! {
                _ = tokio::time::sleep_until(next.into()) => {}
                _ = swapped => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
