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
//! from these addresses whenever they (or a name's condition) change.

pub mod dns;

use crate::config::{Config, PeerName, ResolverConfig, MIN_REFRESH};
use crate::metrics::dns::{DnsMetrics, ResolutionResult};
use std::collections::HashMap;
use std::net::SocketAddr;
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
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// Not asked yet.
    Pending,
    /// Its last answer gave addresses.
    Resolved,
    /// Its last resolution got no usable answer.
    Failing(String),
    /// Answers say it has no records, since `since`.
    NotFound { error: String, since: Instant },
}

impl Condition {
    fn label(&self) -> &'static str {
        match self {
            Condition::Pending => "pending",
            Condition::Resolved => "resolved",
            Condition::Failing(_) => "failing",
            Condition::NotFound { .. } => "not_found",
        }
    }

    fn error(&self) -> Option<&str> {
        match self {
            Condition::Failing(error) | Condition::NotFound { error, .. } => Some(error),
            Condition::Pending | Condition::Resolved => None,
        }
    }
}

/// What is known of one name of one upstream.
struct NameRecord {
    /// The addresses it stands for now.
    endpoints: Vec<Endpoint>,
    condition: Condition,
    /// When to resolve it again.
    next: Instant,
    metrics: DnsMetrics,
}

/// A name as the status page and the admin API show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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

    /// How `name` of `upstream` stands, for the status views.
    pub fn status(&self, upstream: &str, name: &PeerName) -> NameStatus {
        let record = self.record(upstream, name);
        NameStatus {
            name: name.to_string(),
            addresses: record
                .map_or_else(Vec::new, |r| r.endpoints.iter().map(|e| e.addr).collect()),
            condition: record.map_or("pending", |r| r.condition.label()),
            error: record.and_then(|r| r.condition.error().map(str::to_string)),
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

    /// When the next name is due, if any is known.
    pub fn next_due(&self) -> Option<Instant> {
        self.upstreams
            .values()
            .flat_map(HashMap::values)
            .map(|record| record.next)
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

    /// Take `answer` for `name` of `upstream`, got at `now`; whether what
    /// the name stands for (its addresses or its condition) changed.
    pub fn record_answer(
        &mut self,
        upstream: &str,
        name: &PeerName,
        answer: Answer,
        now: Instant,
        settings: &ResolverConfig,
    ) -> bool {
        let record = self
            .upstreams
            .entry(upstream.to_string())
            .or_default()
            .entry(name.clone())
            .or_insert_with(|| NameRecord {
                endpoints: Vec::new(),
                condition: Condition::Pending,
                next: now,
                metrics: DnsMetrics::new(upstream, &name.to_string()),
            });
        let refresh = settings.refresh.0;
        let before = (record.endpoints.clone(), record.condition.label());
        let about = || format!("upstream {upstream}: {name}");
        match answer {
            Answer::Found {
                mut endpoints,
                expires,
            } if !endpoints.is_empty() => {
                record.metrics.count(ResolutionResult::Success);
                let mut seen = Vec::with_capacity(endpoints.len());
                endpoints.retain(|e| {
                    let new = !seen.contains(&e.addr);
                    seen.push(e.addr);
                    new
                });
                let ttl = expires.saturating_duration_since(now);
                record.next = now + ttl.clamp(MIN_REFRESH, refresh.max(MIN_REFRESH));
                if endpoints != record.endpoints {
                    log::info!(
                        "{}: resolves to {} (was {})",
                        about(),
                        list(&endpoints),
                        list(&record.endpoints)
                    );
                } else if record.condition != Condition::Resolved {
                    log::info!("{}: resolves again, to {}", about(), list(&endpoints));
                }
                record.endpoints = endpoints;
                record.condition = Condition::Resolved;
            }
            Answer::Found { .. } => {
                return self.record_answer(
                    upstream,
                    name,
                    Answer::NotFound("no addresses".to_string()),
                    now,
                    settings,
                );
            }
            Answer::Failed(error) => {
                record.metrics.count(ResolutionResult::Failure);
                record.next = now + refresh;
                if !matches!(record.condition, Condition::Failing(_)) {
                    log::warn!(
                        "{}: cannot resolve it ({error}); {}; trying again every {}",
                        about(),
                        kept(&record.endpoints),
                        humantime::format_duration(refresh)
                    );
                }
                record.condition = Condition::Failing(error);
            }
            Answer::NotFound(error) => {
                record.metrics.count(ResolutionResult::NotFound);
                let since = match record.condition {
                    Condition::NotFound { since, .. } => since,
                    _ => {
                        log::warn!(
                            "{}: {error}; {}; trying again every {}",
                            about(),
                            if record.endpoints.is_empty() {
                                "no peers from it".to_string()
                            } else {
                                format!(
                                    "its addresses stay unless that lasts {}",
                                    humantime::format_duration(settings.hold_removed.0)
                                )
                            },
                            humantime::format_duration(refresh)
                        );
                        now
                    }
                };
                let remove_at = since + settings.hold_removed.0;
                if now >= remove_at && !record.endpoints.is_empty() {
                    log::warn!(
                        "{}: {error} for {}: its peers {} are removed",
                        about(),
                        humantime::format_duration(settings.hold_removed.0),
                        list(&record.endpoints)
                    );
                    record.endpoints.clear();
                }
                record.next = if record.endpoints.is_empty() || remove_at <= now {
                    now + refresh
                } else {
                    (now + refresh).min(remove_at)
                };
                record.condition = Condition::NotFound { error, since };
            }
        }
        record.metrics.set_addresses(record.endpoints.len());
        (record.endpoints.clone(), record.condition.label()) != before
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

    fn found(at: Instant, addrs: &[&str]) -> Answer {
        Answer::Found {
            endpoints: addrs
                .iter()
                .map(|a| Endpoint {
                    addr: a.parse().unwrap(),
                    weight: None,
                    backup: false,
                })
                .collect(),
            expires: at + Duration::from_secs(60),
        }
    }

    fn addrs(d: &Discovered) -> Vec<String> {
        d.endpoints("u", &name())
            .iter()
            .map(|e| e.addr.to_string())
            .collect()
    }

    #[test]
    fn failures_keep_the_last_known_addresses_for_ever() {
        let settings = ResolverConfig::default();
        let mut d = Discovered::default();
        let t0 = Instant::now();
        assert!(d.record_answer("u", &name(), found(t0, &["127.0.0.2:80"]), t0, &settings));
        for minutes in 1..10 {
            let at = t0 + Duration::from_secs(60 * minutes);
            let changed = d.record_answer(
                "u",
                &name(),
                Answer::Failed("timeout".into()),
                at,
                &settings,
            );
            assert_eq!(changed, minutes == 1, "only the change of condition counts");
            assert_eq!(addrs(&d), ["127.0.0.2:80"]);
        }
        assert_eq!(d.status("u", &name()).condition, "failing");
    }

    #[test]
    fn no_such_name_empties_a_name_only_after_hold_removed() {
        let settings = ResolverConfig::default(); // hold_removed: 30s
        let mut d = Discovered::default();
        let t0 = Instant::now();
        d.record_answer(
            "u",
            &name(),
            found(t0, &["127.0.0.2:80", "127.0.0.3:80"]),
            t0,
            &settings,
        );
        let nx = || Answer::NotFound("no such name".into());
        d.record_answer("u", &name(), nx(), t0 + Duration::from_secs(5), &settings);
        d.record_answer("u", &name(), nx(), t0 + Duration::from_secs(30), &settings);
        assert_eq!(
            addrs(&d).len(),
            2,
            "held for 30 s from the first such answer"
        );
        assert!(d.record_answer("u", &name(), nx(), t0 + Duration::from_secs(35), &settings));
        assert!(addrs(&d).is_empty());

        // An answer in between starts the hold again.
        d.record_answer(
            "u",
            &name(),
            found(t0, &["127.0.0.2:80"]),
            t0 + Duration::from_secs(40),
            &settings,
        );
        d.record_answer("u", &name(), nx(), t0 + Duration::from_secs(45), &settings);
        d.record_answer("u", &name(), nx(), t0 + Duration::from_secs(70), &settings);
        assert_eq!(addrs(&d), ["127.0.0.2:80"]);
    }

    #[test]
    fn the_next_resolution_follows_the_ttl_within_one_second_and_refresh() {
        let settings = ResolverConfig::default(); // refresh: 5s
        let mut d = Discovered::default();
        let t0 = Instant::now();
        let with_ttl = |ttl| Answer::Found {
            endpoints: vec![Endpoint {
                addr: "127.0.0.2:80".parse().unwrap(),
                weight: None,
                backup: false,
            }],
            expires: t0 + ttl,
        };
        d.record_answer(
            "u",
            &name(),
            with_ttl(Duration::from_secs(300)),
            t0,
            &settings,
        );
        assert_eq!(d.next_due(), Some(t0 + Duration::from_secs(5)));
        d.record_answer(
            "u",
            &name(),
            with_ttl(Duration::from_secs(2)),
            t0,
            &settings,
        );
        assert_eq!(d.next_due(), Some(t0 + Duration::from_secs(2)));
        d.record_answer("u", &name(), with_ttl(Duration::ZERO), t0, &settings);
        assert_eq!(d.next_due(), Some(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn an_address_given_twice_is_one_endpoint() {
        let settings = ResolverConfig::default();
        let mut d = Discovered::default();
        let t0 = Instant::now();
        d.record_answer(
            "u",
            &name(),
            found(t0, &["127.0.0.2:80", "127.0.0.2:80"]),
            t0,
            &settings,
        );
        assert_eq!(addrs(&d), ["127.0.0.2:80"]);
    }
}
