"""The balancers under test: where their binaries are, their configs (nginx
and HAProxy written to be switchyard's equals: keep-alive to the backends,
no access log, X-Forwarded-For added, the same number of workers), and
starting them side by side on ports of their own."""

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


def nginx_balancer_conf(home, port, backends, workers, method=None, under_valgrind=False):
    """nginx over `backends`, its files in `home`; `method`: a balancing
    directive of nginx's (least_conn), else round robin."""
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
        listen 127.0.0.1:{port};
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


def haproxy_conf(port, backends, workers, balance="roundrobin", under_valgrind=False):
    """HAProxy over `backends` with `balance` (roundrobin, leastconn,
    random(2), ...); TCP health checks every second, as switchyard's."""
    servers = "\n".join(f"    server b{i} 127.0.0.1:{p} check inter 1s" for i, p in enumerate(backends))
    # 2 file descriptors per connection must fit the machine's hard limit
    # (20000 here): maxconn 9990 is the most HAProxy accepts; valgrind keeps
    # descriptors of its own.
    maxconn = 1000 if under_valgrind else 9990
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
    bind 127.0.0.1:{port}
    # switchyard always sends X-Forwarded-For: the same work here.
    option forwardfor
    default_backend be
backend be
    balance {balance}
    http-reuse always
{servers}
"""


def nginx_command(home, port, backends, workers, method=None, under_valgrind=False):
    """argv of nginx as a balancer on `port`, its config written to `home`."""
    conf = home / "nginx.conf"
    conf.write_text(nginx_balancer_conf(home, port, backends, workers, method, under_valgrind))
    return ["nginx", "-c", str(conf), "-e", str(home / "nginx.err")]


def haproxy_command(home, port, backends, workers, balance="roundrobin", under_valgrind=False):
    """argv of HAProxy as a balancer on `port`, its config written to `home`."""
    conf = home / "haproxy.cfg"
    conf.write_text(haproxy_conf(port, backends, workers, balance, under_valgrind))
    return ["haproxy", "-f", str(conf)]


def switchyard_command(home, port, backends, workers, check_path, algorithm=None, extra=""):
    """argv of switchyard as a balancer on `port` (`algorithm`: the
    upstream's, else the default round_robin; `extra`: more top-level YAML),
    its config and files in `home`."""
    conf = home / "switchyard.yaml"
    conf.write_text(switchyard_config(home, port, free_port(), backends, workers, check_path,
                                      extra=SWITCHYARD_LIMITS + extra, algorithm=algorithm))
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
