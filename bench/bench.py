#!/usr/bin/env python3
"""switchyard vs nginx vs HAProxy, side by side on one machine.

Every balancer fronts the same three backends (one nginx serving a small
fixed response on three ports), round robin, keep-alive to the backends, no
access log, the same number of workers. wrk drives each in turn, A B C A B C,
so that machine drift hits all alike; the backends are also measured directly
(the ceiling of this setup). Per balancer: requests/s, p50, p99 and CPU time
per request (from /proc/<pid>/stat of the balancer's processes), medians over
the rounds, and ratios to nginx. Also: latency added at one connection, RSS
with 9,000 idle keep-alive clients, user-space instructions per request
under callgrind, and /api/data of the demo backend (200 ms) at high
concurrency. `pingora-minimal` (examples/minimal_balancer.rs, Pingora's
quick-start balancer) runs beside them: the part of switchyard's cost that is
Pingora's own.

Results go to bench/results.md and bench/results.png. Everything listens on
127.0.0.1; every process started here is stopped at the end.
"""

import argparse
import os
import re
import shutil
import socket
import statistics
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
TICK_US = 1_000_000 / os.sysconf("SC_CLK_TCK")

sys.path.insert(0, str(ROOT / "scripts"))
from launch import Processes, free_port, start_backends, switchyard_config, wait_port  # noqa: E402



def pids_of(root_pid):
    """The process and its children (nginx's workers)."""
    pids = [root_pid]
    children = Path(f"/proc/{root_pid}/task/{root_pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    return pids


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except FileNotFoundError:
            pass
    return total


def rss_kib(pids):
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def seconds(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def wrk(port, connections, duration, path="/", threads=1):
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
         f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True,
    ).stdout
    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50": seconds(re.search(r"\s50%\s+(\S+)", out).group(1)),
        "p99": seconds(re.search(r"\s99%\s+(\S+)", out).group(1)),
    }
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    result["errors"] = (int(errors.group(1)) if errors else 0)
    result["socket_errors"] = socket_errors.group(1) if socket_errors else ""
    return result


def nginx_backend_conf(workdir, ports):
    servers = "\n".join(
        f"    server {{ listen 127.0.0.1:{p} reuseport; location / {{ return 200 \"ok\\n\"; }} }}"
        for p in ports
    )
    return f"""worker_processes 1;
daemon off;
pid {workdir}/backend-nginx.pid;
error_log {workdir}/backend-nginx.err warn;
events {{ worker_connections 20000; }}
http {{
    access_log off;
    keepalive_requests 1000000;
{servers}
}}
"""


def nginx_balancer_conf(workdir, port, backends, workers, under_valgrind=False):
    upstream = "\n".join(f"        server 127.0.0.1:{p};" for p in backends)
    # Under valgrind nginx runs as one process, so that one pid is measured,
    # and without a raised file limit (valgrind keeps descriptors of its own).
    head = "master_process off;\n" if under_valgrind else "worker_rlimit_nofile 19000;\n"
    return f"""{head}worker_processes {workers};
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx.err warn;
events {{ worker_connections 19000; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    upstream backends {{
{upstream}
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


def haproxy_conf(port, backends, workers, under_valgrind=False):
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
    balance roundrobin
    http-reuse always
{servers}
"""


def twenty_routes():
    """`routes:` with 19 routes a benchmark request does not match, then one
    that takes everything to the upstream `backend`."""
    lines = ["routes:"]
    for i in range(19):
        match = [f"path_prefix: /service{i}/", f"host: api{i}.example.com", f"headers: {{ x-tenant: t{i} }}"][i % 3]
        lines.append(f"  - {{ match: {{ {match} }}, upstream: backend }}")
    lines.append("  - upstream: backend")
    return "\n".join(lines) + "\n"


