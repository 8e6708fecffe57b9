//! The demo backend answers exactly like the seed's Express backends.

mod common;

use common::{get, Backend, Scrape};
use std::time::{Duration, Instant};

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn status_switch_and_data_follow_the_seed_api() {
    let backend = Backend::start("b1", 200);

    let (status, body) = get(&backend.url("/api/status"));
    assert_eq!(status, 200);
    assert_eq!(
        json(&body),
        serde_json::json!({"status": 200, "backend": "b1"})
    );

    let started = Instant::now();
    let (status, body) = get(&backend.url("/api/data"));
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(status, 200);
    assert_eq!(
        json(&body),
        serde_json::json!({"message": "Response delay is 200 ms", "status": 200, "backend": "b1"})
    );

    assert_eq!(backend.switch(), 500);
    assert_eq!(get(&backend.url("/api/status")).0, 500);
    let (status, body) = get(&backend.url("/api/data"));
    assert_eq!(status, 500);
    assert_eq!(json(&body)["status"], 500);

    // POST switches too.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(&backend.url("/api/switch"))
        .send_empty()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body = response.body_mut().read_to_string().unwrap();
    assert_eq!(json(&body)["status"], 200);
    assert_eq!(get(&backend.url("/api/status")).0, 200);

    assert_eq!(get(&backend.url("/nothing/here")).0, 404);
    let response = agent.post(&backend.url("/api/data")).send_empty().unwrap();
    assert_eq!(response.status().as_u16(), 405);
}

#[test]
fn metrics_count_requests_by_path_and_status() {
    let backend = Backend::start("b1", 0);
    for _ in 0..3 {
        get(&backend.url("/api/data"));
    }
    backend.switch();
    get(&backend.url("/api/data"));
    get(&backend.url("/random-scan"));

    let (status, body) = get(&backend.url("/metrics"));
    assert_eq!(status, 200);
    let scrape = Scrape::parse(&body);
    let requests = |path: &str, status: &str| {
        scrape.sum(
            "demo_backend_requests_total",
            &[("path", path), ("status", status)],
        )
    };
    assert_eq!(requests("/api/data", "200"), Some(3.0));
    assert_eq!(requests("/api/data", "500"), Some(1.0));
    assert_eq!(requests("/api/switch", "200"), Some(1.0));
    assert_eq!(requests("other", "404"), Some(1.0));
    assert_eq!(scrape.sum("demo_backend_status", &[]), Some(500.0));
    assert_eq!(
        scrape.sum(
            "demo_backend_request_duration_seconds_count",
            &[("path", "/api/data")]
        ),
        Some(4.0)
    );
}

#[test]
fn the_delay_does_not_hold_up_other_requests() {
    let backend = Backend::start("b1", 300);
    let url = backend.url("/api/data");
    let started = Instant::now();
    const CLIENTS: usize = 1000;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let url = url.clone();
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || get(&url).0)
                .expect("spawn client thread")
        })
        .collect();
    for client in clients {
        assert_eq!(client.join().unwrap(), 200);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "{CLIENTS} concurrent 300 ms requests took {took:?}"
    );
}
