//! PEM files a configuration names (certificates, CA files, keys): read
//! when the configuration is loaded, with errors that name the file.

use pingora_core::tls::x509::X509;
use std::path::Path;

/// The bytes of the file at `path`.
pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
}

/// The certificates in the PEM file at `path`, in order; at least one.
pub fn certificates(path: &Path) -> Result<Vec<X509>, String> {
    let shown = path.display();
    let certificates = X509::stack_from_pem(&read(path)?)
        .map_err(|e| format!("`{shown}` is not PEM certificates: {e}"))?;
    if certificates.is_empty() {
        return Err(format!("`{shown}` holds no PEM certificate"));
    }
    Ok(certificates)
}
