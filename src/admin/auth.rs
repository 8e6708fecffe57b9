//! Who may use the admin API: with a token, only requests that present it
//! (`Authorization: Bearer <token>`), compared in constant time so that the
//! time an answer takes tells nothing about how much of a guess was right.
//! Without one, anyone who can reach the listener, which the configuration
//! allows only on a loopback address.

use subtle::ConstantTimeEq;

/// The admin API's access rule.
pub struct Access {
    token: Option<Vec<u8>>,
}

impl Access {
    /// Requests must present `token`; `None`: every request is let in.
    pub fn new(token: Option<String>) -> Self {
        Access {
            token: token.map(String::into_bytes),
        }
    }

    /// Whether a request with this `Authorization` header value is let in.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let presented = authorization
            .and_then(|value| {
                let scheme = value.get(..7)?;
                scheme
                    .eq_ignore_ascii_case(b"bearer ")
                    .then(|| value[7..].trim_ascii())
            })
            .unwrap_or_default();
        // `ct_eq` on slices of different lengths is false at once: the
        // length of the token is not a secret worth hiding.
        bool::from(presented.ct_eq(token.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_let_in() {
        let access = Access::new(Some("s3cret".to_string()));
        assert!(access.allows(Some(b"Bearer s3cret")));
        assert!(access.allows(Some(b"bearer s3cret")));
        assert!(!access.allows(Some(b"Bearer s3cre")));
        assert!(!access.allows(Some(b"Bearer s3cretx")));
        assert!(!access.allows(Some(b"Basic s3cret")));
        assert!(!access.allows(Some(b"Bearer ")));
        assert!(!access.allows(Some(b"Bear")));
        assert!(!access.allows(None));
        assert!(Access::new(None).allows(None));
    }
}
