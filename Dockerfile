# switchyard and the demo backend.
#   docker build -t switchyard .
#   docker run -p 8080:8080 switchyard            (the built-in default config)
#   docker run -v $PWD/my.yaml:/etc/switchyard/switchyard.yaml:ro -p 8080:8080 switchyard
# The build stage runs ./scripts/build.sh, the same build the test suite runs
# (scripts/docker-test.sh builds this file and runs compose.yaml with it).

FROM rust:1-bookworm AS build
# cmake: Pingora's zlib-ng; python3 and wrk: the PGO training run.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake python3 wrk \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
# The crates in a layer of their own: a change of the sources does not
# download them again. (cargo wants the targets the manifest names.)
RUN mkdir -p src && touch src/lib.rs src/main.rs \
    && cargo fetch --locked \
    && rm -rf src
# Only what the build reads, so that a change elsewhere (the tests, the
# dashboards) keeps the build's layer.
COPY src src
COPY examples examples
COPY conf/switchyard.yaml conf/
COPY scripts/build.sh scripts/deps.sh scripts/pgo.sh scripts/pgo_train.py scripts/launch.py scripts/
RUN ./scripts/build.sh

FROM debian:bookworm-slim
# libssl3: TLS (switchyard links the system's OpenSSL); ca-certificates:
# the CA store that upstream TLS verifies peers against by default.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --no-create-home --shell /usr/sbin/nologin switchyard \
    && mkdir -p /etc/switchyard /run/switchyard \
    && chown switchyard:switchyard /run/switchyard
COPY --from=build /src/target/dist/switchyard /usr/local/bin/switchyard
COPY --from=build /src/target/release/examples/backend /usr/local/bin/switchyard-demo-backend
COPY conf/switchyard.yaml /etc/switchyard/switchyard.yaml
USER switchyard
# The proxy and metrics ports of the default config.
EXPOSE 8080 6192
# Healthy: the status page (or, without a plain-HTTP listener, the metrics)
# of the config at this path answers 200. Mount your own config over it.
HEALTHCHECK --interval=10s --timeout=6s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/switchyard", "healthcheck", "-c", "/etc/switchyard/switchyard.yaml"]
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["-c", "/etc/switchyard/switchyard.yaml"]
