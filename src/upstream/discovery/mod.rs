//! Where an upstream's peers come from. An entry written `ip:port` is one
//! peer; a name (`host:port`, `srv:`) gives as many as its DNS records,
//! and those change while switchyard runs.
//!
//! [`Discovered`] keeps what each name gave last and decides, answer by
//! answer ([`dns`] asks), which addresses the name stands for now: the new
//! ones when it answers; the last known ones while it does not (timeouts,
//! SERVFAIL, an unreachable server), however long that lasts; and none only
//! after `resolver.hold_removed` of answers that say the name has no
//! records, so that one bad answer does not empty an upstream. Each change
//! of condition is logged once, not per attempt. A new snapshot is built
//! only when a name's addresses change; how each name stands (its
//! condition, its last error) is kept in a [`NameCell`] the snapshots share,
//! updated in place.

pub mod dns;

use crate::config::{Config, PeerName, ResolverConfig, MIN_REFRESH};
use crate::metrics::dns::{DnsMetrics, ResolutionResult};
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One address a name gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// SRV: the record's weight (0 counts as 1); `None`: the entry's.
    pub weight: Option<u16>,
    /// SRV: a target of a priority other than the lowest.
    pub backup: bool,
}

/// What one resolution of a name said.
#[derive(Debug, Clone)]
pub enum Answer {
    /// These addresses, which the records' TTL lets us keep until `expires`.
    Found {
        endpoints: Vec<Endpoint>,
        expires: Instant,
    },
    /// An authoritative "no such name", or no records of the kind asked.
    NotFound(String),
    /// No usable answer: a timeout, SERVFAIL, an unreachable server.
    Failed(String),
}

/// How a name stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    /// Not asked yet.
    Pending,
    /// Its last answer gave addresses.
    Resolved,
    /// Its last resolution got no usable answer.
    Failing,
    /// Its last answer said it has no records.
    NotFound,
}

impl Condition {
    fn label(self) -> &'static str {
        match self {
            Condition::Pending => "pending",
            Condition::Resolved => "resolved",
            Condition::Failing => "failing",
            Condition::NotFound => "not_found",
        }
    }
}

/// A name as the status page and the admin API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameStatus {
    /// As written: `host:port`, or the SRV name.
    pub name: String,
    /// The addresses it gives peers now.
    pub addresses: Vec<SocketAddr>,
    /// `pending`, `resolved`, `failing` (the last known addresses stay) or
    /// `not_found`.
    pub condition: &'static str,
    /// Why the last resolution gave no addresses.
    pub error: Option<String>,
}

/// How one name stands now, shared by every snapshot that shows it and
/// updated in place by each answer (a changed condition or error needs no
/// new snapshot).
#[derive(Debug)]
pub struct NameCell(Mutex<NameStatus>);

impl NameCell {
    fn new(name: &PeerName) -> Self {
        NameCell(Mutex::new(NameStatus {
            name: name.to_string(),
            addresses: Vec::new(),
            condition: Condition::Pending.label(),
            error: None,
        }))
    }

    /// How the name stands now.
    pub fn status(&self) -> NameStatus {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, endpoints: &[Endpoint], condition: Condition, error: Option<String>) {
        let mut status = self.0.lock().unwrap_or_else(|p| p.into_inner());
        status.addresses = endpoints.iter().map(|e| e.addr).collect();
        status.condition = condition.label();
        status.error = error;
    }
}

/// What is known of one name of one upstream.
struct NameRecord {
    /// The addresses it stands for now, in address order (round-robin DNS
    /// servers rotate their answers; the order means nothing).
    endpoints: Vec<Endpoint>,
    condition: Condition,
    /// Since when answers have said the name has no records (failures in
    /// between do not reset it; addresses do).
    not_found_since: Option<Instant>,
    /// When to resolve it again.
    next: Instant,
    shown: Arc<NameCell>,
    metrics: DnsMetrics,
}

