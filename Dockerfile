# switchyard and the demo backend.
#   docker build -t switchyard .
#   docker run -p 8080:8080 switchyard            (the built-in default config)
# The build stage runs ./scripts/build.sh, the same build the test suite runs.

FROM rust:1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY src src
COPY examples examples
COPY conf conf
COPY scripts scripts
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
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["-c", "/etc/switchyard/switchyard.yaml"]
