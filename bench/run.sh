#!/usr/bin/env bash
# The side-by-side benchmark: switchyard, nginx and HAProxy as balancers over
# the same backends, on this machine, in alternating rounds.
#   ./bench/run.sh              full run (several minutes); writes bench/results.md and .png
#   ./bench/run.sh --smoke      about a minute, to check it still works
#   ./bench/run.sh --section slow   only the section "one slow backend" (its part of results.md)
#   ./bench/run.sh --section tls    only HTTPS: keep-alive requests/s and new TLS 1.3 handshakes/s
# Other flags: see `python3 bench/bench.py --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_build_deps
ensure_packages nginx:nginx haproxy:haproxy wrk:wrk h2load:nghttp2-client gnuplot:gnuplot-nox valgrind:valgrind \
    openssl:openssl
./scripts/build.sh
# The benchmark's Pingora baseline (bench/bench.py): the dist profile without
# PGO, in a target directory of its own so that the shipped build stays as it is.
cargo build --profile dist --locked --example minimal_balancer --target-dir target/baseline
exec python3 bench/bench.py "$@"
