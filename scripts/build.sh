#!/usr/bin/env bash
# The release build: the switchyard binary and the demo backend. The one
# build command of the demo, the test suite and the Dockerfile.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin switchyard --example backend
