#!/usr/bin/env bash
# The local demo: three demo backends on 127.0.0.1:8001-8003 and switchyard
# in front of them with the built-in config (proxy :8080, metrics :6192,
# admin API :6193). Extra arguments go to switchyard (e.g. -c my.yaml).
# Ctrl-C stops it all. The processes are started by scripts/launch.py.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_build_deps
ensure_packages python3:python3
./scripts/build.sh
exec python3 scripts/launch.py target/dist/switchyard target/release/examples/backend "$@"
