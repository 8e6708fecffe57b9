//! Overload protection: `max_requests` caps each peer's requests in
//! flight, the queue holds the excess for a bounded time (503 when it is
//! full or the wait runs out), and `retry_budget` keeps retries to a share
//! of the requests in flight on a pool where every peer fails. The
//! scenarios print their figures.

mod common;

use common::{Backend, Balancer, Load, LoadReport, Scrape};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Clients for two peers of `max_requests: 2`: three times their slots.
const CLIENTS: usize = 12;

/// Demo backends named `names`, each answering `/api/data` in `delay_ms`.
fn backends(names: &[&str], delay_ms: u64) -> Vec<Backend> {
    names
        .iter()
        .map(|name| Backend::start(name, delay_ms))
        .collect()
}

/// The `backend` upstream over `backends`, probed on `/metrics` (which
/// answers 200 whatever status `/api/data` gives) once a minute, with
/// `settings` (YAML lines at the upstream's indentation).
fn upstream_over(backends: &[Backend], settings: &str) -> String {
    let mut text = String::from("  backend:\n    peers:\n");
    for backend in backends {
        text.push_str(&format!("      - {}\n", backend.addr));
    }
    text.push_str("    health_check: { path: /metrics, interval: 60s }\n");
    for line in settings.lines() {
        text.push_str(&format!("    {line}\n"));
    }
    text
}

/// The highest values the metrics showed while a sampler ran.
#[derive(Debug, Default)]
struct Peaks {
    /// Each peer's `switchyard_peer_requests_in_flight`, in peer order.
    in_flight: Vec<f64>,
    queued: f64,
    samples: usize,
}

/// Scrapes the balancer's metrics over and over, keeping the peaks.
struct Sampler {
    stop: Arc<AtomicBool>,
    worker: JoinHandle<Peaks>,
}

impl Sampler {
    fn start(balancer: &Balancer, peers: Vec<SocketAddr>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let metrics = format!("http://{}/metrics", balancer.metrics);
        let worker = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut peaks = Peaks {
                    in_flight: vec![0.0; peers.len()],
                    ..Peaks::default()
                };
                while !stop.load(Ordering::Relaxed) {
                    let scrape = Scrape::parse(&common::get(&metrics).1);
                    for (peak, peer) in peaks.in_flight.iter_mut().zip(&peers) {
                        let labels = [("upstream", "backend"), ("peer", &*peer.to_string())];
                        let now = scrape
                            .sum("switchyard_peer_requests_in_flight", &labels)
                            .unwrap_or(0.0);
                        *peak = peak.max(now);
                    }
                    let queued = scrape
                        .sum("switchyard_upstream_queued_requests", &[])
                        .unwrap_or(0.0);
                    peaks.queued = peaks.queued.max(queued);
                    peaks.samples += 1;
                }
                peaks
            })
        };
        Sampler { stop, worker }
    }

    fn finish(self) -> Peaks {
        self.stop.store(true, Ordering::Relaxed);
        self.worker.join().expect("sampler")
    }
}

/// `clients` keep-alive clients on the balancer's `/api/data` for
/// `duration`, the metrics sampled meanwhile.
fn load_and_sample(
    balancer: &Balancer,
    backends: &[Backend],
    clients: usize,
    duration: Duration,
) -> (LoadReport, Peaks) {
    let sampler = Sampler::start(balancer, backends.iter().map(|b| b.addr).collect());
    let load = Load::start(&balancer.url("/api/data"), clients);
    std::thread::sleep(duration);
    let report = load.finish();
    (report, sampler.finish())
}

/// `switchyard_upstream_queue_total{result}` of the `backend` upstream.
fn queue_total(balancer: &Balancer, result: &str) -> f64 {
    let labels = [("upstream", "backend"), ("result", result)];
    balancer
        .scrape()
        .sum("switchyard_upstream_queue_total", &labels)
        .unwrap_or(0.0)
}

#[test]
fn max_requests_caps_every_peer_and_the_queue_serves_the_excess() {
    let backends = backends(&["b1", "b2"], 100);
    let settings = "max_requests: 2\nqueue: { size: 100, timeout: 5s }";
    let balancer = Balancer::start(&upstream_over(&backends, settings));
    let (report, peaks) = load_and_sample(&balancer, &backends, CLIENTS, Duration::from_secs(2));
    let served = queue_total(&balancer, "served");
    println!(
        "max_requests: 2, queue of 100, 2 peers at 100 ms, {CLIENTS} clients: {} requests, \
         {} errors, slowest {:?}, peak in flight per peer {:?}, peak queued {}, \
         {served} served from the queue ({} samples)",
        report.requests,
        report.errors,
        report.max_latency,
        peaks.in_flight,
        peaks.queued,
        peaks.samples
    );
    assert_eq!(report.errors, 0, "{:?}", report.samples);
    assert!(peaks.in_flight.iter().all(|&n| n <= 2.0), "{peaks:?}");
    assert!(peaks.in_flight.iter().all(|&n| n >= 1.0), "{peaks:?}");
    assert!(peaks.queued >= 1.0, "nothing was seen waiting: {peaks:?}");
    assert!(served >= 1.0, "no request was served from the queue");
    // 4 slots of 100 ms for 12 clients: about 300 ms each, far from 5 s.
    assert!(report.max_latency < Duration::from_secs(3), "{report:?}");
    assert_eq!(queue_total(&balancer, "timeout"), 0.0);
    assert_eq!(queue_total(&balancer, "full"), 0.0);
}

