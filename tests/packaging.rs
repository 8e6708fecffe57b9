//! The files that run switchyard elsewhere: the systemd unit, the
//! Dockerfile and compose.yaml. scripts/docker-test.sh builds the image and
//! runs compose.yaml for real; these check what that run cannot see or
//! would only show as a timeout: that the Dockerfile runs the very build the
//! test suite runs, that ports and configs agree (Grafana's too, whose image
//! cannot be made here), and that systemd accepts the unit.

mod common;

use common::{output_text, run_switchyard, switchyard_bin};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use switchyard::config::Config;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A YAML list of strings.
fn strings(value: &serde_yaml::Value) -> Vec<&str> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("not a list: {value:?}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}")))
        .collect()
}

fn config_test_passes(path: &Path) {
    let output = run_switchyard(
        &["-t".as_ref(), "-c".as_ref(), path.as_os_str()],
        Duration::from_secs(10),
    );
    assert!(output.status.success(), "{}", output_text(&output));
}

#[test]
fn the_systemd_unit_is_valid_and_its_config_passes() {
    let unit = read("conf/systemd/switchyard.service");
    for line in [
        "Type=forking",
        "PIDFile=/run/switchyard/switchyard.pid",
        "ExecStart=/usr/local/bin/switchyard -d -c /etc/switchyard/switchyard.yaml",
        "ExecReload=/usr/local/bin/switchyard reload -c /etc/switchyard/switchyard.yaml",
        "StateDirectory=switchyard",
        "Restart=on-failure",
        "User=switchyard",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing `{line}`");
    }

    // The config the unit points at must use the unit's paths.
    let config_path = repo("conf/systemd/switchyard.yaml");
    config_test_passes(&config_path);
    let (config, _) = Config::load(Some(&config_path)).unwrap();
    assert_eq!(config.server.pid_file, "/run/switchyard/switchyard.pid");
    assert!(config.server.upgrade_sock.starts_with("/run/switchyard/"));
    // /run is emptied at boot; what operators set must survive a reboot.
    assert!(config
        .server
        .state_file()
        .starts_with("/var/lib/switchyard/"));
    assert!(config
        .server
        .error_log
        .as_deref()
        .unwrap()
        .starts_with("/var/log/switchyard/"));

    // systemd's own check, with the paths of this checkout.
    let dir = tempfile::tempdir().unwrap();
    let local = unit
        .replace(
            "/usr/local/bin/switchyard",
            switchyard_bin().to_str().unwrap(),
        )
        .replace(
            "/etc/switchyard/switchyard.yaml",
            config_path.to_str().unwrap(),
        );
    let path = dir.path().join("switchyard.service");
    std::fs::write(&path, local).unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd) is installed by scripts/test.sh");
    let text = output_text(&output);
    assert!(output.status.success(), "{text}");
    let about_unit: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("switchyard.service"))
        .collect();
    assert!(
        about_unit.is_empty(),
        "systemd-analyze complains: {about_unit:?}"
    );
}