/// The names of every upstream and what they gave.
#[derive(Default)]
pub struct Discovered {
    upstreams: HashMap<String, HashMap<PeerName, NameRecord>>,
}

impl Discovered {
    /// The addresses `name` of `upstream` stands for now (none when it was
    /// never resolved).
    pub fn endpoints(&self, upstream: &str, name: &PeerName) -> &[Endpoint] {
        self.record(upstream, name)
            .map_or(&[], |record| record.endpoints.as_slice())
    }

    /// How `name` of `upstream` stands, live.
    pub fn status(&self, upstream: &str, name: &PeerName) -> Arc<NameCell> {
        match self.record(upstream, name) {
            Some(record) => Arc::clone(&record.shown),
            None => Arc::new(NameCell::new(name)),
        }
    }

    fn record(&self, upstream: &str, name: &PeerName) -> Option<&NameRecord> {
        self.upstreams.get(upstream)?.get(name)
    }

    /// The names of `config` to resolve at `now`: those never resolved and
    /// those whose time has come.
    pub fn due(&self, config: &Config, now: Instant) -> Vec<(String, PeerName)> {
        names_of(config)
            .filter(|(upstream, name)| {
                self.record(upstream, name)
                    .is_none_or(|record| record.next <= now)
            })
            .map(|(upstream, name)| (upstream.to_string(), name.clone()))
            .collect()
    }

    /// The names of `config` this has never resolved.
    pub fn unknown(&self, config: &Config) -> Vec<(String, PeerName)> {
        names_of(config)
            .filter(|(upstream, name)| self.record(upstream, name).is_none())
            .map(|(upstream, name)| (upstream.to_string(), name.clone()))
            .collect()
    }

    /// Whether `config` has `name` in `upstream`.
    pub fn has(config: &Config, upstream: &str, name: &PeerName) -> bool {
        names_of(config).any(|(u, n)| u == upstream && n == name)
    }

    /// When the next name of `config` is due, if it has any.
    pub fn next_due(&self, config: &Config) -> Option<Instant> {
        names_of(config)
            .map(|(upstream, name)| {
                self.record(upstream, name)
                    .map_or_else(Instant::now, |r| r.next)
            })
            .min()
    }

    /// Forget the names `config` no longer has (their series go with them).
    pub fn retain(&mut self, config: &Config) {
        self.upstreams.retain(|upstream, names| {
            let Some(settings) = config.upstreams.0.get(upstream) else {
                return false;
            };
            names.retain(|name, _| settings.peers.names().any(|n| n == name));
            !names.is_empty()
        });
    }

    /// Take `answer` for `name` of `upstream`, got at `now`; whether the
    /// addresses the name stands for changed (or it is new), which takes a
    /// new snapshot.
    pub fn record_answer(
        &mut self,
        upstream: &str,
        name: &PeerName,
        answer: Answer,
        now: Instant,
        settings: &ResolverConfig,
    ) -> bool {
        let names = self.upstreams.entry(upstream.to_string()).or_default();
        let new = !names.contains_key(name);
        let record = names.entry(name.clone()).or_insert_with(|| NameRecord {
            endpoints: Vec::new(),
            condition: Condition::Pending,
            not_found_since: None,
            next: now,
            shown: Arc::new(NameCell::new(name)),
            metrics: DnsMetrics::new(upstream, &name.to_string()),
        });
        let before = record.endpoints.clone();
        record.take(upstream, name, answer, now, settings);
        record.metrics.set_addresses(record.endpoints.len());
        new || record.endpoints != before
    }
}