def balancer_commands(workdir, tag, backends, workers, check_path, under_valgrind=False):
    """How to run nginx, HAProxy, switchyard (and the minimal Pingora
    balancer) over `backends`, each on a port of its own: name -> (port, argv)."""
    (workdir / tag).mkdir(exist_ok=True)
    commands = {}
    port = free_port()
    conf = workdir / f"nginx-{tag}.conf"
    conf.write_text(nginx_balancer_conf(workdir / tag, port, backends, workers, under_valgrind))
    commands["nginx"] = (port, ["nginx", "-c", str(conf), "-e", str(workdir / tag / "nginx.err")])
    port = free_port()
    conf = workdir / f"haproxy-{tag}.cfg"
    conf.write_text(haproxy_conf(port, backends, workers, under_valgrind))
    commands["haproxy"] = (port, ["haproxy", "-f", str(conf)])
    port = free_port()
    conf = workdir / f"switchyard-{tag}.yaml"
    conf.write_text(switchyard_config(workdir / tag, port, free_port(), backends, workers, check_path,
                                      extra="limits: { max_connections: 19000 }\n"))
    commands["switchyard"] = (port, [str(SWITCHYARD), "-c", str(conf)])
    if under_valgrind:
        # The cost of routing: the same, behind 19 routes that do not match
        # (path prefixes, hosts, headers) and a last one that does.
        port = free_port()
        conf = workdir / f"switchyard-routes-{tag}.yaml"
        conf.write_text(switchyard_config(workdir / tag, port, free_port(), backends, workers, check_path,
                                          extra="limits: { max_connections: 19000 }\n" + twenty_routes()))
        commands["switchyard-20-routes"] = (port, [str(SWITCHYARD), "-c", str(conf)])
    if MINIMAL.exists():
        port = free_port()
        peers = [f"127.0.0.1:{p}" for p in backends]
        commands["pingora-minimal"] = (port, [str(MINIMAL), "--listen", f"127.0.0.1:{port}", "--threads", str(workers), *peers])
    return commands


def start_balancers(procs, workdir, tag, backends, workers, check_path):
    """The balancers of `balancer_commands`, started: name -> (port, pid)."""
    started = {}
    for name, (port, argv) in balancer_commands(workdir, tag, backends, workers, check_path).items():
        started[name] = (port, procs.start(f"{name}-{tag}", argv))
    for name, (port, _) in started.items():
        wait_port(port)
    time.sleep(1.5)  # first health-check rounds
    return {name: (port, proc.pid) for name, (port, proc) in started.items()}


def instructions_per_request(workdir, backends, workers, warmup, duration, only=None):
    """User-space instructions per request of each balancer (or of those
    named in `only`), counted by valgrind's callgrind over `duration` seconds
    of wrk with 8 connections (after `warmup` seconds). Unlike time, this
    count barely moves from run to run, so it shows small changes that
    machine noise hides."""
    counts = {}
    commands = balancer_commands(workdir, "callgrind", backends, workers, "/", under_valgrind=True)
    for name, (port, argv) in commands.items():
        if only and name not in only:
            continue
        out = workdir / f"callgrind-{name}"
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", *argv],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        try:
            wait_port(port, limit=90.0, proc=proc)
            time.sleep(2)  # health checks: peers UP
            wrk(port, 8, warmup)
            subprocess.run(["callgrind_control", "--zero", str(proc.pid)], capture_output=True, check=True)
            result = wrk(port, 8, duration)
            subprocess.run(["callgrind_control", "--dump", str(proc.pid)], capture_output=True, check=True)
            if result["errors"] or result["socket_errors"]:
                raise RuntimeError(f"{name} under callgrind: {result['errors']} errors {result['socket_errors']}")
            dump = Path(f"{out}.{proc.pid}.1")
            totals = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.M)
            counts[name] = int(totals.group(1)) / result["requests"]
            print(f"callgrind {name:15} {counts[name]:8.0f} instructions/request ({result['requests']} requests)", flush=True)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return counts


def idle_clients_rss(port, pids, count):
    """RSS of `pids` before, and with, `count` idle keep-alive clients that
    each made one request."""
    sockets = []
    request = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
    before = rss_kib(pids)
    try:
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(request)
            sockets.append(s)
        for s in sockets:
            s.settimeout(10)
            s.recv(4096)
        time.sleep(1)
        return before, rss_kib(pids)
    finally:
        for s in sockets:
            s.close()


