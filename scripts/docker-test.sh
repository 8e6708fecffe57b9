#!/usr/bin/env bash
# The Docker image and compose topology, for real: the Dockerfile built with
# `docker build`, compose.yaml brought up with Compose, and the user's
# first steps checked through the published ports (tests/docker/check.py).
#
# It runs its own Docker engine (Debian's docker.io): socket, data root and
# exec root under target/docker, no iptables, no default bridge; the engine
# and everything it ran are stopped when this script ends, however it ends.
# No registry is reachable here, so the base images the Dockerfile and
# compose.yaml name are made locally under their public tags (stand-ins,
# tests/docker/standins): debian:bookworm-slim by debootstrap, rust:1-bookworm
# from it plus this machine's Rust toolchain, prom/prometheus from Debian's
# prometheus. They, and the build's layers, stay cached in the data root, so
# a second run only rebuilds what changed. The shipped binary the build
# stage made is copied out to target/dist/switchyard (the benchmark's).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
started=$SECONDS

ensure_packages dockerd:docker.io docker-compose:docker-compose debootstrap:debootstrap \
    prometheus:prometheus promtool:prometheus

work=$PWD/target/docker
mkdir -p "$work"
# Debian's client goes with Debian's engine (a newer docker on the PATH
# would want the buildx plugin to build); Compose v1 talks to the engine
# through DOCKER_HOST itself.
docker() { /usr/bin/docker "$@"; }
export DOCKER_HOST="unix://$work/docker.sock"
export DOCKER_BUILDKIT=0
project=switchyard-test
compose() { docker-compose --project-name "$project" --file compose.yaml "$@"; }

dockerd_pid=""
stop_everything() {
    local status=$?
    trap - EXIT INT TERM
    if [ -n "$dockerd_pid" ]; then
        [ $status -eq 0 ] || compose logs --no-color --tail 30 2>/dev/null | sed 's/^/compose: /' >&2 || true
        compose --profile grafana down --volumes --timeout 2 >/dev/null 2>&1 || true
        kill "$dockerd_pid" 2>/dev/null || true
        for _ in $(seq 300); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$dockerd_pid" 2>/dev/null || true
        # Whatever a killed engine left mounted under target/.
        grep -o " $work/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    fi
    echo "docker-test: $([ $status -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - started)) s"
    exit $status
}
trap stop_everything EXIT
trap 'exit 130' INT TERM

# The engine, on the first storage driver that works here (overlay2 needs
# a file system that supports it; vfs works everywhere, slowly).
start_engine() {
    local driver=$1
    rm -f "$work/docker.sock"
    dockerd --host "$DOCKER_HOST" --data-root "$work/data-$driver" --exec-root "$work/run" \
        --pidfile "$work/dockerd.pid" --storage-driver "$driver" \
        --iptables=false --ip6tables=false --bridge=none >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 300); do
        docker info >/dev/null 2>&1 && return 0
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
    dockerd_pid=""
    return 1
}
if ! start_engine overlay2 && ! start_engine vfs; then
    echo "docker-test: dockerd did not start:" >&2
    tail -20 "$work/dockerd.log" >&2
    exit 1
fi
echo "docker-test: engine up ($(docker info --format '{{.Driver}}'), $((SECONDS - started)) s)"

# stand_in IMAGE KEY: true when IMAGE exists, made from the recipe KEY.
stand_in() {
    [ "$(docker image inspect --format '{{index .Config.Labels "switchyard.stand-in"}}' "$1" 2>/dev/null)" = "$2" ]
}
recipe_key() { cat "$@" | sha256sum | cut -c1-16; }

# debian:bookworm-slim.
slim_key=$(recipe_key tests/docker/standins/debian-slim.sh)
if ! stand_in debian:bookworm-slim "$slim_key"; then
    echo "docker-test: making debian:bookworm-slim (debootstrap)"
    tests/docker/standins/debian-slim.sh "$work/rootfs" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    tar -C "$work/rootfs" -c . | docker import --change 'CMD ["bash"]' \
        --change "LABEL switchyard.stand-in=$slim_key" - debian:bookworm-slim >/dev/null
    rm -rf "$work/rootfs"
fi

