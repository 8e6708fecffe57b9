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
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What building Pingora needs: cmake and a C/C++ toolchain for zlib-ng.
ensure_build_deps() {
    ensure_packages cmake:cmake pkg-config:pkg-config cc:gcc c++:g++ make:make
}
