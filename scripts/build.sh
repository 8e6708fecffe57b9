#!/usr/bin/env bash
# The builds: the switchyard binary as shipped (profile `dist`: fat LTO, one
# codegen unit, and profile-guided optimization when the toolchain allows it,
# see scripts/pgo.sh and bench/results.md) and the demo backend. The one
# build command of the demo, the test suite, the benchmark and the
# Dockerfile. (The tests themselves run `release` builds of the same code.)
# Only the binary is built with the profile: a build of more targets (an
# example with its dev-dependencies) can change the features, so the code, of
# shared dependencies, and the profile would no longer match it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
source scripts/pgo.sh
cargo build --release --locked --example backend
RUSTFLAGS="$(pgo_flags)" cargo build --profile dist --locked --bin switchyard
