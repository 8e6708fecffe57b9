//! How an upstream's peers are written: `ip:port`, `host:port` (each
//! address the name resolves to is a peer), or `{ srv: NAME }` (the SRV
//! records give hosts, ports and weights).

use super::scalar::{HostPort, PeerAddr, SrvName, Weight};
use serde::de::{self, value::MapAccessDeserializer, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::net::SocketAddr;

/// One entry of a peer list: `127.0.0.1:8001`, `backend:8001`,
/// `{ addr: ..., weight: 2, backup: true }` or `{ srv: _http._tcp.backend }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// Where the peer is: an address, a name, or an SRV name.
    pub target: PeerTarget,
    /// The weight of every address of the entry (SRV entries: the records').
    pub weight: Weight,
    /// Backup peers take traffic only while no primary peer is up (SRV
    /// entries: the targets of every priority but the lowest).
    pub backup: bool,
}

/// Where an entry's addresses come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerTarget {
    /// One address, as written.
    Ip(SocketAddr),
    /// The addresses a name resolves to, now.
    Name(PeerName),
}

/// A name that gives peer addresses through DNS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerName {
    /// `host:port`: the host's A (or AAAA) records, with that port.
    Host(HostPort),
    /// An SRV record set: hosts, ports, weights and priorities.
    Srv(SrvName),
}

impl fmt::Display for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerName::Host(host) => host.fmt(f),
            PeerName::Srv(name) => name.fmt(f),
        }
    }
}

impl fmt::Display for PeerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerTarget::Ip(addr) => addr.fmt(f),
            PeerTarget::Name(name) => name.fmt(f),
        }
    }
}

impl PeerConfig {
    /// Whether the entry may give primary peers.
    fn may_be_primary(&self) -> bool {
        !self.backup || matches!(self.target, PeerTarget::Name(PeerName::Srv(_)))
    }

    /// The name to resolve, if the entry has one.
    pub fn name(&self) -> Option<&PeerName> {
        match &self.target {
            PeerTarget::Ip(_) => None,
            PeerTarget::Name(name) => Some(name),
        }
    }
}

fn unit_weight() -> Weight {
    Weight(1)
}

/// The map form of an entry, as written.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerMap {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    addr: Option<PeerAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    srv: Option<SrvName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weight: Option<Weight>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backup: Option<bool>,
}

impl PeerMap {
    fn check(self) -> Result<PeerConfig, String> {
        let target = match (self.addr, self.srv) {
            (Some(addr), None) => PeerAddr::into_target(addr),
            (None, Some(srv)) => {
                if self.weight.is_some() || self.backup.is_some() {
                    return Err(format!(
                        "srv {srv}: the SRV records give the weights (weight) and the backups \
                         (every priority but the lowest); remove `weight` and `backup`"
                    ));
                }
                PeerTarget::Name(PeerName::Srv(srv))
            }
            (Some(_), Some(_)) => return Err("a peer has `addr` or `srv`, not both".to_string()),
            (None, None) => return Err("a peer needs `addr` (or `srv`)".to_string()),
        };
        Ok(PeerConfig {
            target,
            weight: self.weight.unwrap_or_else(unit_weight),
            backup: self.backup.unwrap_or(false),
        })
    }
}

impl PeerAddr {
    fn into_target(self) -> PeerTarget {
        match self {
            PeerAddr::Ip(addr) => PeerTarget::Ip(addr),
            PeerAddr::Host(host) => PeerTarget::Name(PeerName::Host(host)),
        }
    }
}

impl Serialize for PeerConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let map = match &self.target {
            PeerTarget::Name(PeerName::Srv(srv)) => PeerMap {
                addr: None,
                srv: Some(srv.clone()),
                weight: None,
                backup: None,
            },
            PeerTarget::Ip(addr) => PeerMap {
                addr: Some(PeerAddr::Ip(*addr)),
                srv: None,
                weight: Some(self.weight),
                backup: Some(self.backup),
            },
            PeerTarget::Name(PeerName::Host(host)) => PeerMap {
                addr: Some(PeerAddr::Host(host.clone())),
                srv: None,
                weight: Some(self.weight),
                backup: Some(self.backup),
            },
        };
        map.serialize(s)
    }
}

