#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and the end-to-end
# tests that drive the real binaries on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_build_deps
# systemd-analyze checks the unit file in conf/systemd; Prometheus and
# promtool check the monitoring files; Chromium renders the status page.
ensure_packages systemd-analyze:systemd prometheus:prometheus promtool:prometheus chromium:chromium openssl:openssl curl:curl
# The TLS and gRPC peers of tests/upstream_tls.rs run under Debian's
# python3, the gRPC one with grpcio (a module: no command to look for).
ensure_packages /usr/bin/python3:python3
/usr/bin/python3 -c 'import grpc' 2>/dev/null || ensure_packages python3-grpcio-is-missing:python3-grpcio
# The benchmark's smoke run needs its peers and tools.
ensure_packages nginx:nginx haproxy:haproxy wrk:wrk h2load:nghttp2-client gnuplot:gnuplot-nox valgrind:valgrind

cargo fmt --all -- --check
# The image (scripts/docker-test.sh): the Dockerfile's build, which runs
# scripts/build.sh (the shipped binary is copied out for the benchmark
# below), and compose.yaml brought up and checked through its ports;
# Docker's engine, Compose and the base images are set up when missing.
# Its build is most of the suite's time, so it runs beside the lints and
# the test builds, which take what the cores have left (its fat-LTO steps
# use one); the tests wait for it and run alone, their timings undisturbed.
# In a session of its own: stopping the suite stops it and its engine.
docker_log=$(mktemp)
results=$(mktemp)
setsid ./scripts/docker-test.sh >"$docker_log" 2>&1 &
docker_test=$!
stop_docker_test() {
    [ -z "$docker_test" ] || { kill -TERM -- "-$docker_test" 2>/dev/null; wait "$docker_test" 2>/dev/null; }
    rm -f "$docker_log" "$results"
}
trap stop_docker_test EXIT
cargo clippy --release --all-targets -- -D warnings
# The library's public API is documented, and its docs build clean.
# In release, so that it reuses the dependencies clippy just checked.
RUSTDOCFLAGS="-D warnings" cargo doc --release --no-deps --lib
# Release, like the demo: one build of Pingora serves both. `cargo test`
# also builds the demo backend (an example) that the tests start.
cargo test --release --no-run
docker_status=0
wait "$docker_test" || docker_status=$?
docker_test=""
cat "$docker_log"
[ $docker_status -eq 0 ] || exit $docker_status
cargo test --release 2>&1 | tee "$results"
# The benchmark still runs (about a minute; no thresholds: it is not a test).
python3 bench/bench.py --smoke
# One closing line for the whole suite.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$results"