def median(rows, key):
    return statistics.median(r[key] for r in rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="workers/threads of every balancer")
    parser.add_argument("--idle", type=int, default=9000,
                        help="idle keep-alive clients for the RSS figure (HAProxy's maxconn is capped at 9990 "
                             "by this machine's 20000 file descriptor hard limit)")
    parser.add_argument("--data-connections", type=int, default=2000)
    parser.add_argument("--smoke", action="store_true", help="one short round of everything, results not written")
    parser.add_argument("--instructions", metavar="NAMES",
                        help="only count instructions per request of these balancers (comma-separated, e.g. "
                             "switchyard): the figure to compare before and after a change to the request path")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.duration, args.idle, args.data_connections = 1, 1, 200, 200

    workdir = Path(tempfile.mkdtemp(prefix="switchyard-bench-"))
    procs = Processes(workdir)
    try:
        backend_ports = [free_port() for _ in range(3)]
        (workdir / "backend-nginx.conf").write_text(nginx_backend_conf(workdir, backend_ports))
        procs.start("backend-nginx", ["nginx", "-c", str(workdir / "backend-nginx.conf"), "-e", str(workdir / "backend-nginx.err")])
        for p in backend_ports:
            wait_port(p)
        if args.instructions:
            instructions_per_request(workdir, backend_ports, args.workers, 1, 5, only=args.instructions.split(","))
            return
        balancers = start_balancers(procs, workdir, "fixed", backend_ports, args.workers, "/")
        names = list(balancers)
        if not MINIMAL.exists():
            print(f"note: {MINIMAL.relative_to(ROOT)} is not built (./bench/run.sh builds it): no pingora-minimal figures")

        print(f"# {args.rounds} rounds x {args.duration}s, {args.connections} connections, {args.workers} worker(s)")
        rows = {name: [] for name in names + ["direct"]}
        for round_no in range(args.rounds):
            for name in names + ["direct"]:
                if name == "direct":
                    port, pids = backend_ports[0], None
                else:
                    port, pid = balancers[name]
                    pids = pids_of(pid)
                before = cpu_ticks(pids) if pids else 0
                result = wrk(port, args.connections, args.duration)
                used = (cpu_ticks(pids) - before) if pids else 0
                result["cpu_us"] = used * TICK_US / max(result["requests"], 1)
                rows[name].append(result)
                print(f"round {round_no + 1} {name:15} {result['rps']:10.0f} req/s  p50 {result['p50']*1e3:6.2f} ms"
                      f"  p99 {result['p99']*1e3:6.2f} ms  cpu {result['cpu_us']:6.1f} us/req"
                      f"  errors {result['errors']} {result['socket_errors']}", flush=True)

        summary = {name: {k: median(rs, k) for k in ("rps", "p50", "p99", "cpu_us")} for name, rs in rows.items()}

        low = {}
        for name in names + ["direct"]:
            port = backend_ports[0] if name == "direct" else balancers[name][0]
            low[name] = wrk(port, 1, max(2, args.duration // 2))["p50"]

        rss = {}
        for name in names:
            port, pid = balancers[name]
            rss[name] = idle_clients_rss(port, pids_of(pid), args.idle)

        measure = 1 if args.smoke else 5
        instructions = instructions_per_request(workdir, backend_ports, args.workers, 1, measure)

        # /api/data of the demo backend (200 ms) at high concurrency.
        data_ports = [free_port() for _ in range(3)]
        start_backends(procs, DEMO_BACKEND, data_ports, delay_ms=200)
        data_balancers = start_balancers(procs, workdir, "data", data_ports, args.workers, "/api/status")
        data = {}
        for name in list(data_balancers) + ["direct"]:
            port = data_ports[0] if name == "direct" else data_balancers[name][0]
            data[name] = wrk(port, args.data_connections, max(3, args.duration), "/api/data", threads=2)
            print(f"/api/data {name:15} {data[name]['rps']:8.0f} req/s p99 {data[name]['p99']*1e3:7.1f} ms errors {data[name]['errors']} {data[name]['socket_errors']}", flush=True)
    except Exception:
        for log in sorted(workdir.glob("*.log")) + sorted(workdir.glob("**/*.err")):
            text = log.read_text(errors="replace").strip()
            if text:
                print(f"--- {log.name}:\n{text[-2000:]}", file=sys.stderr)
        raise
    finally:
        procs.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    if args.smoke:
        print("smoke run: ok")
        return
    write_results(args, summary, low, rss, instructions, data)


def markdown_table(columns, rows):
    """A Markdown table, the first column left-aligned, the others right."""
    lines = ["| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def section(heading, intro, columns, rows):
    """A results section: heading, an optional paragraph, a table."""
    return ["", f"## {heading}", ""] + ([intro, ""] if intro else []) + markdown_table(columns, rows)


def write_results(args, summary, low, rss, instructions, data):
    nginx = summary["nginx"]

    def cpu(name, value):
        return "-" if name == "direct" else value

    lines = [
        "# switchyard vs nginx vs HAProxy",
        "",
        f"Measured by `./bench/run.sh` on {time.strftime('%Y-%m-%d')}, this machine ({os.cpu_count()} cores), all on 127.0.0.1: "
        f"{args.rounds} rounds of {args.duration} s per balancer, alternating, wrk with {args.connections} keep-alive connections, "
        f"{args.workers} worker(s) per balancer, three backends (one nginx, fixed 3-byte response). Medians over rounds; "
        "ratios are to nginx (for p99 and CPU, lower is better).",
        "",
    ]
    lines += markdown_table(
        ["balancer", "requests/s", "x nginx", "p50 ms", "p99 ms", "x nginx", "CPU us/request", "x nginx"],
        [(name, f"{s['rps']:.0f}", f"{s['rps'] / nginx['rps']:.2f}", f"{s['p50']*1e3:.2f}", f"{s['p99']*1e3:.2f}",
          f"{s['p99'] / nginx['p99']:.2f}", cpu(name, f"{s['cpu_us']:.1f}"), cpu(name, f"{s['cpu_us'] / nginx['cpu_us']:.2f}"))
         for name, s in summary.items()],
    )
    lines += [
        "",
        "`direct` is wrk against one backend port without a balancer: the ceiling of this setup. "
        "`pingora-minimal` is the smallest balancer Pingora can be (examples/minimal_balancer.rs: round robin "
        "over a LoadBalancer, no health checks, metrics, retries or limits), with switchyard's allocator and "
        "dist profile but without its profile-guided optimization: what Pingora gives out of the box. "
        "nginx and HAProxy add X-Forwarded-For, as switchyard does.",
    ]
    lines += section(
        "Latency added at low load (1 connection, p50)", None,
        ["balancer", "p50 ms", "added vs direct ms"],
        [(name, f"{p50*1e3:.3f}", f"{(p50 - low['direct'])*1e3:.3f}") for name, p50 in low.items()],
    )
    lines += section(
        f"Memory with {args.idle} idle keep-alive client connections",
        "RSS of the balancer's processes just before opening the connections (after the runs above) and with them open.",
        ["balancer", "RSS before MiB", "RSS with them MiB", "KiB per connection"],
        [(name, f"{before / 1024:.1f}", f"{after / 1024:.1f}", f"{(after - before) / args.idle:.1f}")
         for name, (before, after) in rss.items()],
    )
    lines += section(
        "User-space instructions per request (callgrind)",
        "Each balancer alone under valgrind's callgrind, wrk with 8 connections; instructions executed in the "
        "balancer's own process (not the kernel's) divided by the requests served. Deterministic where time is "
        "noisy: the figure to watch when changing the request path.",
        ["balancer", "instructions/request", "x nginx"],
        [(name, f"{count:.0f}", f"{count / instructions['nginx']:.2f}") for name, count in instructions.items()],
    )
    lines += section(
        f"/api/data of the demo backend (200 ms) with {args.data_connections} connections", None,
        ["balancer", "requests/s", "p99 ms", "errors"],
        [(name, f"{d['rps']:.0f}", f"{d['p99']*1e3:.1f}", f"{d['errors']} {d['socket_errors']}".strip())
         for name, d in data.items()],
    )
    (ROOT / "bench/results.md").write_text("\n".join(lines) + "\n")
    plot(summary)
    print("\n".join(lines))


def plot(summary):
    names = [n for n in summary if n != "direct"]
    data = ROOT / "bench/.results.dat"
    data.write_text("".join(
        f"{n} {summary[n]['rps'] / summary['nginx']['rps']:.3f} {summary['nginx']['p99'] / summary[n]['p99']:.3f} "
        f"{summary['nginx']['cpu_us'] / summary[n]['cpu_us']:.3f}\n" for n in names))
    script = f"""set terminal pngcairo size 900,500
set output '{ROOT / "bench/results.png"}'
set title 'Relative to nginx (higher is better)'
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set grid ytics
set key top right
plot '{data}' using 2:xtic(1) title 'requests/s', '' using 3 title '1/p99', '' using 4 title '1/(CPU per request)'
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    data.unlink()


if __name__ == "__main__":
    sys.exit(main())
