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
cargo clippy --release --all-targets -- -D warnings
# The library's public API is documented, and its docs build clean.
# In release, so that it reuses the dependencies clippy just checked.
RUSTDOCFLAGS="-D warnings" cargo doc --release --no-deps --lib
# The image: the Dockerfile's build (scripts/build.sh, the shipped binary,
# copied out for the benchmark below) and compose.yaml brought up and
# checked through its ports; Docker's engine, Compose and the base images
# are set up here when missing.
./scripts/docker-test.sh
# Release, like the demo: one build of Pingora serves both. `cargo test`
# also builds the demo backend (an example) that the tests start.
results=$(mktemp)
trap 'rm -f "$results"' EXIT
cargo test --release 2>&1 | tee "$results"
# The benchmark still runs (about a minute; no thresholds: it is not a test).
python3 bench/bench.py --smoke
# One closing line for the whole suite.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$results"