/// An entry written either as a bare address or as a map.
impl<'de> Deserialize<'de> for PeerConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = PeerConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a peer: `ip:port`, `host:port`, `{ addr: ..., weight: N, backup: bool }` \
                     or `{ srv: NAME }`",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PeerConfig, E> {
                let addr = PeerAddr::deserialize(de::value::StrDeserializer::<E>::new(v))?;
                Ok(PeerConfig {
                    target: addr.into_target(),
                    weight: unit_weight(),
                    backup: false,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PeerConfig, A::Error> {
                PeerMap::deserialize(MapAccessDeserializer::new(map))?
                    .check()
                    .map_err(de::Error::custom)
            }
        }
        d.deserialize_any(EntryVisitor)
    }
}

/// The peers of an upstream: not empty, no entry twice, at least one that
/// may give a primary peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerList(pub Vec<PeerConfig>);

impl PeerList {
    /// The names to resolve, in order.
    pub fn names(&self) -> impl Iterator<Item = &PeerName> {
        self.0.iter().filter_map(PeerConfig::name)
    }
}

impl<'de> Deserialize<'de> for PeerList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = PeerList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of peers")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PeerList, A::Error> {
                let mut peers: Vec<PeerConfig> = Vec::new();
                while let Some(peer) = seq.next_element::<PeerConfig>()? {
                    if peers.iter().any(|p| p.target == peer.target) {
                        return Err(de::Error::custom(format!(
                            "peer {} is listed twice",
                            peer.target
                        )));
                    }
                    peers.push(peer);
                }
                if peers.is_empty() {
                    return Err(de::Error::custom("an upstream needs at least one peer"));
                }
                if !peers.iter().any(PeerConfig::may_be_primary) {
                    return Err(de::Error::custom(
                        "every peer is a backup; at least one must be a primary peer",
                    ));
                }
                Ok(PeerList(peers))
            }
        }
        d.deserialize_seq(ListVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<PeerList, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn entries_take_addresses_names_and_srv_records() {
        let list = parse(
            "[127.0.0.1:8001, backend:8002, { addr: b.example:8003, weight: 3, backup: true }, \
             { srv: _http._tcp.app.example }]",
        )
        .unwrap();
        assert_eq!(
            list.0[0].target,
            PeerTarget::Ip("127.0.0.1:8001".parse().unwrap())
        );
        assert_eq!(list.0[1].name().unwrap().to_string(), "backend:8002");
        assert_eq!(list.0[2].weight, Weight(3));
        assert!(list.0[2].backup);
        assert_eq!(
            list.0[3].name().unwrap().to_string(),
            "_http._tcp.app.example"
        );
        assert_eq!(list.names().count(), 3);
    }

    #[test]
    fn srv_entries_take_weights_and_backups_from_the_records() {
        let message = parse("[{ srv: _http._tcp.app.example, weight: 2 }]").unwrap_err();
        assert!(
            message.contains("the SRV records give the weights"),
            "{message}"
        );
        assert!(parse("[{ addr: a:1, srv: _x._tcp.a }]")
            .unwrap_err()
            .contains("not both"));
        assert!(parse("[{ weight: 2 }]")
            .unwrap_err()
            .contains("needs `addr`"));
    }

    #[test]
    fn an_entry_twice_is_refused_and_one_must_be_primary() {
        assert!(parse("[backend:80, Backend:80]")
            .unwrap_err()
            .contains("listed twice"));
        assert!(parse("[{ addr: a:1, backup: true }]")
            .unwrap_err()
            .contains("every peer is a backup"));
        // An SRV entry may give primaries.
        assert!(parse("[{ srv: _x._tcp.a }, { addr: a:1, backup: true }]").is_ok());
    }

    #[test]
    fn entries_serialize_to_what_reads_back() {
        let list = parse("[127.0.0.1:8001, { addr: b:2, weight: 2 }, { srv: _x._tcp.a }]").unwrap();
        let yaml = serde_yaml::to_string(&list).unwrap();
        assert_eq!(parse(&yaml).unwrap(), list);
    }
}
