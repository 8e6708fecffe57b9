//! The proxy's listeners as the connections arriving on them need them:
//! each one's TLS endpoint and protocols, made from a configuration.
//!
//! A [`ListenerSet`] is made when a configuration is loaded (at start and
//! by a reload, which reads the certificate files again) and kept by the
//! live snapshot; changes of peers (DNS, the admin API) keep it. Listener
//! `i` of the set is the configuration's `listen[i]`; a reload cannot
//! change their addresses, so the index of a listening socket stays valid.

use super::tls::{CertificateInfo, TlsEndpoint};
use crate::config::Listeners;

/// What a connection on one listener is served with.
pub struct ListenerSettings {
    /// `listen[i].addr`, as metrics label it.
    pub label: String,
    /// Its TLS endpoint, if it is a TLS listener.
    pub tls: Option<TlsEndpoint>,
    /// HTTP/2: by ALPN with TLS, by prior knowledge (h2c) without.
    pub http2: bool,
    /// Where `redirect_https` sends clients: the TLS port.
    pub redirect_to: Option<u16>,
    /// Whether connections start with a PROXY protocol header.
    pub proxy_protocol: bool,
}

/// Every listener of one configuration.
pub struct ListenerSet {
    listeners: Vec<ListenerSettings>,
    /// Whether any listener redirects to HTTPS (no lookup per request
    /// otherwise).
    pub redirects: bool,
}

impl ListenerSet {
    /// The listeners of `config`, their certificates read and checked.
    /// An error names the listener's key (`listen[0].tls...`) and the file.
    pub fn load(config: &Listeners) -> Result<ListenerSet, String> {
        let https_port = config.https_port();
        let mut listeners = Vec::with_capacity(config.0.len());
        for (index, listener) in config.0.iter().enumerate() {
            let tls = match &listener.tls {
                Some(tls) => Some(
                    TlsEndpoint::build(tls, listener.http2())
                        .map_err(|e| format!("listen[{index}].{e}{}", listener.at_line))?,
                ),
                None => None,
            };
            listeners.push(ListenerSettings {
                label: listener.addr.0.to_string(),
                tls,
                http2: listener.http2(),
                redirect_to: https_port.filter(|_| listener.redirect_https),
                proxy_protocol: listener.proxy_protocol,
            });
        }
        let redirects = listeners.iter().any(|l| l.redirect_to.is_some());
        Ok(ListenerSet {
            listeners,
            redirects,
        })
    }

    /// Listener `index`.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&ListenerSettings> {
        self.listeners.get(index)
    }

    /// The TLS endpoints of the TLS listeners.
    fn endpoints(&self) -> impl Iterator<Item = &TlsEndpoint> {
        self.listeners.iter().filter_map(|l| l.tls.as_ref())
    }

    /// Every certificate of every listener.
    pub fn certificates(&self) -> impl Iterator<Item = &CertificateInfo> {
        self.endpoints().flat_map(|tls| tls.certificates.iter())
    }

    /// Certificates expired or expiring soon, in words.
    pub fn warnings(&self) -> impl Iterator<Item = &String> {
        self.endpoints().flat_map(|tls| tls.warnings.iter())
    }

    /// The port listener `index` redirects its requests to, if it does.
    pub fn redirect_of(&self, index: usize) -> Option<u16> {
        self.listeners.get(index)?.redirect_to
    }
}
