//! Load: keep-alive clients in a loop, and what they saw.

use super::client::{agent, request};
use std::time::{Duration, Instant};

/// What a load run saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub requests: usize,
    pub errors: usize,
    /// Requests answered with a 5xx status.
    pub server_errors: usize,
    /// The slowest request.
    pub max_latency: Duration,
    /// A few of the errors, for the failure message.
    pub samples: Vec<String>,
}

/// Keep-alive clients that GET `url` in a loop until stopped.
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    workers: Vec<std::thread::JoinHandle<LoadReport>>,
}

impl Load {
    /// Start `clients` keep-alive clients on `url`; a request counts as
    /// failed unless it gets a 200.
    pub fn start(url: &str, clients: usize) -> Load {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let workers = (0..clients)
            .map(|_| {
                let url = url.to_string();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let agent = agent();
                    let mut report = LoadReport::default();
                    while !stop.load(Ordering::Relaxed) {
                        report.requests += 1;
                        let started = Instant::now();
                        let outcome = request(&agent, &url);
                        report.max_latency = report.max_latency.max(started.elapsed());
                        let failure = match outcome {
                            Ok((200, _)) => None,
                            Ok((status, body)) => {
                                if status >= 500 {
                                    report.server_errors += 1;
                                }
                                Some(format!("{status}: {body}"))
                            }
                            Err(e) => Some(e.to_string()),
                        };
                        if let Some(failure) = failure {
                            report.errors += 1;
                            if report.samples.len() < 5 {
                                report.samples.push(failure);
                            }
                        }
                    }
                    report
                })
            })
            .collect();
        Load { stop, workers }
    }

    /// Stop the clients and add up what they saw.
    pub fn finish(self) -> LoadReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut total = LoadReport::default();
        for worker in self.workers {
            let report = worker.join().expect("load client");
            total.requests += report.requests;
            total.errors += report.errors;
            total.server_errors += report.server_errors;
            total.max_latency = total.max_latency.max(report.max_latency);
            total.samples.extend(report.samples);
        }
        total
    }
}
