//! `listen:`: where the proxy takes its clients, in plain HTTP or TLS.
//!
//! One address (`listen: 0.0.0.0:8080`, the old form) is one plain listener;
//! a list gives each listener its own settings: TLS and its certificates,
//! HTTP/2, a redirect to HTTPS. The certificate files are read and checked
//! where they are used (`listen::tls`), at start and on every reload.

use super::scalar::Addr;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `listen:`: the proxy's listeners, at least one, no address twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Listeners(pub Vec<ListenerConfig>);

/// One proxy listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// The address to listen on.
    pub addr: Addr,
    /// TLS on this listener (HTTPS), with its certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// HTTP/2 beside HTTP/1.1: chosen by ALPN on TLS listeners (on by
    /// default there), by prior knowledge (h2c) on plain ones (off by
    /// default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2: Option<bool>,
    /// Answer every request with `308` to the same host and path on the
    /// first TLS listener's port.
    #[serde(default)]
    pub redirect_https: bool,
    /// Every connection starts with a PROXY protocol header (v1 or v2, from
    /// an L4 balancer in front) giving the client's address; a connection
    /// without one is closed. Off: a PROXY header is not honored.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// ` at line N` of the file it was read from (empty when unknown), for
    /// errors found when its certificates are read.
    #[serde(skip)]
    pub at_line: String,
}

/// `tls:` of a listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificates to offer; the client's SNI name picks one (exact
    /// name, then wildcard), else the first.
    pub certificates: Vec<CertificateFiles>,
    /// The oldest TLS version accepted.
    #[serde(default)]
    pub min_version: TlsVersion,
}

/// A certificate (PEM, leaf first, then its chain) and its private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFiles {
    /// The certificate chain file.
    pub cert: PathBuf,
    /// The private key file.
    pub key: PathBuf,
}

/// `min_version:` `"1.2"` or `"1.3"`; older versions are never offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    Tls13,
}

impl ListenerConfig {
    /// A plain HTTP listener on `addr`.
    pub fn plain(addr: SocketAddr) -> Self {
        ListenerConfig {
            addr: Addr(addr),
            tls: None,
            http2: None,
            redirect_https: false,
            proxy_protocol: false,
            at_line: String::new(),
        }
    }

    /// Whether HTTP/2 is spoken here.
    pub fn http2(&self) -> bool {
        self.http2.unwrap_or(self.tls.is_some())
    }

    fn check(&self) -> Result<(), String> {
        if let Some(tls) = &self.tls {
            if tls.certificates.is_empty() {
                return Err("tls.certificates: a TLS listener needs a certificate".to_string());
            }
            if self.redirect_https {
                return Err(
                    "redirect_https: a TLS listener cannot redirect to HTTPS (it is HTTPS)"
                        .to_string(),
                );
            }
        }
        if self.redirect_https && self.http2 == Some(true) {
            return Err(
                "http2: a listener that only redirects to HTTPS speaks HTTP/1.1".to_string(),
            );
        }
        Ok(())
    }
}

impl Listeners {
    /// The listeners' addresses, in order.
    pub fn addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.0.iter().map(|l| l.addr.0)
    }

    /// The first listener's address (the one a pid file check and
    /// messages name).
    pub fn first(&self) -> SocketAddr {
        self.0
            .first()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |l| l.addr.0)
    }

    /// Whether `addr` is one of the listeners'.
    pub fn contains(&self, addr: SocketAddr) -> bool {
        self.addrs().any(|a| a == addr)
    }

    /// The port `redirect_https` sends clients to: the first TLS
    /// listener's.
    pub fn https_port(&self) -> Option<u16> {
        self.0
            .iter()
            .find(|l| l.tls.is_some())
            .map(|l| l.addr.0.port())
    }

    /// What only a restart can change: the addresses, and which are TLS.
    pub fn sockets(&self) -> Vec<(SocketAddr, bool)> {
        self.0.iter().map(|l| (l.addr.0, l.tls.is_some())).collect()
    }

    /// Check the list as a whole: `Err((index, message))` for the first
    /// listener in error.
    pub fn check(&self) -> Result<(), (usize, String)> {
        for (index, listener) in self.0.iter().enumerate() {
            listener.check().map_err(|e| (index, e))?;
            if self.0[..index].iter().any(|l| l.addr == listener.addr) {
                return Err((index, format!("addr: {} is listed twice", listener.addr.0)));
            }
            if listener.redirect_https && self.https_port().is_none() {
                return Err((
                    index,
                    "redirect_https: no listener has `tls:` to redirect to".to_string(),
                ));
            }
        }
        Ok(())
    }
}

