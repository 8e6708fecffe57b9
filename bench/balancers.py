"""The balancers under test: where their binaries are, their configs (nginx
and HAProxy written to be switchyard's equals: keep-alive to the backends,
no access log, X-Forwarded-For added, the same number of workers; over TLS
the same certificate, TLS 1.2 and 1.3 with Mozilla's "intermediate"
ciphers, session cache and tickets as they come), and starting them side by
side on ports of their own."""

import collections
import functools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SWITCHYARD = Path(os.environ.get("SWITCHYARD_BIN", ROOT / "target/dist/switchyard"))
DEMO_BACKEND = ROOT / "target/release/examples/backend"
# The smallest Pingora balancer (examples/minimal_balancer.rs), built by
# bench/run.sh (dist profile, no PGO): how much of switchyard's cost is
# Pingora's own. Left out when it is not built (the test suite's smoke run).
MINIMAL = ROOT / "target/baseline/dist/examples/minimal_balancer"

sys.path.insert(0, str(ROOT / "scripts"))
from launch import free_port, switchyard_config, wait_port  # noqa: E402

# switchyard's limit on client connections in every benchmark config: the
# idle-client memory figure opens 9,000.
SWITCHYARD_LIMITS = "limits: { max_connections: 19000 }\n"

# A certificate of the TLS benchmark: its PEM files (`pem`: certificate and
# key in one, as HAProxy's `crt` takes them).
Certificate = collections.namedtuple("Certificate", "cert key pem")
# Mozilla's "intermediate" TLS 1.2 ciphers, switchyard's own (TLS 1.3's
# suites are OpenSSL's defaults in all three).
INTERMEDIATE_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                        "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305")


def nginx_listen(port, tls):
    """nginx's `listen` (and certificate) lines of the balancer's server."""
    if not tls:
        return f"listen 127.0.0.1:{port};"
    return f"""listen 127.0.0.1:{port} ssl;
        ssl_certificate {tls.cert};
        ssl_certificate_key {tls.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers {INTERMEDIATE_CIPHERS};
        ssl_prefer_server_ciphers off;
        ssl_session_cache shared:SSL:10m;"""


def nginx_balancer_conf(home, port, backends, workers, method=None, under_valgrind=False, tls=None):
    """nginx over `backends`, its files in `home`; `method`: a balancing
    directive of nginx's (least_conn), else round robin; `tls`: the
    Certificate of an HTTPS listener (HTTP/1.1 only, as nginx's default)."""
    upstream = "\n".join(f"        server 127.0.0.1:{p};" for p in backends)
    # The method comes before `keepalive`, as nginx requires.
    method_line = f"        {method};\n" if method else ""
    # Under valgrind nginx runs as one process, so that one pid is measured,
    # and without a raised file limit (valgrind keeps descriptors of its own).
    head = "master_process off;\n" if under_valgrind else "worker_rlimit_nofile 19000;\n"
    return f"""{head}worker_processes {workers};
daemon off;
pid {home}/nginx.pid;
error_log {home}/nginx.err warn;
events {{ worker_connections 19000; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    upstream backends {{
{method_line}{upstream}
        keepalive 128;
    }}
    server {{
        {nginx_listen(port, tls)}
        location / {{
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # switchyard always sends X-Forwarded-For: the same work here.
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


def haproxy_conf(port, backends, workers, balance="roundrobin", under_valgrind=False, tls=None):
    """HAProxy over `backends` with `balance` (roundrobin, leastconn,
    random(2), ...); TCP health checks every second, as switchyard's; `tls`:
    the Certificate of an HTTPS listener (ALPN http/1.1 and the client's
    cipher order, as nginx's and switchyard's)."""
    servers = "\n".join(f"    server b{i} 127.0.0.1:{p} check inter 1s" for i, p in enumerate(backends))
    # 2 file descriptors per connection must fit the machine's hard limit
    # (20000 here): maxconn 9990 is the most HAProxy accepts; valgrind keeps
    # descriptors of its own.
    maxconn = 1000 if under_valgrind else 9990
    ssl = (f" ssl crt {tls.pem} alpn http/1.1 ssl-min-ver TLSv1.2 ciphers {INTERMEDIATE_CIPHERS} prefer-client-ciphers"
           if tls else "")
    return f"""global
    nbthread {workers}
    maxconn {maxconn}
defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend fe
    bind 127.0.0.1:{port}{ssl}
    # switchyard always sends X-Forwarded-For: the same work here.
    option forwardfor
    default_backend be
backend be
    balance {balance}
    http-reuse always
{servers}
"""


def nginx_command(home, port, backends, workers, method=None, under_valgrind=False, tls=None):
    """argv of nginx as a balancer on `port`, its config written to `home`."""
    conf = home / "nginx.conf"
    conf.write_text(nginx_balancer_conf(home, port, backends, workers, method, under_valgrind, tls))
    return ["nginx", "-c", str(conf), "-e", str(home / "nginx.err")]


def haproxy_command(home, port, backends, workers, balance="roundrobin", under_valgrind=False, tls=None):
    """argv of HAProxy as a balancer on `port`, its config written to `home`."""
    conf = home / "haproxy.cfg"
    conf.write_text(haproxy_conf(port, backends, workers, balance, under_valgrind, tls))
    return ["haproxy", "-f", str(conf)]


def switchyard_command(home, port, backends, workers, check_path, algorithm=None, extra="", tls=None):
    """argv of switchyard as a balancer on `port` (`algorithm`: the
    upstream's, else the default round_robin; `extra`: more top-level YAML;
    `tls`: the Certificate of an HTTPS listener, HTTP/2 by ALPN on as by
    default), its config and files in `home`."""
    conf = home / "switchyard.yaml"
    conf.write_text(switchyard_config(home, port, free_port(), backends, workers, check_path,
                                      extra=SWITCHYARD_LIMITS + extra, algorithm=algorithm,
                                      tls=(tls.cert, tls.key) if tls else None))
    return [str(SWITCHYARD), "-c", str(conf)]


@functools.lru_cache(maxsize=None)
def accepts_algorithm(algorithm):
    """Whether this switchyard build knows `algorithm` (`switchyard -t`);
    says once that the algorithm's runs are skipped when it does not."""
    with tempfile.TemporaryDirectory(prefix="switchyard-bench-check-") as home:
        conf = Path(home) / "switchyard.yaml"
        conf.write_text(switchyard_config(home, free_port(), free_port(), [free_port()], algorithm=algorithm))
        check = subprocess.run([str(SWITCHYARD), "-t", "-c", str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        reason = next((line for line in check.stderr.splitlines() if "algorithm" in line), check.stderr.strip())
        print(f"note: {SWITCHYARD} does not accept algorithm {algorithm}: its runs are skipped ({reason})", flush=True)
    return check.returncode == 0


def home_of(workdir, tag, name):
    """The directory of balancer `name`'s config, pid file and logs."""
    home = workdir / tag / name
    home.mkdir(parents=True, exist_ok=True)
    return home


def start_balancers(procs, commands, tag):
    """The balancers of `commands` (name -> (port, argv)), started at once;
    returns, after the first health-check rounds, name -> (port, pid)."""
    started = {}
    for name, (port, argv) in commands.items():
        started[name] = (port, procs.start(f"{name}-{tag}", argv))
    for name, (port, proc) in started.items():
        wait_port(port, proc=proc)
    time.sleep(1.5)  # first health-check rounds
    return {name: (port, proc.pid) for name, (port, proc) in started.items()}
