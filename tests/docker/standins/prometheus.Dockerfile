# Stand-in for prom/prometheus (no registry here): Debian's prometheus
# binaries on debian:bookworm-slim, laid out as the official image is
# (entrypoint, working directory and data under /prometheus, user nobody).
# Context: prometheus and promtool, copied by scripts/docker-test.sh.
FROM debian:bookworm-slim
COPY prometheus promtool /bin/
RUN mkdir -p /prometheus /etc/prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
