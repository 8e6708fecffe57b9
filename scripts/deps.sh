# Sourced by the other scripts: install what a build or test needs from the
# system's package manager (Debian's apt) when it is missing.

# ensure_packages COMMAND:PACKAGE... installs PACKAGE when COMMAND is not found.
ensure_packages() {
    local missing=() spec
    for spec in "$@"; do
        command -v "${spec%%:*}" >/dev/null 2>&1 || missing+=("${spec#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "missing: ${missing[*]} (and no apt-get to install them with)" >&2
        return 1
    fi
    echo "installing ${missing[*]} ..." >&2
    # Packages like nginx and prometheus start their service on install; we
    # only want the programs. policy-rc.d tells Debian not to start anything.
    local no_start=/usr/sbin/policy-rc.d created=""
    if [ ! -e "$no_start" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$no_start" >/dev/null
        "${sudo[@]}" chmod +x "$no_start"
        created=1
    fi
    local status=0
    "${sudo[@]}" apt-get update -qq || status=$?
    [ "$status" -ne 0 ] || DEBIAN_FRONTEND=noninteractive "${sudo[@]}" \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
    [ -z "$created" ] || "${sudo[@]}" rm -f "$no_start"
    return "$status"
}

# What building Pingora needs: cmake and a C/C++ toolchain for zlib-ng, and
# the system's OpenSSL headers for TLS (.cargo/config.toml links the
# system's libssl; libssl-dev has no command to look for: pkg-config knows
# whether it is there).
ensure_build_deps() {
    ensure_packages cmake:cmake pkg-config:pkg-config cc:gcc c++:g++ make:make || return 1
    pkg-config --exists openssl 2>/dev/null || ensure_packages libssl-dev-is-missing:libssl-dev
}