#[test]
fn the_dockerfile_builds_with_the_tested_build_and_exposes_the_default_ports() {
    let dockerfile = read("Dockerfile");
    let lines: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let stages = lines.iter().filter(|l| l.starts_with("FROM ")).count();
    assert_eq!(stages, 2, "a build stage and a runtime stage");
    assert!(lines.contains(&"RUN ./scripts/build.sh"));
    let build = read("scripts/build.sh");
    assert!(build.contains("cargo build --profile dist --locked --bin switchyard"));
    assert!(build.contains("cargo build --release --locked --example backend"));
    assert!(lines
        .iter()
        .any(|l| l.contains("install") && l.contains("cmake")));

    // What the runtime stage copies from the build stage is what the build makes.
    for artifact in ["target/dist/switchyard", "target/release/examples/backend"] {
        let copy = format!("COPY --from=build /src/{artifact} ");
        assert!(
            lines.iter().any(|l| l.starts_with(&copy)),
            "{artifact} is not copied"
        );
        assert!(
            repo(artifact).exists(),
            "{artifact} was not built (scripts/docker-test.sh copies the shipped binary out of the image)"
        );
    }
    // Plain COPY sources exist.
    for line in lines
        .iter()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for source in &parts[1..parts.len() - 1] {
            assert!(repo(source).exists(), "COPY source {source} is missing");
        }
    }

    let user = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("a USER");
    assert_ne!(*user, "USER root");
    let (default, _) = Config::load(None).unwrap();
    let expose = lines
        .iter()
        .find(|l| l.starts_with("EXPOSE "))
        .expect("EXPOSE");
    assert_eq!(
        *expose,
        format!(
            "EXPOSE {} {}",
            default.listen.first().port(),
            default.metrics.0.port()
        )
    );
    assert!(lines.contains(&"COPY conf/switchyard.yaml /etc/switchyard/switchyard.yaml"));
    assert!(lines.contains(&r#"CMD ["-c", "/etc/switchyard/switchyard.yaml"]"#));
    assert!(lines.iter().any(|l| l.starts_with("CMD [\"/usr/local/bin/switchyard\", \"healthcheck\", \"-c\", \"/etc/switchyard/switchyard.yaml\"]")));
}

#[test]
fn compose_puts_the_balancer_in_front_of_three_backends() {
    let compose: serde_yaml::Value = serde_yaml::from_str(&read("compose.yaml")).unwrap();
    let services = &compose["services"];
    let balancer = &services["switchyard"];

    // The config is mounted where the image's CMD and HEALTHCHECK read it.
    let mount = balancer["volumes"][0].as_str().unwrap();
    let (source, target) = mount.trim_end_matches(":ro").split_once(':').unwrap();
    assert_eq!(target, "/etc/switchyard/switchyard.yaml");
    assert!(
        balancer["command"].is_null(),
        "the image's CMD runs the mounted config"
    );
    let config_path = repo(source.trim_start_matches("./"));
    config_test_passes(&config_path);

    // Published on loopback, at the same port by default.
    let (config, _) = Config::load(Some(&config_path)).unwrap();
    let ports: Vec<&str> = strings(&balancer["ports"]);
    for port in [config.listen.first().port(), config.metrics.0.port()] {
        assert!(
            ports
                .iter()
                .any(|p| p.starts_with("127.0.0.1:${SWITCHYARD_PORT_")
                    && p.ends_with(&format!("-{port}}}:{port}"))),
            "{port} not published: {ports:?}"
        );
    }

    // Each peer of the balancer's config is one of the backends, by its
    // service name (Docker's DNS resolves it on the compose network).
    let peers: Vec<String> = config.upstreams.0["backend"]
        .peers
        .0
        .iter()
        .map(|p| p.target.to_string())
        .collect();
    let mut backends = Vec::new();
    for name in ["b1", "b2", "b3"] {
        let service = &services[name];
        assert_eq!(service["networks"][0].as_str(), Some("switchyard"));
        let args: Vec<&str> = strings(&service["command"]);
        let listen = args[args.iter().position(|a| *a == "--listen").unwrap() + 1];
        let port = listen.rsplit(':').next().unwrap();
        backends.push(format!("{name}:{port}"));
    }
    assert_eq!(peers, backends);
}

#[test]
fn compose_wires_in_prometheus_and_grafana() {
    let compose: serde_yaml::Value = serde_yaml::from_str(&read("compose.yaml")).unwrap();
    let services = &compose["services"];
    let mounts = |service: &str| -> Vec<(String, String)> {
        services[service]["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| {
                let (source, rest) = v.as_str().unwrap().split_once(':').unwrap();
                let target = rest.trim_end_matches(":ro");
                (
                    source.trim_start_matches("./").to_string(),
                    target.to_string(),
                )
            })
            .collect()
    };
    for (source, _) in mounts("prometheus").iter().chain(&mounts("grafana")) {
        assert!(repo(source).exists(), "compose mounts missing {source}");
    }
    assert!(mounts("prometheus").contains(&("conf/prometheus".into(), "/etc/prometheus".into())));
    assert!(mounts("grafana").contains(&(
        "conf/grafana/provisioning".into(),
        "/etc/grafana/provisioning".into()
    )));

    // Prometheus scrapes the compose services at the ports they serve on.
    let prometheus: serde_yaml::Value =
        serde_yaml::from_str(&read("conf/prometheus/prometheus.yml")).unwrap();
    let mut targets = Vec::new();
    for job in prometheus["scrape_configs"].as_sequence().unwrap() {
        for config in job["static_configs"].as_sequence().unwrap() {
            for target in config["targets"].as_sequence().unwrap() {
                targets.push(target.as_str().unwrap().to_string());
            }
        }
    }
    let (balancer, _) = Config::load(Some(&repo("conf/compose/switchyard.yaml"))).unwrap();
    let mut expected = vec![format!("switchyard:{}", balancer.metrics.0.port())];
    for (name, port) in [("b1", 8001), ("b2", 8002), ("b3", 8003)] {
        let command = format!("{:?}", services[name]["command"]);
        assert!(
            command.contains(&format!("0.0.0.0:{port}")),
            "{name}: {command}"
        );
        expected.push(format!("{name}:{port}"));
    }
    assert_eq!(targets, expected);

    // Grafana's data source points at the compose Prometheus.
    let datasource = read("conf/grafana/provisioning/datasources/prometheus.yml");
    assert!(datasource.contains("url: http://prometheus:9090"));
    let home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
        .as_str()
        .unwrap();
    let file = home.strip_prefix("/var/lib/grafana/dashboards/").unwrap();
    assert!(repo(&format!("conf/grafana/dashboards/{file}")).exists());
}
