#!/usr/bin/env bash
# The builds: the switchyard binary as shipped (profile `dist`: fat LTO, one
# codegen unit, and profile-guided optimization when the toolchain allows it,
# see scripts/pgo.sh and bench/results.md) and the demo backend. The one
# build command of the demo, the test suite, the benchmark and the
# Dockerfile. (The tests themselves run `release` builds of the same code.)
# Arguments name more targets of the dist build (bench/run.sh:
# `--example minimal_balancer`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
source scripts/pgo.sh
cargo build --release --locked --example backend
RUSTFLAGS="$(pgo_flags)" cargo build --profile dist --locked --bin switchyard "$@"
