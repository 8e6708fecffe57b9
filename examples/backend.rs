//! The demo backend: the API of the seed system's Node Express backends,
//! so the whole balancer setup runs and is tested on one machine.
//!
//! ```text
//! cargo run --release --example backend -- --listen 127.0.0.1:8001 --name b1 --delay-ms 200
//! ```
//!
//! - `GET /api/status`: the current status (200 on, 500 switched off), as
//!   the HTTP status and in a small JSON body
//! - `GET|POST /api/switch`: toggles between 200 and 500, answers the new one
//! - `GET /api/data`: after `--delay-ms`, `{"message":"Response delay is 200 ms",
//!   "status":200,"backend":"b1"}` with the current status as the HTTP status
//! - `GET /metrics`: Prometheus metrics of this backend
//! - anything else: 404 (405 for a known path with the wrong method)
//!
//! Built on Pingora's HTTP server app ([`ServeHttp`]): each request is a task
//! of its own, so the delay never holds up other requests.

use async_trait::async_trait;
use clap::Parser;
use http::{header, Method, Response};
use pingora_core::apps::http_app::{HttpServer, ServeHttp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::services::listening::Service;
use prometheus::{
    register_histogram_vec, register_int_counter_vec, register_int_gauge, Encoder, HistogramVec,
    IntCounterVec, IntGauge, TextEncoder,
};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(about = "switchyard's demo backend (the seed's Express API)")]
struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8001")]
    listen: SocketAddr,
    /// Name reported in responses [default: the listen address]
    #[arg(long)]
    name: Option<String>,
    /// Delay of /api/data, in milliseconds
    #[arg(long, default_value_t = 200)]
    delay_ms: u64,
    /// Status to start with: 200 (on) or 500 (switched off)
    #[arg(long, default_value_t = 200, value_parser = parse_status)]
    status: u16,
    /// Worker threads
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn parse_status(text: &str) -> Result<u16, String> {
    match text {
        "200" => Ok(200),
        "500" => Ok(500),
        _ => Err("must be 200 or 500".to_string()),
    }
}

/// The routes, also the `path` label values (anything else is "other", so a
/// scan of random paths cannot grow the series without bound).
#[derive(Clone, Copy)]
enum Route {
    Status,
    Switch,
    Data,
    Metrics,
    Other,
}

impl Route {
    fn of(path: &str) -> Route {
        match path {
            "/api/status" => Route::Status,
            "/api/switch" => Route::Switch,
            "/api/data" => Route::Data,
            "/metrics" => Route::Metrics,
            _ => Route::Other,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Route::Status => "/api/status",
            Route::Switch => "/api/switch",
            Route::Data => "/api/data",
            Route::Metrics => "/metrics",
            Route::Other => "other",
        }
    }

    fn allows(self, method: &Method) -> bool {
        match self {
            Route::Switch => method == Method::GET || method == Method::POST,
            Route::Other => true,
            _ => method == Method::GET,
        }
    }
}

struct Metrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    status: IntGauge,
}

impl Metrics {
    fn register() -> prometheus::Result<Metrics> {
        Ok(Metrics {
            requests: register_int_counter_vec!(
                "demo_backend_requests_total",
                "Requests answered, by path and HTTP status.",
                &["path", "status"]
            )?,
            duration: register_histogram_vec!(
                "demo_backend_request_duration_seconds",
                "Time to answer a request, by path.",
                &["path"],
                vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 1.0, 2.5]
            )?,
            status: register_int_gauge!(
                "demo_backend_status",
                "The status this backend answers with now: 200 (on) or 500 (switched off)."
            )?,
        })
    }
}

struct Backend {
    name: String,
    delay: Duration,
    status: AtomicU16,
    metrics: Metrics,
}

impl Backend {
    fn current(&self) -> u16 {
        self.status.load(Ordering::Relaxed)
    }

    /// Flip between 200 and 500; returns the new status.
    fn switch(&self) -> u16 {
        let previous = self
            .status
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some(if s == 200 { 500 } else { 200 })
            })
            .unwrap_or(200);
        let now = if previous == 200 { 500 } else { 200 };
        self.metrics.status.set(i64::from(now));
        now
    }

    async fn answer(&self, route: Route, method: &Method) -> (u16, &'static str, Vec<u8>) {
        const JSON: &str = "application/json";
        if !route.allows(method) {
            return (405, "text/plain", b"405 Method Not Allowed\n".to_vec());
        }
        match route {
            Route::Status => {
                let status = self.current();
                (
                    status,
                    JSON,
                    self.json(json!({"status": status, "backend": self.name})),
                )
            }
            Route::Switch => {
                let status = self.switch();
                (
                    200,
                    JSON,
                    self.json(json!({"status": status, "backend": self.name})),
                )
            }
            Route::Data => {
                tokio::time::sleep(self.delay).await;
                let status = self.current();
                let message = format!("Response delay is {} ms", self.delay.as_millis());
                let body = json!({"message": message, "status": status, "backend": self.name});
                (status, JSON, self.json(body))
            }
            Route::Metrics => {
                let encoder = TextEncoder::new();
                let mut body = Vec::new();
                if let Err(e) = encoder.encode(&prometheus::gather(), &mut body) {
                    return (
                        500,
                        "text/plain",
                        format!("cannot encode metrics: {e}\n").into_bytes(),
                    );
                }
                (200, "text/plain; version=0.0.4", body)
            }
            Route::Other => (404, "text/plain", b"404 Not Found\n".to_vec()),
        }
    }

    fn json(&self, value: serde_json::Value) -> Vec<u8> {
        let mut body = value.to_string().into_bytes();
        body.push(b'\n');
        body
    }
}

#[async_trait]
impl ServeHttp for Backend {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let started = Instant::now();
        let route = Route::of(session.req_header().uri.path());
        let method = session.req_header().method.clone();
        // Read and drop any request body so the connection can be reused.
        if let Err(e) = session.drain_request_body().await {
            log::debug!("reading the request body failed: {e}");
        }
        let (status, content_type, body) = self.answer(route, &method).await;
        self.metrics
            .requests
            .with_label_values(&[route.label(), &status.to_string()])
            .inc();
        self.metrics
            .duration
            .with_label_values(&[route.label()])
            .observe(started.elapsed().as_secs_f64());
        let built = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, body.len())
            .body(body);
        built.unwrap_or_else(|e| {
            log::error!("cannot build the response: {e}");
            let mut fallback = Response::new(Vec::new());
            *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        })
    }
}

fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    let metrics = match Metrics::register() {
        Ok(metrics) => metrics,
        Err(e) => {
            eprintln!("backend: cannot register metrics: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    metrics.status.set(i64::from(args.status));
    let backend = Backend {
        name: args.name.unwrap_or_else(|| args.listen.to_string()),
        delay: Duration::from_millis(args.delay_ms),
        status: AtomicU16::new(args.status),
        metrics,
    };

    let conf = ServerConf {
        threads: args.threads.max(1),
        // Stop at once on SIGTERM too: a demo backend has nothing to drain.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = Service::new(
        format!("demo backend {}", backend.name),
        HttpServer::new_app(backend),
    );
    service.add_tcp(&args.listen.to_string());
    server.add_service(service);
    server.run_forever()
}
