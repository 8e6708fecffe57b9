# Stand-in for rust:1-bookworm (no registry here): Debian bookworm with what
# the official image (buildpack-deps:bookworm) offers a Rust build: a C
# toolchain, OpenSSL's headers, pkg-config, perl, git and curl; plus this
# machine's Rust toolchain (with rustup) where the official image puts it.
# And this machine's own CAs (/usr/local/share/ca-certificates): where HTTPS
# goes through a proxy of the site's, cargo must trust it to fetch crates.
# Context: rustup/ (RUSTUP_HOME), cargo/ (CARGO_HOME) and local-ca/, made by
# scripts/docker-test.sh.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl git gcc g++ libc6-dev \
        libssl-dev make pkg-config perl xz-utils \
    && rm -rf /var/lib/apt/lists/*
COPY local-ca /usr/local/share/ca-certificates
RUN update-ca-certificates
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
COPY rustup /usr/local/rustup
COPY cargo /usr/local/cargo
