//! Asking DNS what a peer name stands for, with `hickory-resolver`:
//! `/etc/hosts` first, then the name servers of `resolver.nameservers` (or
//! of `/etc/resolv.conf`), for A and AAAA records (`host:port`) or SRV
//! records and their targets' addresses (`srv:`).
//!
//! Whether an answer says "no such name" or fails to come matters: the
//! first removes a name's addresses (after `hold_removed`), the second
//! keeps them. So the address families are asked one by one here, each
//! answer judged on its own (hickory's combined strategies report a failed
//! A query followed by an empty AAAA answer as "no records"), and a name
//! with a dot is asked as written, without the search domains of
//! resolv.conf (whose last "no such name" would hide a failure of the name
//! itself). The resolver keeps no cache: [`Discovered`](super::Discovered)
//! decides when each name is asked again (its TTL, `resolver.refresh`), so
//! every resolution reaches a name server.

use super::{Answer, Endpoint};
use crate::config::{Family, PeerName, ResolverConfig, Weight};
use futures::future::join_all;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig as HickoryConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::rdata::SRV;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Queries per name server before a query fails.
const ATTEMPTS: usize = 2;

/// Resolves peer names as `resolver:` says.
pub struct Resolver {
    inner: TokioResolver,
    family: Family,
    timeout: Duration,
}

impl Resolver {
    /// A resolver for `settings`, and a warning to log. Without
    /// `nameservers`, those of `/etc/resolv.conf`; when that cannot be
    /// read, only `/etc/hosts` answers (the warning says so).
    pub fn new(settings: &ResolverConfig) -> Result<(Resolver, Option<String>), String> {
        let mut warning = None;
        let mut builder = if settings.nameservers.is_empty() {
            match TokioResolver::builder_tokio() {
                Ok(builder) => builder,
                Err(e) => {
                    warning = Some(format!(
                        "resolver: cannot read /etc/resolv.conf ({e}); names resolve from /etc/hosts only"
                    ));
                    TokioResolver::builder_with_config(
                        HickoryConfig::from_name_servers(Vec::new()),
                        TokioRuntimeProvider::default(),
                    )
                }
            }
        } else {
            let servers = settings
                .nameservers
                .iter()
                .map(|server| name_server(server.0))
                .collect();
            TokioResolver::builder_with_config(
                HickoryConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            )
        };
        let options = builder.options_mut();
        options.use_hosts_file = ResolveHosts::Always;
        options.cache_size = 0;
        // The whole resolution is bounded by `timeout` (see `resolve`);
        // each query gets its share, so that a lost one is asked again.
        options.attempts = ATTEMPTS;
        options.timeout = (settings.timeout.0 / ATTEMPTS as u32).max(Duration::from_millis(100));
        let inner = builder
            .build()
            .map_err(|e| format!("resolver: cannot start one: {e}"))?;
        let resolver = Resolver {
            inner,
            family: settings.family,
            timeout: settings.timeout.0,
        };
        Ok((resolver, warning))
    }

    /// What `name` stands for now.
    pub async fn resolve(&self, name: &PeerName) -> Answer {
        let lookup = async {
            match name {
                PeerName::Host(host) => match dns_name(&host.host) {
                    Ok(dns) => self.addresses(dns, host.port, None).await,
                    Err(answer) => answer,
                },
                PeerName::Srv(srv) => self.srv(&srv.0).await,
            }
        };
        match tokio::time::timeout(self.timeout, lookup).await {
            Ok(answer) => answer,
            Err(_) => Answer::Failed(format!(
                "no answer within {}",
                humantime::format_duration(self.timeout)
            )),
        }
    }

    /// The addresses of `host` in the families `resolver.family` names,
    /// with `port`; `srv`: the weight and role of the SRV record.
    async fn addresses(&self, host: Name, port: u16, srv: Option<(u16, bool)>) -> Answer {
        let records = |kind| self.records(host.clone(), kind, port, srv);
        match self.family {
            Family::Ipv4 => records(RecordType::A).await,
            Family::Ipv6 => records(RecordType::AAAA).await,
            Family::PreferIpv4 => match records(RecordType::A).await {
                Answer::NotFound(_) => records(RecordType::AAAA).await,
                answer => answer,
            },
            Family::Both => {
                let (a, aaaa) = futures::join!(records(RecordType::A), records(RecordType::AAAA));
                combine(vec![a, aaaa])
            }
        }
    }

