//! The floor under switchyard, for the benchmark: the smallest balancer
//! Pingora can be, Pingora's own quick-start load balancer. Round robin over
//! a `pingora-load-balancing` [`LoadBalancer`], keep-alive to the peers, and
//! nothing else: no health checks, no metrics, no retries, no limits.
//!
//! ```text
//! cargo run --profile dist --example minimal_balancer -- --listen 127.0.0.1:8080 \
//!     127.0.0.1:8001 127.0.0.1:8002 127.0.0.1:8003
//! ```
//!
//! `bench/run.sh` builds it with switchyard's allocator and dist profile but
//! without switchyard's profile-guided optimization: what Pingora gives out
//! of the box, next to which `bench/bench.py` measures switchyard.

use async_trait::async_trait;
use clap::Parser;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_load_balancing::selection::RoundRobin;
use pingora_load_balancing::LoadBalancer;
use pingora_proxy::{ProxyHttp, Session};
use std::net::SocketAddr;
use std::sync::Arc;
// The same allocator, configured the same way, as the switchyard binary.
#[path = "../src/allocator.rs"]
mod allocator;

#[derive(Debug, Parser)]
#[command(about = "the smallest Pingora balancer (benchmark baseline)")]
struct Args {
    /// Address to listen on
    #[arg(long)]
    listen: SocketAddr,
    /// Worker threads
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The peers, ip:port
    #[arg(required = true)]
    peers: Vec<SocketAddr>,
}

struct Minimal(Arc<LoadBalancer<RoundRobin>>);

#[async_trait]
impl ProxyHttp for Minimal {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        let Some(backend) = self.0.select(b"", 256) else {
            return Error::e_explain(ErrorType::HTTPStatus(503), "no peer");
        };
        Ok(Box::new(HttpPeer::new(backend, false, String::new())))
    }
}

fn main() {
    let args = Args::parse();
    let conf = ServerConf {
        threads: args.threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let peers = args.peers.iter().map(SocketAddr::to_string);
    let balancer = match LoadBalancer::try_from_iter(peers) {
        Ok(balancer) => Arc::new(balancer),
        Err(e) => {
            eprintln!("minimal_balancer: {e}");
            std::process::exit(2);
        }
    };
    let mut proxy = pingora_proxy::http_proxy_service(&server.configuration, Minimal(balancer));
    proxy.add_tcp(&args.listen.to_string());
    server.add_service(proxy);
    server.run_forever();
}
