//! Assembling the Pingora server from a [`Config`]: the health-check
//! services, the proxy, the metrics endpoint, and the order they start in.

use crate::config::Config;
use crate::proxy::Balancer;
use crate::router::Router;
use crate::upstream::Upstream;
use pingora_core::server::configuration::Opt;
use pingora_core::server::Server;
use pingora_core::services::background::background_service;
use pingora_error::Result;
use std::sync::Arc;

/// A server ready to `run_forever`.
pub fn build(config: &Config, opt: Opt) -> Result<Server> {
    let mut server = Server::new_with_opt_and_conf(opt, config.server.to_server_conf());
    server.bootstrap();

    let mut upstreams = Vec::with_capacity(config.upstreams.0.len());
    let mut probe_handles = Vec::with_capacity(config.upstreams.0.len());
    for (name, upstream_config) in &config.upstreams.0 {
        let (upstream, probes) = Upstream::build(name, upstream_config)?;
        let service = background_service(&format!("health checks of upstream {name}"), probes);
        probe_handles.push(server.add_service(service));
        upstreams.push(Arc::new(upstream));
    }

    let balancer = Balancer::new(Router::new(upstreams), config.status_path.0.clone());
    let mut proxy = pingora_proxy::http_proxy_service_with_name(
        &server.configuration,
        balancer,
        "switchyard proxy",
    );
    proxy.add_tcp(&config.listen.0.to_string());
    // The proxy starts listening only after every upstream's first probe
    // round: a peer that is down at startup never sees a client request.
    let proxy_handle = server.add_service(proxy);
    proxy_handle.add_dependencies(&probe_handles);

    let mut metrics = pingora_prometheus::prometheus_http_service();
    metrics.add_tcp(&config.metrics.0.to_string());
    server.add_service(metrics);

    Ok(server)
}