impl From<Addr> for Listeners {
    /// One plain listener.
    fn from(addr: Addr) -> Self {
        Listeners(vec![ListenerConfig::plain(addr.0)])
    }
}

impl<'de> Deserialize<'de> for Listeners {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListenVisitor;
        impl<'de> Visitor<'de> for ListenVisitor {
            type Value = Listeners;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "an address like 0.0.0.0:8080, or a list of listeners \
                     (`- { addr: 0.0.0.0:443, tls: { certificates: [...] } }`)",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Listeners, E> {
                Addr::deserialize(de::value::StrDeserializer::<E>::new(v)).map(Listeners::from)
            }
            // Other scalars get the address's own message.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Listeners, E> {
                Addr::deserialize(de::value::U64Deserializer::<E>::new(v)).map(Listeners::from)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Listeners, E> {
                Addr::deserialize(de::value::I64Deserializer::<E>::new(v)).map(Listeners::from)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Listeners, E> {
                Addr::deserialize(de::value::F64Deserializer::<E>::new(v)).map(Listeners::from)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Listeners, E> {
                Addr::deserialize(de::value::BoolDeserializer::<E>::new(v)).map(Listeners::from)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Listeners, A::Error> {
                let mut listeners = Vec::new();
                while let Some(listener) = seq.next_element::<ListenerConfig>()? {
                    listeners.push(listener);
                }
                if listeners.is_empty() {
                    return Err(de::Error::custom("the proxy needs at least one listener"));
                }
                Ok(Listeners(listeners))
            }
        }
        d.deserialize_any(ListenVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Listeners, String> {
        let listeners: Listeners = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        listeners.check().map_err(|(i, e)| format!("[{i}].{e}"))?;
        Ok(listeners)
    }

    #[test]
    fn one_address_is_one_plain_listener() {
        let listeners = parse("127.0.0.1:8080").unwrap();
        assert_eq!(
            listeners.0,
            [ListenerConfig::plain("127.0.0.1:8080".parse().unwrap())]
        );
        assert!(!listeners.0[0].http2());
    }

    #[test]
    fn a_list_gives_each_listener_its_settings() {
        let listeners = parse(
            "- { addr: 0.0.0.0:443, tls: { certificates: [ { cert: a.pem, key: a.key } ], min_version: \"1.3\" } }\n\
             - { addr: 0.0.0.0:80, redirect_https: true }\n\
             - { addr: 127.0.0.1:8080, http2: true, proxy_protocol: true }\n",
        )
        .unwrap();
        assert!(listeners.0[2].proxy_protocol);
        assert!(
            !listeners.0[0].proxy_protocol,
            "PROXY protocol is off by default"
        );
        let tls = listeners.0[0].tls.as_ref().unwrap();
        assert_eq!(tls.min_version, TlsVersion::Tls13);
        assert!(listeners.0[0].http2(), "HTTP/2 is on by default with TLS");
        assert!(!listeners.0[1].http2());
        assert!(listeners.0[2].http2());
        assert_eq!(listeners.https_port(), Some(443));
        assert_eq!(
            listeners.sockets(),
            [
                ("0.0.0.0:443".parse().unwrap(), true),
                ("0.0.0.0:80".parse().unwrap(), false),
                ("127.0.0.1:8080".parse().unwrap(), false)
            ]
        );
    }

    #[test]
    fn bad_listeners_are_refused() {
        for (text, error) in [
            ("[]", "at least one listener"),
            ("- { addr: 1.2.3.4 }", "is not an address like"),
            ("- { addr: 0.0.0.0:80, redirect_https: true }", "no listener has `tls:`"),
            ("- { addr: 0.0.0.0:80 }\n- { addr: 0.0.0.0:80 }", "[1].addr: 0.0.0.0:80 is listed twice"),
            ("- { addr: 0.0.0.0:443, tls: { certificates: [] } }", "needs a certificate"),
            ("- { addr: 0.0.0.0:443, tls: { certificates: [ { cert: a, key: b } ], min_version: \"1.1\" } }", "unknown variant `1.1`"),
            ("- { addr: 0.0.0.0:80, tsl: {} }", "unknown field `tsl`"),
            ("- { addr: 0.0.0.0:80, proxy_protocol: v2 }", "proxy_protocol: invalid type"),
        ] {
            let got = parse(text).unwrap_err();
            assert!(got.contains(error), "{text}: {got}");
        }
    }
}
