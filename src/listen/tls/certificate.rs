//! One certificate of a TLS listener, read from its files and checked
//! before any client sees it: readable, its key its own, its chain in
//! order. Expiry is not an error (nginx and HAProxy serve a lapsed
//! certificate too, and one site's lapse must not block every reload):
//! it is reported with the certificate's names and date.

use crate::config::{pem, CertificateFiles};
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509Ref, X509VerifyResult, X509};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A certificate within this long of its end is reported as expiring.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// A certificate and its key, checked.
pub struct Certificate {
    /// The leaf, then its chain.
    pub chain: Vec<X509>,
    pub key: PKey<Private>,
    /// The DNS names it is for (subject alternative names; the subject's
    /// common name when it has none), lowercase.
    pub names: Vec<String>,
    /// The certificate file, as configured.
    pub file: String,
    /// When the leaf expires, in seconds since the Unix epoch.
    pub not_after: i64,
}

impl Certificate {
    /// Read and check `files`; what is wrong, naming the file, otherwise.
    pub fn load(files: &CertificateFiles) -> Result<Certificate, String> {
        let file = files.cert.display().to_string();
        let chain = pem::certificates(&files.cert)?;
        let leaf = &chain[0];
        let key_file = files.key.display();
        let key = PKey::private_key_from_pem(&pem::read(&files.key)?)
            .map_err(|e| format!("{key_file} is not a PEM private key: {e}"))?;
        let public = leaf
            .public_key()
            .map_err(|e| format!("{file}: cannot read its public key: {e}"))?;
        if !public.public_eq(&key) {
            return Err(format!(
                "{key_file} is not the private key of the certificate in {file}"
            ));
        }
        for (at, pair) in chain.windows(2).enumerate() {
            if pair[1].issued(&pair[0]) != X509VerifyResult::OK {
                return Err(format!(
                    "{file}: certificate {} of the chain did not issue certificate {at} \
                     (leaf first, then each issuer in turn)",
                    at + 1
                ));
            }
        }
        let not_after = unix_time(leaf.not_after())
            .map_err(|e| format!("{file}: cannot read its expiry date: {e}"))?;
        Ok(Certificate {
            names: names_of(leaf),
            chain,
            key,
            file,
            not_after,
        })
    }

    /// The name it is shown by: its first name, or its file.
    pub fn label(&self) -> &str {
        self.names.first().map_or(&self.file, String::as_str)
    }

    /// A word about its expiry at `now`, if it is expired or expires within
    /// [`EXPIRY_WARNING`].
    pub fn expiry_warning(&self, now: SystemTime) -> Option<String> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let left = self.not_after - now;
        let days = left.abs() / 86_400;
        if left <= 0 {
            Some(format!(
                "the certificate {} ({}) expired {days} days ago; it is still served",
                self.file,
                self.label()
            ))
        } else if left < EXPIRY_WARNING.as_secs() as i64 {
            Some(format!(
                "the certificate {} ({}) expires in {days} days",
                self.file,
                self.label()
            ))
        } else {
            None
        }
    }
}

/// The DNS names of `cert`, lowercase.
fn names_of(cert: &X509Ref) -> Vec<String> {
    let alternative: Vec<String> = cert
        .subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.dnsname().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default();
    if !alternative.is_empty() {
        return alternative;
    }
    cert.subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .filter_map(|e| e.data().to_string().ok().map(|s| s.to_ascii_lowercase()))
        .collect()
}

/// `time` in seconds since the Unix epoch.
fn unix_time(time: &Asn1TimeRef) -> Result<i64, openssl::error::ErrorStack> {
    let epoch = Asn1Time::from_unix(0)?;
    let diff = epoch.diff(time)?;
    Ok(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}
