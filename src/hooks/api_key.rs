//! `api_key`: requests must carry a known key in a header, or get 401.
//!
//! ```yaml
//! hooks:
//!   partner_keys: { type: api_key, keys_file: /etc/switchyard/keys.txt, header: x-api-key }
//! ```
//! The keys file holds one key per line (blank lines and lines starting
//! with `#` are skipped); a reload reads it again, as the user the process
//! runs as (`server.user` after a daemon drops privileges). A request with
//! the header more than once is refused too. Keys are kept as their
//! SHA-256 digests and a presented key is compared in constant time, so
//! that how long a refusal takes says nothing about the keys.

use super::{async_trait, Answer, Hook, Request, Verdict};
use http::{HeaderName, HeaderValue, StatusCode};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use subtle::ConstantTimeEq;

/// The settings of an `api_key` instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySettings {
    /// The file of keys, one per line.
    pub keys_file: PathBuf,
    /// The header that carries the key; default `x-api-key`.
    #[serde(default = "default_header", with = "header_name")]
    pub header: HeaderName,
}

fn default_header() -> HeaderName {
    HeaderName::from_static("x-api-key")
}

mod header_name {
    use http::HeaderName;
    use serde::{de, Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<HeaderName, D::Error> {
        let text = String::deserialize(d)?;
        HeaderName::from_bytes(text.as_bytes())
            .map_err(|_| de::Error::custom(format!("`{text}` is not a header name")))
    }
}

/// An `api_key` instance: the digests of the keys its file held when it
/// was built.
pub struct ApiKey {
    settings: ApiKeySettings,
    /// Each key's digest, by its first 8 bytes.
    digests: HashMap<[u8; 8], Vec<[u8; 32]>>,
}

impl ApiKey {
    /// An instance with the keys `settings.keys_file` holds now.
    pub fn from_config(settings: ApiKeySettings) -> Result<ApiKey, String> {
        let file = &settings.keys_file;
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("keys_file: cannot read {}: {e}", file.display()))?;
        let mut digests: HashMap<[u8; 8], Vec<[u8; 32]>> = HashMap::new();
        // A file saved with a byte order mark would make the first key
        // unknown.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        for key in text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
        {
            let digest = digest(key.as_bytes());
            digests.entry(prefix(&digest)).or_default().push(digest);
        }
        if digests.is_empty() {
            log::warn!(
                "api_key: {} holds no key: every request will get 401",
                file.display()
            );
        }
        Ok(ApiKey { settings, digests })
    }

    /// Whether `key` is one of the keys.
    fn knows(&self, key: &[u8]) -> bool {
        let digest = digest(key);
        self.digests
            .get(&prefix(&digest))
            .is_some_and(|candidates| {
                candidates
                    .iter()
                    .fold(0u8, |found, c| found | c.ct_eq(&digest).unwrap_u8())
                    == 1
            })
    }
}

fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

fn prefix(digest: &[u8; 32]) -> [u8; 8] {
    let mut prefix = [0; 8];
    prefix.copy_from_slice(&digest[..8]);
    prefix
}

#[async_trait]
impl Hook for ApiKey {
    async fn on_request(&self, request: &mut Request<'_>) -> Verdict {
        // One value, and a known one: with two, a peer that reads the other
        // would take the client for someone it is not.
        let mut values = request.headers().get_all(&self.settings.header).iter();
        let known = match (values.next(), values.next()) {
            (Some(key), None) => self.knows(key.as_bytes()),
            _ => false,
        };
        if known {
            return Verdict::Continue;
        }
        let body = format!(
            "401 Unauthorized: a known key is needed in {}\n",
            self.settings.header
        );
        Verdict::Answer(
            Answer::new(StatusCode::UNAUTHORIZED)
                .header(
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("ApiKey"),
                )
                .body(body),
        )
    }

    /// The keys file is read again.
    fn reload(&self) -> Result<Option<Box<dyn Hook>>, String> {
        let fresh = ApiKey::from_config(self.settings.clone())?;
        Ok(Some(Box::new(fresh)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn keys_come_from_the_file_and_unknown_ones_are_not_known() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "# partners\nalpha-key\n\n  beta-key  \n").unwrap();
        let hook = ApiKey::from_config(ApiKeySettings {
            keys_file: file.path().to_path_buf(),
            header: default_header(),
        })
        .unwrap();
        assert!(hook.knows(b"alpha-key") && hook.knows(b"beta-key"));
        assert!(!hook.knows(b"alpha") && !hook.knows(b"") && !hook.knows(b"# partners"));
        let missing = ApiKey::from_config(ApiKeySettings {
            keys_file: "/nonexistent/keys".into(),
            header: default_header(),
        });
        assert!(missing
            .err()
            .unwrap()
            .starts_with("keys_file: cannot read /nonexistent/keys"));
    }
}