# rust:1-bookworm: the slim stand-in, the build packages, and this
# machine's toolchain as RUSTUP_HOME/CARGO_HOME (hard links, when they
# can be, rather than a copy), with llvm-tools for the PGO build, and the
# machine's local CAs.
source scripts/pgo.sh
llvm_profdata >/dev/null || true
toolchain=$(rustc --print sysroot)
local_ca=/usr/local/share/ca-certificates
# (Its key leaves the slim image out: what the build stage makes does not
# depend on how slim its base is, and a new one would cost a whole build.)
rust_key=$({ rustc -vV; ls "$toolchain/lib/rustlib"; find "$local_ca" -name '*.crt' -exec cat {} + 2>/dev/null || true; } \
    | recipe_key tests/docker/standins/rust.Dockerfile -)
if ! stand_in rust:1-bookworm "$rust_key"; then
    echo "docker-test: making rust:1-bookworm ($(rustc -V))"
    context="$work/rust-context"
    rm -rf "$context"
    name=$(basename "$toolchain")
    mkdir -p "$context/rustup/toolchains" "$context/cargo/bin" "$context/local-ca"
    find "$local_ca" -name '*.crt' -exec cp {} "$context/local-ca/" \; 2>/dev/null || true
    cp -al "$toolchain" "$context/rustup/toolchains/$name" 2>/dev/null \
        || { rm -rf "$context/rustup/toolchains/$name" && cp -a "$toolchain" "$context/rustup/toolchains/$name"; }
    rm -rf "$context/rustup/toolchains/$name/share/doc"
    printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n' "$name" >"$context/rustup/settings.toml"
    cp "$(command -v rustup)" "$context/cargo/bin/rustup"
    for proxy in cargo rustc rustdoc cargo-clippy clippy-driver rustfmt cargo-fmt; do
        ln -s rustup "$context/cargo/bin/$proxy"
    done
    docker build --quiet --network host --label "switchyard.stand-in=$rust_key" -t rust:1-bookworm \
        -f tests/docker/standins/rust.Dockerfile "$context" >/dev/null
    rm -rf "$context"
fi

# prom/prometheus at the tag compose.yaml names: Debian's prometheus.
prometheus_image=$(sed -n 's/^ *image: *\(prom\/prometheus:[^ ]*\)$/\1/p' compose.yaml)
prometheus_key=$(recipe_key tests/docker/standins/prometheus.Dockerfile /usr/bin/prometheus /usr/bin/promtool <(echo "$slim_key"))
if ! stand_in "$prometheus_image" "$prometheus_key"; then
    echo "docker-test: making $prometheus_image ($(prometheus --version 2>&1 | head -1))"
    context="$work/prometheus-context"
    rm -rf "$context" && mkdir -p "$context"
    cp /usr/bin/prometheus /usr/bin/promtool "$context/"
    docker build --quiet --label "switchyard.stand-in=$prometheus_key" -t "$prometheus_image" \
        -f tests/docker/standins/prometheus.Dockerfile "$context" >/dev/null
    rm -rf "$context"
fi
echo "docker-test: base images ready ($((SECONDS - started)) s)"

# The real build of the real Dockerfile. The build stage is tagged so that
# its layers (the cache of the next run) survive the prune of older ones.
build_started=$SECONDS
docker build --network host --target build -t switchyard-build:cache . >"$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log" >&2; exit 1; }
docker build --network host -t switchyard:latest . >>"$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log" >&2; exit 1; }
docker image prune --force >/dev/null
build_time=$((SECONDS - build_started))
size=$(docker image inspect --format '{{.Size}}' switchyard:latest)
echo "docker-test: built switchyard:latest in $build_time s, $((size / 1000000)) MB"

# The binary as shipped, for the benchmark: the one in the image.
copy=$(docker create switchyard:latest)
mkdir -p target/dist
docker cp "$copy:/usr/local/bin/switchyard" target/dist/switchyard
docker rm "$copy" >/dev/null

# compose.yaml, with its ports published on free loopback ports.
for port in HTTP METRICS B1 B2 B3 PROMETHEUS GRAFANA; do
    export "SWITCHYARD_PORT_$port="
done
compose down --volumes --timeout 2 >/dev/null 2>&1 || true
compose up --detach --no-build 2>&1 | sed 's/^/compose: /'
/usr/bin/python3 tests/docker/check.py --project "$project" --image switchyard:latest