impl NameRecord {
    fn take(
        &mut self,
        upstream: &str,
        name: &PeerName,
        answer: Answer,
        now: Instant,
        settings: &ResolverConfig,
    ) {
        let refresh = settings.refresh.0;
        let every = humantime::format_duration(refresh);
        let about = format!("upstream {upstream}: {name}");
        let (condition, error) = match answer {
            Answer::Found {
                mut endpoints,
                expires,
            } if !endpoints.is_empty() => {
                self.metrics.count(ResolutionResult::Success);
                endpoints.sort_by_key(|e| e.addr);
                endpoints.dedup_by_key(|e| e.addr);
                let ttl = expires.saturating_duration_since(now);
                self.next = now + ttl.clamp(MIN_REFRESH, refresh.max(MIN_REFRESH));
                if endpoints != self.endpoints {
                    log::info!(
                        "{about}: resolves to {} (was {})",
                        list(&endpoints),
                        list(&self.endpoints)
                    );
                } else if self.condition != Condition::Resolved {
                    log::info!("{about}: resolves again, to {}", list(&endpoints));
                }
                self.endpoints = endpoints;
                self.not_found_since = None;
                (Condition::Resolved, None)
            }
            Answer::Found { .. } => {
                return self.take(
                    upstream,
                    name,
                    Answer::NotFound("no addresses".to_string()),
                    now,
                    settings,
                );
            }
            Answer::Failed(error) => {
                self.metrics.count(ResolutionResult::Failure);
                self.next = now + refresh;
                if self.condition != Condition::Failing {
                    log::warn!(
                        "{about}: cannot resolve it ({error}); {}; trying again every {every}",
                        kept(&self.endpoints)
                    );
                }
                (Condition::Failing, Some(error))
            }
            Answer::NotFound(error) => {
                self.metrics.count(ResolutionResult::NotFound);
                let hold = settings.hold_removed.0;
                let since = *self.not_found_since.get_or_insert(now);
                let remove_at = since + hold;
                if self.condition != Condition::NotFound {
                    let outlook = if self.endpoints.is_empty() {
                        "no peers from it".to_string()
                    } else {
                        format!(
                            "its addresses stay unless that lasts {}",
                            humantime::format_duration(hold)
                        )
                    };
                    log::warn!("{about}: {error}; {outlook}; trying again every {every}");
                }
                if now >= remove_at && !self.endpoints.is_empty() {
                    log::warn!(
                        "{about}: {error} for {}: its peers {} are removed",
                        humantime::format_duration(hold),
                        list(&self.endpoints)
                    );
                    self.endpoints.clear();
                }
                self.next = if self.endpoints.is_empty() {
                    now + refresh
                } else {
                    (now + refresh).min(remove_at)
                };
                (Condition::NotFound, Some(error))
            }
        };
        self.condition = condition;
        self.shown.set(&self.endpoints, condition, error);
    }
}

/// Every `(upstream, name)` of `config`.
fn names_of(config: &Config) -> impl Iterator<Item = (&str, &PeerName)> {
    config
        .upstreams
        .0
        .iter()
        .flat_map(|(upstream, u)| u.peers.names().map(move |n| (upstream.as_str(), n)))
}

