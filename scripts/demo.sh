#!/usr/bin/env bash
# The local demo: three demo backends on 127.0.0.1:8001-8003 and switchyard
# in front of them with the built-in config (proxy :8080, metrics :6192).
# Extra arguments go to switchyard (e.g. -c my.yaml). Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_build_deps
./scripts/build.sh

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in 8001 8002 8003 8080 6192; do
    if port_busy "$port"; then
        echo "demo: port $port is already in use; stop whatever listens there first" >&2
        exit 1
    fi
done

pids=()
stop_all() {
    trap - EXIT INT TERM
    [ ${#pids[@]} -gt 0 ] || return 0
    kill -INT "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "${pids[@]}" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    echo "demo: stopped"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

for i in 1 2 3; do
    target/release/examples/backend --listen "127.0.0.1:800$i" --name "b$i" &
    pids+=($!)
done
target/dist/switchyard "$@" &
pids+=($!)

for _ in $(seq 100); do
    port_busy 8080 && break
    sleep 0.1
done
cat <<'MSG'

switchyard demo is running (Ctrl-C stops everything):
  curl localhost:8080/api/data              # through the balancer
  curl localhost:8080/check                 # peer states (add ?format=json for details)
  curl localhost:8001/api/switch            # switch backend b1 off (again: on)
  curl localhost:6192/metrics               # Prometheus metrics

MSG
# Run until Ctrl-C or until one of the processes dies.
wait -n "${pids[@]}" || true
echo "demo: a process exited; stopping the rest" >&2
