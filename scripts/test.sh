#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and the end-to-end
# tests that drive the real binaries on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_build_deps
# systemd-analyze checks the unit file in conf/systemd; Prometheus and
# promtool check the monitoring files; Chromium renders the status page.
ensure_packages systemd-analyze:systemd prometheus:prometheus promtool:prometheus chromium:chromium

cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
# The build the Dockerfile runs, exactly.
./scripts/build.sh
# Release, like the demo: one build of Pingora serves both. `cargo test`
# also builds the demo backend (an example) that the tests start.
cargo test --release