#[test]
fn without_a_queue_the_excess_gets_503_at_once() {
    let backends = backends(&["b1", "b2"], 100);
    let balancer = Balancer::start(&upstream_over(&backends, "max_requests: 2"));
    let (report, peaks) = load_and_sample(&balancer, &backends, CLIENTS, Duration::from_secs(1));
    let served = report.requests - report.errors;
    println!(
        "max_requests: 2, no queue, 2 peers at 100 ms, {CLIENTS} clients: {} requests, \
         {served} served, {} answered 503, peak in flight per peer {:?}",
        report.requests, report.server_errors, peaks.in_flight
    );
    assert!(peaks.in_flight.iter().all(|&n| n <= 2.0), "{peaks:?}");
    // 4 slots of 100 ms for a second: about 40 served, the rest refused.
    assert!(served >= 10, "{report:?}");
    assert_eq!(report.server_errors, report.errors, "{:?}", report.samples);
    assert!(report.server_errors > served, "{report:?}");
    assert!(
        report
            .samples
            .iter()
            .all(|s| s.starts_with("503") && s.contains("every peer is at max_requests")),
        "{:?}",
        report.samples
    );
}

#[test]
fn a_full_queue_refuses_at_once_and_a_wait_ends_at_the_queue_timeout() {
    let backends = [Backend::start("slow", 2500)];
    let settings = "max_requests: 1\nqueue: { size: 1, timeout: 1s }";
    let balancer = Balancer::start(&upstream_over(&backends, settings));
    let url = balancer.url("/api/data");
    let timed_get = |url: String| {
        std::thread::spawn(move || {
            let started = Instant::now();
            let answer = common::get(&url);
            (answer, started.elapsed())
        })
    };
    // The peer's one slot, taken for 2.5 s.
    let holder = timed_get(url.clone());
    // Wait until `metric` of the upstream is 1.
    let reaches_one = |metric: &str| {
        let one = |scrape: &Scrape| scrape.sum(metric, &[("upstream", "backend")]) == Some(1.0);
        assert!(one(&balancer.scrape_when(one)), "{metric} is not 1");
    };
    reaches_one("switchyard_peer_requests_in_flight");
    // The queue's one place.
    let waiter = timed_get(url.clone());
    reaches_one("switchyard_upstream_queued_requests");
    let ((status, body), refused_after) = timed_get(url).join().expect("third client");
    let ((wait_status, wait_body), waited) = waiter.join().expect("waiting client");
    let ((held_status, _), held) = holder.join().expect("first client");
    println!(
        "max_requests: 1, queue of 1 for 1 s, a peer at 2.5 s: a full queue refused in \
         {refused_after:?}, a wait ended in {waited:?}, the first request took {held:?}"
    );
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("the queue is full"), "{body}");
    assert!(
        refused_after < Duration::from_millis(500),
        "{refused_after:?}"
    );
    assert_eq!(wait_status, 503, "{wait_body}");
    assert!(wait_body.contains("queue.timeout"), "{wait_body}");
    assert!(
        (Duration::from_millis(950)..Duration::from_millis(2000)).contains(&waited),
        "{waited:?}"
    );
    assert_eq!(held_status, 200);
    assert_eq!(queue_total(&balancer, "full"), 1.0);
    assert_eq!(queue_total(&balancer, "timeout"), 1.0);
    assert_eq!(queue_total(&balancer, "served"), 0.0);
}

/// The `/api/data` requests `backends` have answered, together.
fn data_requests(backends: &[Backend]) -> f64 {
    backends.iter().map(Backend::data_requests).sum()
}

#[test]
fn a_retry_budget_keeps_retries_to_its_share_of_a_failing_pool() {
    const CLIENTS: usize = 20;
    let backends = backends(&["b1", "b2", "b3"], 10);
    for backend in &backends {
        assert_eq!(backend.switch(), 500);
    }
    let retrying = "retries: 2\nretry_on_status: [500]";
    let mut attempts_per_request = Vec::new();
    for budget in [None, Some("20%")] {
        let settings = match budget {
            Some(budget) => format!("{retrying}\nretry_budget: {budget}"),
            None => retrying.to_string(),
        };
        let balancer = Balancer::start(&upstream_over(&backends, &settings));
        let before = data_requests(&backends);
        let load = Load::start(&balancer.url("/api/data"), CLIENTS);
        std::thread::sleep(Duration::from_millis(1500));
        let report = load.finish();
        let attempts = data_requests(&backends) - before;
        let ratio = attempts / report.requests as f64;
        let refused = balancer
            .scrape()
            .sum("switchyard_upstream_retries_refused_total", &[])
            .unwrap_or(0.0);
        println!(
            "every peer answering 500, retries: 2, retry_budget: {}, {CLIENTS} clients: \
             {} requests, {attempts} attempts at the peers ({ratio:.2} per request), \
             {refused} retries refused",
            budget.unwrap_or("none"),
            report.requests
        );
        assert_eq!(
            report.server_errors, report.requests,
            "{:?}",
            report.samples
        );
        match budget {
            None => assert_eq!(refused, 0.0),
            Some(_) => assert!(refused > 0.0, "the budget refused nothing"),
        }
        attempts_per_request.push(ratio);
    }
    // Without a budget every request tries all three peers; with 20 %,
    // retries are at most a fifth of what is in flight (at least 3).
    assert!(attempts_per_request[0] > 2.8, "{attempts_per_request:?}");
    assert!(attempts_per_request[1] < 1.4, "{attempts_per_request:?}");
}