    /// The `kind` (A or AAAA) records of `host`, as endpoints on `port`.
    async fn records(
        &self,
        host: Name,
        kind: RecordType,
        port: u16,
        srv: Option<(u16, bool)>,
    ) -> Answer {
        let lookup = match self.inner.lookup(host, kind).await {
            Ok(lookup) => lookup,
            Err(e) => return of_error(&e),
        };
        let endpoints: Vec<Endpoint> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                _ => None,
            })
            .map(|ip| Endpoint {
                addr: SocketAddr::new(ip, port),
                weight: srv.map(|(weight, _)| weight),
                backup: srv.is_some_and(|(_, backup)| backup),
            })
            .collect();
        if endpoints.is_empty() {
            return Answer::NotFound(format!("no {kind} records"));
        }
        Answer::Found {
            endpoints,
            expires: lookup.valid_until(),
        }
    }

    /// The targets of the SRV records `name`: the lowest priority's are
    /// primaries, the others backups; weight 0 counts as 1. A target that
    /// fails to resolve fails the whole answer (the last known addresses
    /// stay); one that has no records just gives no peer.
    async fn srv(&self, name: &str) -> Answer {
        let dns = match dns_name(name) {
            Ok(dns) => dns,
            Err(answer) => return answer,
        };
        let lookup = match self.inner.lookup(dns, RecordType::SRV).await {
            Ok(lookup) => lookup,
            Err(e) => return of_error(&e),
        };
        let records: Vec<&SRV> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) if !srv.target.is_root() => Some(srv),
                _ => None,
            })
            .collect();
        let Some(lowest) = records.iter().map(|srv| srv.priority).min() else {
            return Answer::NotFound("no SRV records".to_string());
        };
        let weights = peer_weights(&records);
        let answers = join_all(records.iter().zip(weights).map(|(srv, weight)| {
            let role = Some((weight, srv.priority != lowest));
            self.addresses(srv.target.clone(), srv.port, role)
        }))
        .await;
        let answers = records
            .iter()
            .zip(answers)
            .map(|(srv, answer)| match answer {
                Answer::Failed(e) => Answer::Failed(format!("target {}: {e}", srv.target)),
                other => other,
            })
            .collect();
        match combine(answers) {
            Answer::Found { endpoints, expires } => Answer::Found {
                endpoints,
                expires: expires.min(lookup.valid_until()),
            },
            other => other,
        }
    }
}

/// The SRV weights of `records` as peer weights: 0 counts as 1, and when
/// one is above the highest peer weight, all are scaled down alike.
fn peer_weights(records: &[&SRV]) -> Vec<u16> {
    let highest = records.iter().map(|srv| srv.weight).max().unwrap_or(1);
    records
        .iter()
        .map(|srv| {
            let weight = if highest > Weight::MAX {
                (u32::from(srv.weight) * u32::from(Weight::MAX) / u32::from(highest)) as u16
            } else {
                srv.weight
            };
            weight.clamp(1, Weight::MAX)
        })
        .collect()
}

/// Several answers (address families, SRV targets) as one: any failure
/// fails it all, so the last known addresses stay; else the addresses
/// found, or "no records" when none were.
fn combine(answers: Vec<Answer>) -> Answer {
    let mut endpoints = Vec::new();
    let mut expires: Option<Instant> = None;
    let mut not_found = None;
    for answer in answers {
        match answer {
            Answer::Failed(e) => return Answer::Failed(e),
            Answer::NotFound(e) => not_found = not_found.or(Some(e)),
            Answer::Found {
                endpoints: found,
                expires: until,
            } => {
                endpoints.extend(found);
                expires = Some(expires.map_or(until, |e| e.min(until)));
            }
        }
    }
    match expires {
        Some(expires) => Answer::Found { endpoints, expires },
        None => Answer::NotFound(not_found.unwrap_or_else(|| "no records".to_string())),
    }
}

/// `name` as DNS takes it: with a dot, absolute (no search domains);
/// without one (`localhost`, a container name), searched as resolv.conf
/// says.
fn dns_name(name: &str) -> Result<Name, Answer> {
    let text = if name.contains('.') && !name.ends_with('.') {
        format!("{name}.")
    } else {
        name.to_string()
    };
    Name::from_ascii(&text).map_err(|e| Answer::Failed(format!("{name}: {e}")))
}

/// A name server at `addr`, over UDP (and TCP for long answers).
fn name_server(addr: SocketAddr) -> NameServerConfig {
    let mut connections = vec![ConnectionConfig::udp(), ConnectionConfig::tcp()];
    for connection in &mut connections {
        connection.port = addr.port();
    }
    NameServerConfig::new(addr.ip(), true, connections)
}

/// An error as an answer: "no records" is what the name says; anything
/// else is a failure to get an answer.
fn of_error(error: &NetError) -> Answer {
    if error.is_nx_domain() {
        Answer::NotFound("no such name".to_string())
    } else if error.is_no_records_found() {
        Answer::NotFound("no records".to_string())
    } else {
        Answer::Failed(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(weight: u16) -> SRV {
        SRV::new(10, weight, 80, Name::root())
    }

    #[test]
    fn srv_weights_become_peer_weights() {
        let records = [srv(0), srv(5), srv(10)];
        assert_eq!(
            peer_weights(&records.iter().collect::<Vec<_>>()),
            [1, 5, 10]
        );
        let records = [srv(5000), srv(10000), srv(1)];
        assert_eq!(
            peer_weights(&records.iter().collect::<Vec<_>>()),
            [500, 1000, 1],
            "scaled alike, ratios kept"
        );
    }

    #[test]
    fn a_failure_among_answers_fails_them_all() {
        let found = || Answer::Found {
            endpoints: vec![Endpoint {
                addr: "127.0.0.2:80".parse().unwrap(),
                weight: None,
                backup: false,
            }],
            expires: Instant::now(),
        };
        assert!(matches!(
            combine(vec![found(), Answer::Failed("timeout".into())]),
            Answer::Failed(_)
        ));
        assert!(matches!(
            combine(vec![found(), Answer::NotFound("nx".into())]),
            Answer::Found { .. }
        ));
        assert!(matches!(
            combine(vec![
                Answer::NotFound("nx".into()),
                Answer::NotFound("nx".into())
            ]),
            Answer::NotFound(_)
        ));
    }

    #[test]
    fn names_with_a_dot_are_absolute() {
        assert!(dns_name("pool.test").unwrap().is_fqdn());
        assert!(!dns_name("localhost").unwrap().is_fqdn());
        assert!(
            dns_name("my_service.internal").is_ok(),
            "underscores are fine"
        );
    }
}
