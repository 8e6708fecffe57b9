//! TLS on a listener: the acceptor made from its certificates, with the
//! SNI choice between them.
//!
//! One acceptor per listener and configuration, built when the
//! configuration is loaded (at start and by every reload), so a reload that
//! changes certificates changes what the next handshake offers, while open
//! connections carry on with theirs. The handshake itself runs in the
//! connection guard (`listen::guard`), not inside Pingora's listener.
//!
//! TLS 1.2 and 1.3 only, with Mozilla's "intermediate" ciphers (OpenSSL's
//! `mozilla_intermediate_v5`). The client's SNI name picks the certificate:
//! one naming it exactly, else one whose wildcard covers it, else the first
//! (nginx's and HAProxy's rule).

pub mod certificate;

use crate::config::{TlsConfig, TlsVersion};
use certificate::Certificate;
use openssl::error::ErrorStack;
use openssl::ssl::{
    select_next_proto, AlpnError, NameType, SniError, SslAcceptor, SslAcceptorBuilder, SslMethod,
    SslVersion,
};

/// ALPN protocols in wire form, in order of preference.
const H2_AND_H1: &[u8] = b"\x02h2\x08http/1.1";
const H1_ONLY: &[u8] = b"\x08http/1.1";

/// What a certificate shows in metrics and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The certificate file, as configured.
    pub file: String,
    /// Its first DNS name.
    pub name: String,
    /// When it expires, in seconds since the Unix epoch.
    pub not_after: i64,
}

/// The TLS side of one listener.
pub struct TlsEndpoint {
    acceptor: SslAcceptor,
    /// Its certificates, in config order.
    pub certificates: Vec<CertificateInfo>,
    /// What to say about them (expired or expiring soon).
    pub warnings: Vec<String>,
}

impl TlsEndpoint {
    /// The endpoint of `config`, offering HTTP/2 by ALPN when `http2`.
    /// Errors name the key under `tls.` and the file.
    pub fn build(config: &TlsConfig, http2: bool) -> Result<TlsEndpoint, String> {
        let mut certificates = Vec::with_capacity(config.certificates.len());
        for (index, files) in config.certificates.iter().enumerate() {
            let certificate =
                Certificate::load(files).map_err(|e| format!("tls.certificates[{index}]: {e}"))?;
            certificates.push(certificate);
        }
        let made = |certificate: &Certificate| {
            acceptor_for(certificate, config.min_version, http2)
                .map_err(|e| format!("tls: {}: {e}", certificate.file))
        };
        // Every certificate gets a whole context (ALPN and versions
        // included: OpenSSL takes them from the context SNI switches to).
        let mut contexts = Vec::with_capacity(certificates.len());
        for certificate in &certificates {
            contexts.push(made(certificate)?.build().into_context());
        }
        let mut first = made(&certificates[0])?;
        let names: Vec<Vec<String>> = certificates.iter().map(|c| c.names.clone()).collect();
        first.set_servername_callback(move |ssl, _alert| {
            let Some(host) = ssl.servername(NameType::HOST_NAME) else {
                return Ok(());
            };
            if let Some(index) = choose(&names, host) {
                if index > 0 {
                    ssl.set_ssl_context(&contexts[index])
                        .map_err(|_| SniError::ALERT_FATAL)?;
                }
            }
            Ok(())
        });
        let now = std::time::SystemTime::now();
        let warnings = certificates
            .iter()
            .filter_map(|c| c.expiry_warning(now))
            .collect();
        Ok(TlsEndpoint {
            acceptor: first.build(),
            certificates: certificates
                .iter()
                .map(|c| CertificateInfo {
                    file: c.file.clone(),
                    name: c.label().to_string(),
                    not_after: c.not_after,
                })
                .collect(),
            warnings,
        })
    }

    /// The acceptor a handshake starts with.
    pub fn acceptor(&self) -> &SslAcceptor {
        &self.acceptor
    }
}

/// The certificate for `host`: named exactly, else by a wildcard; `None`
/// leaves the first.
fn choose(names: &[Vec<String>], host: &str) -> Option<usize> {
    let exact = names
        .iter()
        .position(|n| n.iter().any(|name| name.eq_ignore_ascii_case(host)));
    exact.or_else(|| {
        let (_, parent) = host.split_once('.')?;
        names.iter().position(|n| {
            n.iter().any(|name| {
                name.strip_prefix("*.")
                    .is_some_and(|suffix| suffix.eq_ignore_ascii_case(parent))
            })
        })
    })
}

/// A Mozilla-intermediate acceptor serving `certificate`.
fn acceptor_for(
    certificate: &Certificate,
    min_version: TlsVersion,
    http2: bool,
) -> Result<SslAcceptorBuilder, ErrorStack> {
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    builder.set_min_proto_version(Some(match min_version {
        TlsVersion::Tls12 => SslVersion::TLS1_2,
        TlsVersion::Tls13 => SslVersion::TLS1_3,
    }))?;
    builder.set_certificate(&certificate.chain[0])?;
    for issuer in &certificate.chain[1..] {
        builder.add_extra_chain_cert(issuer.clone())?;
    }
    builder.set_private_key(&certificate.key)?;
    builder.check_private_key()?;
    let offered = if http2 { H2_AND_H1 } else { H1_ONLY };
    builder.set_alpn_select_callback(move |_ssl, client| {
        // A client offering neither gets no ALPN and speaks HTTP/1.1.
        select_next_proto(offered, client).ok_or(AlpnError::NOACK)
    });
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_picks_exact_then_wildcard_then_none() {
        let names = vec![
            vec!["a.example.com".to_string()],
            vec!["*.example.com".to_string()],
            vec!["b.example.com".to_string(), "c.example.org".to_string()],
        ];
        assert_eq!(choose(&names, "a.example.com"), Some(0));
        assert_eq!(choose(&names, "B.Example.com"), Some(2));
        assert_eq!(choose(&names, "x.example.com"), Some(1));
        assert_eq!(choose(&names, "x.y.example.com"), None);
        assert_eq!(choose(&names, "example.com"), None);
        assert_eq!(choose(&names, "other.net"), None);
    }
}
