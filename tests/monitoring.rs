//! The monitoring files against a real Prometheus: the config and alert
//! rules pass promtool and their unit tests, the dashboards are valid, and
//! every query of every dashboard panel returns data from a live balancer.

mod common;

use common::{
    free_port, upstream_section, wait_until, Backend, Balancer, Load, Process, Site, TestCa,
};
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn promtool(args: &[&str]) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(repo("conf/prometheus"))
        .output()
        .expect("promtool (Debian's prometheus) is installed by scripts/test.sh");
    assert!(
        output.status.success(),
        "promtool {args:?}:\n{}",
        common::output_text(&output)
    );
}

#[test]
fn prometheus_config_and_alert_rules_pass_promtool() {
    promtool(&["check", "config", "prometheus.yml"]);
    promtool(&["check", "rules", "alerts.yml"]);
    promtool(&["test", "rules", "alerts_test.yml"]);
}

/// Every dashboard: its file name and JSON.
fn dashboards() -> Vec<(String, Json)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(repo("conf/grafana/dashboards")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let json =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        found.push((
            path.file_name().unwrap().to_string_lossy().into_owned(),
            json,
        ));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(found.len() >= 2, "the balancer and backends dashboards");
    found
}

fn provisioned_datasource_uid() -> String {
    let text =
        std::fs::read_to_string(repo("conf/grafana/provisioning/datasources/prometheus.yml"))
            .unwrap();
    let provisioning: Yaml = serde_yaml::from_str(&text).unwrap();
    provisioning["datasources"][0]["uid"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn dashboards_are_valid_grafana_json() {
    let uid = provisioned_datasource_uid();
    let provider =
        std::fs::read_to_string(repo("conf/grafana/provisioning/dashboards/switchyard.yml"))
            .unwrap();
    assert!(provider.contains("path: /var/lib/grafana/dashboards"));
    let mut uids = std::collections::HashSet::new();
    for (file, dashboard) in dashboards() {
        assert!(
            dashboard["schemaVersion"].as_u64().unwrap() >= 36,
            "{file}: schemaVersion"
        );
        assert!(dashboard["title"].is_string(), "{file}: title");
        assert!(
            uids.insert(dashboard["uid"].as_str().unwrap().to_string()),
            "{file}: uid"
        );
        let panels = dashboard["panels"].as_array().unwrap();
        let mut ids = std::collections::HashSet::new();
        for panel in panels {
            let title = panel["title"].as_str().unwrap();
            assert!(
                ids.insert(panel["id"].as_u64().unwrap()),
                "{file}: duplicate id at {title}"
            );
            assert_eq!(panel["datasource"]["uid"], uid.as_str(), "{file}: {title}");
            assert!(
                panel["gridPos"]["w"].as_u64().unwrap() > 0,
                "{file}: {title}"
            );
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{file}: {title} has no query");
            for target in targets {
                assert!(
                    target["expr"].as_str().is_some_and(|e| !e.is_empty()),
                    "{file}: {title}"
                );
                assert!(target["refId"].is_string(), "{file}: {title}");
            }
        }
        for variable in dashboard["templating"]["list"].as_array().unwrap() {
            assert_eq!(
                variable["datasource"]["uid"],
                uid.as_str(),
                "{file}: variable"
            );
        }
    }
}

/// A Prometheus on a loopback port with `conf/prometheus/prometheus.yml`
/// pointed at this test's processes, scraping every second.
struct Prometheus {
    url: String,
    _process: Process,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(balancer_metrics: &str, backends: &[(&str, String)]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(repo("conf/prometheus/prometheus.yml")).unwrap();
        let mut config: Yaml = serde_yaml::from_str(&text).unwrap();
        config["global"]["scrape_interval"] = "1s".into();
        config["global"]["evaluation_interval"] = "1s".into();
        config["rule_files"] = vec![Yaml::from(
            repo("conf/prometheus/alerts.yml").to_str().unwrap(),
        )]
        .into();
        for job in config["scrape_configs"].as_sequence_mut().unwrap() {
            for static_config in job["static_configs"].as_sequence_mut().unwrap() {
                let instance = static_config["labels"]["instance"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let target = match instance.as_str() {
                    "switchyard" => balancer_metrics.to_string(),
                    name => backends
                        .iter()
                        .find(|(n, _)| *n == name)
                        .unwrap_or_else(|| panic!("no test backend for {name}"))
                        .1
                        .clone(),
                };
                static_config["targets"] = vec![Yaml::from(target)].into();
            }
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, serde_yaml::to_string(&config).unwrap()).unwrap();
        let port = free_port();
        let process = Process::spawn(
            Command::new("prometheus")
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}")),
            dir.path().join("prometheus.log"),
        );
        let url = format!("http://127.0.0.1:{port}");
        let ready = wait_until(Duration::from_secs(30), || {
            common::try_get(&format!("{url}/-/ready")).is_ok_and(|(s, _)| s == 200)
        });
        assert!(
            ready.is_some(),
            "prometheus did not start:\n{}",
            process.log()
        );
        Prometheus {
            url,
            _process: process,
            _dir: dir,
        }
    }

    /// Evaluate `query` now: the result vector, or the error.
    fn query(&self, query: &str) -> Result<Vec<Json>, String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent
            .get(&format!("{}/api/v1/query", self.url))
            .query("query", query)
            .call()
            .map_err(|e| e.to_string())?;
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        let json: Json = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        if json["status"] != "success" {
            return Err(format!("{}: {}", json["errorType"], json["error"]));
        }
        Ok(json["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

/// Grafana's variables as a dashboard with every option selected sends them.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$upstream", ".*")
        .replace("$peer", ".*")
        .replace("$backend", ".*")
}

/// `label_values(metric, label)` (Grafana's variable query) as PromQL.
fn variable_query(definition: &str) -> String {
    let inner = definition
        .strip_prefix("label_values(")
        .and_then(|d| d.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected variable query {definition}"));
    let (metric, label) = inner.rsplit_once(',').unwrap();
    format!(
        "count by ({}) ({})",
        label.trim(),
        substitute(metric.trim())
    )
}

#[test]
fn every_dashboard_query_returns_data() {
    let backends: Vec<Backend> = ["b1", "b2", "b3"]
        .iter()
        .map(|name| Backend::start(name, 5))
        .collect();
    let peers: Vec<String> = backends.iter().map(|b| b.addr.to_string()).collect();
    // A slow probe, so the switched-off backend answers 500s for a while; a
    // TLS listener, for the certificate and handshake panels.
    let certs = tempfile::tempdir().unwrap();
    let cert = TestCa::new("monitoring CA").issue(certs.path(), "site", &["site.test"], 30);
    let tls: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let listener = format!(
        "  - {{ addr: \"{tls}\", tls: {{ certificates: [ {{ cert: {}, key: {} }} ] }} }}\n",
        cert.cert.display(),
        cert.key.display()
    );
    let upstreams = upstream_section("backend", "round_robin", &peers, 2_000);
    let balancer = Balancer::start_site(Site::with_listeners(&upstreams, "", &listener));
    let handshake = Command::new("curl")
        .args(["-sk", "-o", "/dev/null", &format!("https://{tls}/api/data")])
        .status()
        .expect("curl");
    assert!(handshake.success());
    let targets: Vec<(&str, String)> = backends
        .iter()
        .map(|b| (b.name.as_str(), b.addr.to_string()))
        .collect();
    let prometheus = Prometheus::start(&balancer.metrics.to_string(), &targets);

    let load = Load::start(&balancer.url("/api/data"), 4);
    std::thread::sleep(Duration::from_secs(3));
    backends[2].switch();
    std::thread::sleep(Duration::from_secs(2));
    let report = load.finish();
    assert!(
        report.errors > 0,
        "the switched-off backend answered no 500s"
    );
    balancer.wait_for_state(backends[2].addr, "DOWN");

    // Wait for the scrapes that saw it all.
    let scraped = wait_until(Duration::from_secs(20), || {
        let errors = prometheus.query(r#"switchyard_requests_total{status="500"}"#);
        let down = prometheus.query("switchyard_peer_up == 0");
        let targets_up = prometheus.query("up == 1");
        errors.is_ok_and(|r| !r.is_empty())
            && down.is_ok_and(|r| !r.is_empty())
            && targets_up.is_ok_and(|r| r.len() == 4)
    });
    assert!(
        scraped.is_some(),
        "prometheus did not scrape the test's processes"
    );

    // Series that appeared with the last traffic need a few scrapes before a
    // rate over them has two samples: evaluate until all answer, for a while.
    let mut attempt = 0;
    let (checked, failures) = loop {
        attempt += 1;
        let (checked, failures) = evaluate_dashboards(&prometheus);
        if failures.is_empty() || attempt == 20 {
            break (checked, failures);
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    println!("{checked} dashboard queries evaluated against a live Prometheus ({attempt} rounds)");
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The alert rules load and evaluate against the live series.
    let rules = prometheus.query("ALERTS").map(|_| ());
    assert!(rules.is_ok());
    let (_, body) = common::get(&format!("{}/api/v1/rules", prometheus.url));
    let json: Json = serde_json::from_str(&body).unwrap();
    let groups = json["data"]["groups"].as_array().unwrap();
    assert!(!groups.is_empty(), "alerts.yml was not loaded");
    for rule in groups.iter().flat_map(|g| g["rules"].as_array().unwrap()) {
        assert_eq!(
            rule["health"], "ok",
            "rule {} : {}",
            rule["name"], rule["lastError"]
        );
    }
}

/// Evaluate every variable and panel query of every dashboard: how many,
/// and the ones that failed or returned nothing, by dashboard and panel.
fn evaluate_dashboards(prometheus: &Prometheus) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut check = |place: String, query: String| {
        checked += 1;
        match prometheus.query(&query) {
            Ok(result) if !result.is_empty() => {}
            Ok(_) => failures.push(format!("{place}: no data for {query}")),
            Err(e) => failures.push(format!("{place}: {e} in {query}")),
        }
    };
    for (file, dashboard) in dashboards() {
        let name = dashboard["title"].as_str().unwrap().to_string();
        for variable in dashboard["templating"]["list"].as_array().unwrap() {
            let query = variable_query(variable["definition"].as_str().unwrap());
            check(
                format!("{file} ({name}), variable {}", variable["name"]),
                query,
            );
        }
        for panel in dashboard["panels"].as_array().unwrap() {
            let title = panel["title"].as_str().unwrap();
            for target in panel["targets"].as_array().unwrap() {
                let query = substitute(target["expr"].as_str().unwrap());
                check(format!("{file} ({name}), panel \"{title}\""), query);
            }
        }
    }
    (checked, failures)
}
