//! Asking DNS what a peer name stands for, with `hickory-resolver`:
//! `/etc/hosts` first, then the name servers of `resolver.nameservers` (or
//! of `/etc/resolv.conf`), for A/AAAA records (`host:port`) or SRV records
//! and their targets' addresses (`srv:`).
//!
//! The resolver keeps no cache: [`Discovered`](super::Discovered) decides
//! when each name is asked again (its TTL, `resolver.refresh`), so every
//! resolution reaches a name server.

use super::{Answer, Endpoint};
use crate::config::{Family, PeerName, ResolverConfig};
use futures::future::join_all;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts,
    ResolverConfig as HickoryConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{Name, RData};
use hickory_resolver::TokioResolver;
use std::net::SocketAddr;
use std::time::Duration;

/// The highest weight a peer can have; SRV weights above it count as it.
const MAX_WEIGHT: u16 = 1000;

/// Resolves peer names as `resolver:` says.
pub struct Resolver {
    inner: TokioResolver,
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
        options.ip_strategy = match settings.family {
            Family::Ipv4 => LookupIpStrategy::Ipv4Only,
            Family::Ipv6 => LookupIpStrategy::Ipv6Only,
            Family::Both => LookupIpStrategy::Ipv4AndIpv6,
            Family::PreferIpv4 => LookupIpStrategy::Ipv4thenIpv6,
        };
        options.use_hosts_file = ResolveHosts::Always;
        options.cache_size = 0;
        options.timeout = settings.timeout.0;
        options.attempts = 2;
        let inner = builder
            .build()
            .map_err(|e| format!("resolver: cannot start one: {e}"))?;
        let resolver = Resolver {
            inner,
            timeout: settings.timeout.0,
        };
        Ok((resolver, warning))
    }

    /// What `name` stands for now.
    pub async fn resolve(&self, name: &PeerName) -> Answer {
        match tokio::time::timeout(self.timeout, self.lookup(name)).await {
            Ok(answer) => answer,
            Err(_) => Answer::Failed(format!(
                "no answer within {}",
                humantime::format_duration(self.timeout)
            )),
        }
    }

    async fn lookup(&self, name: &PeerName) -> Answer {
        match name {
            PeerName::Host(host) => self.addresses(host.host.as_str(), host.port, None).await,
            PeerName::Srv(srv) => self.srv(&srv.0).await,
        }
    }

    /// The addresses of `host`, with `port`; `srv`: the SRV weight and role
    /// they take.
    async fn addresses(
        &self,
        host: impl Into<HostName>,
        port: u16,
        srv: Option<(u16, bool)>,
    ) -> Answer {
        let lookup = match host.into() {
            HostName::Text(text) => self.inner.lookup_ip(text).await,
            HostName::Dns(name) => self.inner.lookup_ip(name).await,
        };
        match lookup {
            Ok(lookup) => Answer::Found {
                endpoints: lookup
                    .iter()
                    .map(|ip| Endpoint {
                        addr: SocketAddr::new(ip, port),
                        weight: srv.map(|(weight, _)| weight),
                        backup: srv.is_some_and(|(_, backup)| backup),
                    })
                    .collect(),
                expires: lookup.valid_until(),
            },
            Err(e) => of_error(&e),
        }
    }

    /// The targets of the SRV records `name`: the lowest priority's are
    /// primaries, the others backups; weight 0 counts as 1.
    async fn srv(&self, name: &str) -> Answer {
        let lookup = match self.inner.srv_lookup(name).await {
            Ok(lookup) => lookup,
            Err(e) => return of_error(&e),
        };
        let records: Vec<_> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) if !srv.target.is_root() => Some(srv.clone()),
                _ => None,
            })
            .collect();
        let Some(lowest) = records.iter().map(|srv| srv.priority).min() else {
            return Answer::NotFound(format!("no SRV records for {name}"));
        };
        let answers = join_all(records.iter().map(|srv| {
            let weight = srv.weight.clamp(1, MAX_WEIGHT);
            self.addresses(
                srv.target.clone(),
                srv.port,
                Some((weight, srv.priority != lowest)),
            )
        }))
        .await;
        let mut endpoints = Vec::new();
        let mut expires = lookup.valid_until();
        let mut failure = None;
        for (answer, srv) in answers.into_iter().zip(&records) {
            match answer {
                Answer::Found {
                    endpoints: found,
                    expires: until,
                } => {
                    endpoints.extend(found);
                    expires = expires.min(until);
                }
                Answer::NotFound(e) | Answer::Failed(e) => {
                    failure.get_or_insert_with(|| format!("target {}: {e}", srv.target));
                }
            }
        }
        match failure {
            Some(error) if endpoints.is_empty() => Answer::Failed(error),
            _ => Answer::Found { endpoints, expires },
        }
    }
}

/// A host to look up: as written in the config (searched in the
/// resolv.conf domains when it has few dots), or an SRV target (absolute).
enum HostName {
    Text(String),
    Dns(Name),
}

impl From<&str> for HostName {
    fn from(text: &str) -> Self {
        HostName::Text(text.to_string())
    }
}

impl From<Name> for HostName {
    fn from(name: Name) -> Self {
        HostName::Dns(name)
    }
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
