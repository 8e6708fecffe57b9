# Sourced by build.sh: profile-guided optimization (PGO) of the shipped
# binary. Measured on this project's benchmark, PGO takes about a fifth off
# the instructions and CPU time per request (bench/results.md): the profile
# tells LLVM which of Pingora's many branches and calls the request path
# really takes.
#
# pgo_flags prints the RUSTFLAGS of a PGO build. It trains a profile first
# when none matches the sources and toolchain: an instrumented build of
# switchyard proxies traffic between wrk and three demo backends
# (scripts/pgo_train.py). It prints nothing, and the build goes on without
# PGO, when the toolchain has no llvm-profdata and rustup cannot add it, or
# when the training fails. Needs deps.sh.

# The toolchain's llvm-profdata (rustup component llvm-tools).
llvm_profdata() {
    local tool
    tool="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-profdata"
    if [ ! -x "$tool" ] && command -v rustup >/dev/null 2>&1; then
        rustup component add llvm-tools >&2 || true
    fi
    [ -x "$tool" ] && echo "$tool"
}

# pgo_train PROFDATA_TOOL PROFILE: an instrumented build, its training run,
# the merged profile at PROFILE.
pgo_train() {
    local tool=$1 profile=$2 raw="$PWD/target/pgo/raw"
    ensure_packages wrk:wrk python3:python3 >&2 || return 1
    rm -rf "$raw" && mkdir -p "$raw"
    echo "pgo: instrumented build and training run (once per change of the sources)" >&2
    RUSTFLAGS="-Cprofile-generate=$raw" cargo build --profile dist --locked --bin switchyard \
        --target-dir target/pgo/instrumented >&2 || return 1
    python3 scripts/pgo_train.py target/pgo/instrumented/dist/switchyard \
        target/release/examples/backend >&2 || return 1
    rm -f target/pgo/switchyard-*.profdata
    "$tool" merge -o "$profile" "$raw" >&2 || return 1
    rm -rf "$raw"
}

pgo_flags() {
    local tool key profile
    if ! tool="$(llvm_profdata)"; then
        echo "pgo: no llvm-profdata in the toolchain: building without PGO" >&2
        return 0
    fi
    key=$({ rustc -vV; cat Cargo.toml Cargo.lock scripts/pgo_train.py; find src -type f | sort | xargs cat; } \
        | sha256sum | cut -c1-16)
    profile="$PWD/target/pgo/switchyard-$key.profdata"
    if [ ! -f "$profile" ] && ! pgo_train "$tool" "$profile"; then
        echo "pgo: the training run failed: building without PGO" >&2
        return 0
    fi
    echo "-Cprofile-use=$profile"
}
