//! `upstreams.<name>.tls`: switchyard speaks TLS to the peers.
//!
//! Verification is on unless the file says otherwise, and Pingora checks a
//! certificate only against a server name (with an empty SNI it verifies
//! nothing): the name is `sni`, else the DNS name a peer was listed by, and
//! a peer listed by address or SRV name with verification and no `sni` is
//! a config error (see [`UpstreamTlsConfig::check_peers`]). The CA file is
//! read and parsed while the configuration is read, once per load: a bad
//! file is an error with its key and line, and requests reuse the parsed
//! certificates.

use super::peer::{PeerConfig, PeerName, PeerTarget};
use super::scalar::ServerName;
use pingora_core::tls::x509::X509;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

/// `upstreams.<name>.tls`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsConfig {
    /// The name sent as SNI and checked against the peer's certificate;
    /// absent: each peer's DNS name (`host` of `host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<ServerName>,
    /// Check the peer's certificate chain and name.
    #[serde(default = "verify_by_default")]
    pub verify: bool,
    /// The CA certificates (PEM) that peer certificates must chain to;
    /// absent: the system's CA store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<CaFile>,
}

fn verify_by_default() -> bool {
    true
}

impl UpstreamTlsConfig {
    /// With verification on, every peer needs a name to check its
    /// certificate against: `sni`, or the DNS name it is listed by.
    pub(super) fn check_peers(&self, peers: &[PeerConfig]) -> Result<(), String> {
        if !self.verify || self.sni.is_some() {
            return Ok(());
        }
        let unnamed = peers.iter().find(|peer| match &peer.target {
            PeerTarget::Ip(_) | PeerTarget::Name(PeerName::Srv(_)) => true,
            PeerTarget::Name(PeerName::Host(_)) => false,
        });
        match unnamed {
            None => Ok(()),
            Some(peer) => Err(format!(
                "tls: peer {} has no host name to check its certificate against: \
                 give `tls.sni` (the name in the peer's certificate), or `verify: false`",
                peer.target
            )),
        }
    }

    /// The name to send as SNI and to verify for a peer listed by `host`
    /// (`None`: by address or SRV name); empty when there is none.
    pub fn server_name(&self, host: Option<&str>) -> String {
        match (&self.sni, host) {
            (Some(sni), _) => sni.0.clone(),
            (None, Some(host)) => host.to_string(),
            (None, None) => String::new(),
        }
    }
}

/// `tls.ca_file`: a PEM file of CA certificates, parsed when read.
#[derive(Clone)]
pub struct CaFile {
    /// As written in the configuration.
    pub path: String,
    /// Its certificates, shared by every peer of the upstream (Pingora
    /// takes them in this form).
    pub certificates: Arc<Box<[X509]>>,
}

impl CaFile {
    /// Read and parse the file at `path`.
    fn load(path: &str) -> Result<Self, String> {
        let certificates = super::pem::certificates(std::path::Path::new(path))?;
        Ok(CaFile {
            path: path.to_string(),
            certificates: Arc::new(certificates.into_boxed_slice()),
        })
    }
}

impl fmt::Debug for CaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CaFile({}, {} certificates)",
            self.path,
            self.certificates.len()
        )
    }
}

impl Serialize for CaFile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.path)
    }
}

impl<'de> Deserialize<'de> for CaFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Loaded inside the visitor: the only moment `serde_yaml` still
        // knows the key path and line of the value.
        struct PathVisitor;
        impl de::Visitor<'_> for PathVisitor {
            type Value = CaFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the path of a PEM file of CA certificates")
            }
            fn visit_str<E: de::Error>(self, path: &str) -> Result<CaFile, E> {
                CaFile::load(path).map_err(E::custom)
            }
        }
        d.deserialize_str(PathVisitor)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn upstream(peers: &str, tls: &str) -> String {
        format!("upstreams:\n  b:\n    peers: [{peers}]\n    tls: {tls}\n")
    }

    fn error_of(text: &str) -> String {
        Config::parse(text, "test.yaml").unwrap_err().to_string()
    }

    #[test]
    fn verification_is_on_by_default_and_the_name_comes_from_sni_or_the_peer() {
        let config = Config::parse(&upstream("127.0.0.1:1", "{ sni: API.test }"), "t").unwrap();
        let b = &config.upstreams.0["b"];
        let tls = b.tls.as_ref().unwrap();
        assert!(tls.verify && tls.ca_file.is_none() && !b.http2);
        assert_eq!(tls.server_name(None), "api.test");
        assert_eq!(tls.server_name(Some("peer.test")), "api.test");

        let config = Config::parse(&upstream("peer.test:443", "{}"), "t").unwrap();
        let tls = config.upstreams.0["b"].tls.clone().unwrap();
        assert_eq!(tls.server_name(Some("peer.test")), "peer.test");

        let config = Config::parse(&upstream("127.0.0.1:1", "{ verify: false }"), "t").unwrap();
        let tls = config.upstreams.0["b"].tls.clone().unwrap();
        assert_eq!(tls.server_name(None), "", "no name, nothing to verify");
        let again = config.checked("again").unwrap();
        assert!(!again.upstreams.0["b"].tls.as_ref().unwrap().verify);
    }

    #[test]
    fn a_peer_without_a_name_to_verify_is_an_error_with_its_line() {
        for peers in ["127.0.0.1:1", "{ srv: _https._tcp.peer.test }"] {
            let message = error_of(&upstream(peers, "{ verify: true }"));
            assert!(
                message.starts_with("test.yaml: upstreams: upstream `b`: tls: peer ")
                    && message.contains("has no host name to check its certificate against")
                    && message.contains("give `tls.sni`")
                    && message.contains("line "),
                "{message}"
            );
        }
        let message = error_of(&upstream("127.0.0.1:1", "{ sni: 10.0.0.1 }"));
        assert!(
            message.contains("upstreams.b.tls.sni: `10.0.0.1` is not a host name")
                && message.contains("line 4"),
            "{message}"
        );
        let message = error_of(&upstream("127.0.0.1:1", "{ verify: false, alpn: h2 }"));
        assert!(message.contains("unknown field `alpn`"), "{message}");
    }

    #[test]
    fn the_ca_file_is_read_at_load_and_a_bad_one_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let tls = format!("{{ sni: a.test, ca_file: {} }}", missing.display());
        let message = error_of(&upstream("127.0.0.1:1", &tls));
        assert!(
            message.starts_with("test.yaml: upstreams.b.tls.ca_file: cannot read `")
                && message.contains("missing.pem")
                && message.contains("line 4"),
            "{message}"
        );

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let tls = format!("{{ sni: a.test, ca_file: {} }}", garbage.display());
        let message = error_of(&upstream("127.0.0.1:1", &tls));
        assert!(
            message.contains("upstreams.b.tls.ca_file: `") && message.contains("garbage.pem"),
            "{message}"
        );

        let ca = dir.path().join("ca.pem");
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["ca.test".to_string()]).unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        std::fs::write(&ca, format!("{pem}{pem}")).unwrap();
        let tls = format!("{{ sni: a.test, ca_file: {} }}", ca.display());
        let config = Config::parse(&upstream("127.0.0.1:1", &tls), "t").unwrap();
        let ca_file = config.upstreams.0["b"]
            .tls
            .clone()
            .unwrap()
            .ca_file
            .unwrap();
        assert_eq!(ca_file.certificates.len(), 2);
        assert_eq!(ca_file.path, ca.display().to_string());
    }
}
