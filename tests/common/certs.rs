//! Certificates made when a test runs: a test CA and the server
//! certificates it signs (ECDSA P-256), written as PEM files. No private
//! key is ever committed.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// A certificate authority of one test.
pub struct TestCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// The PEM files of a certificate and its key.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA, valid from yesterday for a year, named `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(365);
        let key = KeyPair::generate().expect("CA key");
        let pem = params.self_signed(&key).expect("CA certificate").pem();
        TestCa {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA's certificate, written to `dir/NAME.pem`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, &self.pem).expect("write the CA certificate");
        path
    }

    /// A server certificate for `names` (DNS names or IP addresses) that
    /// expires in `days` (negative: expired), written to `dir/STEM.pem` and
    /// `dir/STEM.key`.
    pub fn issue(&self, dir: &Path, stem: &str, names: &[&str], days: i64) -> CertFiles {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("server params");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.not_before = OffsetDateTime::now_utc() - Duration::days(2);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(days);
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        let files = CertFiles {
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).expect("write the certificate");
        std::fs::write(&files.key, key.serialize_pem()).expect("write the key");
        files
    }
}
