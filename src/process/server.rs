//! Assembling the Pingora server from a [`Config`]: the live snapshot, the
//! probe schedule, the proxy (and its access log), the metrics endpoint,
//! the admin API, readiness, signals, and the order they start in.

use super::readiness::{Readiness, LISTENER_LIMIT};
use super::reload::FileReload;
use super::signals::SignalHandler;
use crate::admin::api::AdminApi;
use crate::admin::auth::Access;
use crate::config::{Config, DEFAULT_BUFFER};
use crate::hooks::{HookSet, HookTypes};
use crate::http::access_log::AccessLog;
use crate::http::proxy::Balancer;
use crate::listen::drain::Draining;
use crate::listen::guard::ConnectionGuard;
use crate::listen::listeners::ListenerSet;
use crate::live::discovery::{self, DiscoveryService};
use crate::live::probes::ProbeService;
use crate::live::Live;
use pingora_core::apps::HttpServerOptions;
use pingora_core::listeners::{L4BufferSettings, ListenerConfig};
use pingora_core::protocols::http::v2::server::H2Options;
use pingora_core::server::configuration::Opt;
use pingora_core::server::Server;
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;
use pingora_error::Result;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A server ready to `run_forever`, serving `config` with `hooks` (its
/// instances of `hook_types`) and `listeners` (its certificates loaded), which SIGHUP re-reads from `file` (`None`:
/// the built-in one). With `-u` this blocks until the running switchyard
/// hands over its listening sockets.
pub fn build(
    config: Config,
    file: Option<PathBuf>,
    opt: Opt,
    hook_types: Arc<HookTypes>,
    hooks: HookSet,
    listeners: ListenerSet,
) -> Result<Server> {
    let config = &config;
    // Before the listeners of an old process (`-u`) are taken over: until
    // they are, it still serves.
    let (discovered, _) = discovery::resolve_at_start(config);
    for warning in config.warnings() {
        log::warn!("{warning}");
    }
    let daemon = opt.daemon || config.server.daemon;
    let mut conf = config.server.to_server_conf();
    // `-d` returns once the listeners accept: Readiness sends the signal.
    conf.daemon_wait_for_ready = true;
    conf.daemon_ready_timeout_seconds = NonZeroU64::new(ready_limit(config).as_secs());
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    // Before the fork of `-d`: the listeners of the old process (`-u`) are
    // inherited, and Pingora's own early readiness signal, sent from a
    // bootstrap that runs after the fork, is skipped in favour of ours.
    server.bootstrap();

    let live = Arc::new(Live::new(
        config.clone(),
        discovered,
        hook_types,
        hooks,
        listeners,
    )?);
    server.add_service(background_service(
        "DNS discovery",
        DiscoveryService::new(Arc::clone(&live)),
    ));
    let probes = server.add_service(background_service(
        "health checks",
        ProbeService::new(Arc::clone(&live)),
    ));

    // Its writer thread starts with the first line, after `-d` forks.
    let queue = config
        .access_log
        .as_ref()
        .map_or(DEFAULT_BUFFER, |a| a.buffer.0);
    let access_log = Arc::new(AccessLog::new(queue));
    let balancer = Balancer::new(Arc::clone(&live), Arc::clone(&access_log));
    let mut http = pingora_proxy::http_proxy(&server.configuration, balancer);
    http.h2_options = Some(http2_options(config));
    let mut options = HttpServerOptions::default();
    // An HTTP/2 connection without streams is idle like an HTTP/1 one.
    options.h2_idle_timeout = Some(config.limits.keepalive_timeout.0);
    http.server_options = Some(options);
    let app = ConnectionGuard::new(
        Draining::new(http),
        config.limits.max_connections.0,
        Arc::clone(&live),
    );
    let mut proxy = Service::new("switchyard proxy".to_string(), app);
    for listener in &config.listen.0 {
        proxy.add_listener(client_listener(
            &listener.addr.0.to_string(),
            listener.tls.is_some(),
        ));
    }
    // The proxy starts listening only after every upstream's first probe
    // round: a peer that is down at startup never sees a client request.
    let proxy_handle = server.add_service(proxy);
    proxy_handle.add_dependencies([&probes]);

    let mut metrics = pingora_prometheus::prometheus_http_service();
    metrics.add_tcp(&config.metrics.0.to_string());
    let mut listening: Vec<_> = config.listen.addrs().collect();
    listening.push(config.metrics.0);
    let mut listeners = vec![proxy_handle, server.add_service(metrics)];

    let reload = Arc::new(FileReload::new(Arc::clone(&live), file));
    if let Some(admin) = &config.admin {
        let token = admin.token().map_err(|e| {
            pingora_error::Error::explain(pingora_error::ErrorType::InternalError, e)
        })?;
        let api = AdminApi::new(live, Access::new(token), Box::new(Arc::clone(&reload)));
        let mut service = Service::new("switchyard admin".to_string(), api);
        service.add_tcp(&admin.listen.0.to_string());
        listening.push(admin.listen.0);
        listeners.push(server.add_service(service));
    }

    // This process's pid is still the foreground one here; the daemon child
    // inherits the value and signals it once the listeners accept.
    let notify_pid = daemon.then(std::process::id);
    let readiness = Readiness::new(listening, notify_pid);
    let readiness_handle = server.add_service(background_service("readiness", readiness));
    readiness_handle.add_dependencies(&listeners);

    // In daemon mode stderr is the error log, which SIGUSR1 reopens.
    let log_file = config.server.error_log.clone().filter(|_| daemon);
    server.add_service(background_service(
        "signals",
        SignalHandler::new(log_file, access_log, reload),
    ));

    Ok(server)
}

/// How long `-d` waits for the daemon: the first probe round (which the
/// proxy waits for), then the listeners.
fn ready_limit(config: &Config) -> Duration {
    let slowest_probe = config
        .upstreams
        .0
        .values()
        .map(|u| u.health_check.timeout.0)
        .max()
        .unwrap_or_default();
    slowest_probe + LISTENER_LIMIT + Duration::from_secs(10)
}

/// A client-facing listener. Pingora puts a 64 KiB read buffer in front of
/// every accepted connection: under TLS it saves reads (records come in
/// 16 KiB pieces, each a header and a body), so TLS listeners keep it; on
/// plain TCP it only adds a copy of every request from that buffer into
/// Pingora's header buffer, and 64 KiB of memory per open connection, idle
/// ones included, so there reads go straight to the socket. The small write
/// buffer, which lets a response header and a short body leave in one send,
/// stays. The TLS handshake itself is the connection guard's (the listener
/// is plain TCP to Pingora).
fn client_listener(address: &str, tls: bool) -> ListenerConfig {
    let listener = ListenerConfig::tcp(address);
    if tls {
        listener
    } else {
        listener.l4_buffer(L4BufferSettings::default().read(0))
    }
}

/// HTTP/2 towards clients: `limits.http2_max_streams` concurrent streams,
/// header lists up to `limits.max_header_bytes` (larger ones are refused
/// by the h2 codec before the proxy sees them; admission answers 431 to
/// those that fit it but not the header count).
fn http2_options(config: &Config) -> H2Options {
    let limits = &config.limits;
    let mut options = H2Options::default();
    options.max_concurrent_streams(limits.http2_max_streams.0);
    options.max_header_list_size(u32::try_from(limits.max_header_bytes.0).unwrap_or(u32::MAX));
    options
}
