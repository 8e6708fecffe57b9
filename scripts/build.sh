#!/usr/bin/env bash
# The builds: the switchyard binary as shipped (profile `dist`: fat LTO, one
# codegen unit; about 10% faster, see bench/results.md) and the demo backend.
# The one build command of the demo, the test suite, the benchmark and the
# Dockerfile. (The tests themselves run `release` builds of the same code.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --profile dist --locked --bin switchyard
cargo build --release --locked --example backend