fn list(endpoints: &[Endpoint]) -> String {
    if endpoints.is_empty() {
        return "nothing".to_string();
    }
    endpoints
        .iter()
        .map(|e| e.addr.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn kept(endpoints: &[Endpoint]) -> String {
    if endpoints.is_empty() {
        "no peers from it until it does".to_string()
    } else {
        format!("keeping its last known addresses {}", list(endpoints))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HostPort;
    use std::time::Duration;

    fn name() -> PeerName {
        PeerName::Host(HostPort {
            host: "backend.test".to_string(),
            port: 80,
        })
    }

    /// One name of upstream `u`, default `resolver:` settings (refresh 5s,
    /// hold_removed 30s), answers given at seconds after `t0`.
    struct Name {
        d: Discovered,
        settings: ResolverConfig,
        t0: Instant,
    }

    impl Name {
        fn new() -> Self {
            Name {
                d: Discovered::default(),
                settings: ResolverConfig::default(),
                t0: Instant::now(),
            }
        }

        fn at(&self, seconds: u64) -> Instant {
            self.t0 + Duration::from_secs(seconds)
        }

        /// Whether the answer takes a new snapshot.
        fn answer(&mut self, seconds: u64, answer: Answer) -> bool {
            let at = self.at(seconds);
            self.d
                .record_answer("u", &name(), answer, at, &self.settings)
        }

        fn found(&mut self, seconds: u64, addrs: &[&str]) -> bool {
            let expires = self.at(seconds + 60);
            self.answer(seconds, found(expires, addrs))
        }

        fn addrs(&self) -> Vec<String> {
            self.d
                .endpoints("u", &name())
                .iter()
                .map(|e| e.addr.to_string())
                .collect()
        }

        fn next(&self) -> Instant {
            self.d.record("u", &name()).unwrap().next
        }
    }

    fn found(expires: Instant, addrs: &[&str]) -> Answer {
        Answer::Found {
            endpoints: addrs
                .iter()
                .map(|a| Endpoint {
                    addr: a.parse().unwrap(),
                    weight: None,
                    backup: false,
                })
                .collect(),
            expires,
        }
    }

    fn nx() -> Answer {
        Answer::NotFound("no such name".into())
    }

    #[test]
    fn failures_keep_the_last_known_addresses_for_ever() {
        let mut n = Name::new();
        assert!(n.found(0, &["127.0.0.2:80"]));
        for minutes in 1..10 {
            let failed = Answer::Failed(format!("timeout {minutes}"));
            assert!(
                !n.answer(60 * minutes, failed),
                "the addresses stay: no new snapshot"
            );
            assert_eq!(n.addrs(), ["127.0.0.2:80"]);
        }
        let status = n.d.status("u", &name()).status();
        assert_eq!(status.condition, "failing");
        assert_eq!(
            status.error.as_deref(),
            Some("timeout 9"),
            "the last error shows"
        );
    }

    #[test]
    fn no_such_name_empties_a_name_only_after_hold_removed() {
        let mut n = Name::new();
        n.found(0, &["127.0.0.2:80", "127.0.0.3:80"]);
        n.answer(5, nx());
        n.answer(30, nx());
        assert_eq!(
            n.addrs().len(),
            2,
            "held for 30 s from the first such answer"
        );
        assert!(n.answer(35, nx()));
        assert!(n.addrs().is_empty());

        // An answer in between starts the hold again.
        n.found(40, &["127.0.0.2:80"]);
        n.answer(45, nx());
        n.answer(70, nx());
        assert_eq!(n.addrs(), ["127.0.0.2:80"]);
    }

    #[test]
    fn failures_between_no_such_name_answers_do_not_restart_the_hold() {
        let mut n = Name::new();
        n.found(0, &["127.0.0.2:80"]);
        n.answer(5, nx());
        n.answer(20, Answer::Failed("timeout".into()));
        assert!(n.answer(36, nx()));
        assert!(n.addrs().is_empty());
    }

    #[test]
    fn the_next_resolution_follows_the_ttl_within_one_second_and_refresh() {
        let mut n = Name::new();
        for (ttl, next) in [(300, 5), (2, 2), (0, 1)] {
            let expires = n.at(ttl);
            n.answer(0, found(expires, &["127.0.0.2:80"]));
            assert_eq!(n.next(), n.at(next), "TTL {ttl} s");
        }
    }

    #[test]
    fn a_rotated_answer_is_no_change() {
        let mut n = Name::new();
        n.found(0, &["127.0.0.3:80", "127.0.0.2:80"]);
        assert!(!n.found(1, &["127.0.0.2:80", "127.0.0.3:80"]));
        assert_eq!(n.addrs(), ["127.0.0.2:80", "127.0.0.3:80"]);
    }

    #[test]
    fn an_address_given_twice_is_one_endpoint() {
        let mut n = Name::new();
        n.found(0, &["127.0.0.2:80", "127.0.0.2:80"]);
        assert_eq!(n.addrs(), ["127.0.0.2:80"]);
    }
}
