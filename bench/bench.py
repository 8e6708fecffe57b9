#!/usr/bin/env python3
"""switchyard vs nginx vs HAProxy, side by side on one machine.

Sections (`--section NAMES` runs only those; default: all):
  throughput    every balancer fronts the same three backends (one nginx
                serving a small fixed response on three ports), round robin,
                keep-alive to the backends, no access log, the same number
                of workers; wrk drives each in turn, A B C A B C, so that
                machine drift hits all alike; the backends are also measured
                directly (the ceiling of this setup). Per balancer:
                requests/s, p50, p99 and CPU time per request (from
                /proc/<pid>/stat of the balancer's processes), medians over
                the rounds, and ratios to nginx. Also the latency added at
                one connection and RSS with 9,000 idle keep-alive clients.
  instructions  user-space instructions per request under callgrind (also
                switchyard with each load-aware algorithm and behind 20
                routes).
  data          /api/data of the demo backend (200 ms) at high concurrency.
  slow          one slow backend (bench/slow_backend.py): two demo backends
                at 5 ms and one at 100 ms, then all three at 5 ms; switchyard
                with each algorithm, nginx and HAProxy with theirs.
  tls           HTTPS (bench/tls_termination.py): the throughput section's
                backends behind nginx, HAProxy and switchyard terminating
                TLS with one ECDSA P-256 certificate made for the run;
                keep-alive requests/s (h2load, HTTP/1.1) and new TLS 1.3
                handshakes/s (parallel `openssl s_time -new -tls1_3`).
`pingora-minimal` (examples/minimal_balancer.rs, Pingora's quick-start
balancer) runs beside them where it is built: the part of switchyard's cost
that is Pingora's own.

Results go to bench/results.md (only the sections that ran are replaced),
bench/results.png (throughput) and bench/results-slow.png (slow).
Everything listens on 127.0.0.1; every process started here is stopped at
the end.
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from balancers import (DEMO_BACKEND, MINIMAL, ROOT, SWITCHYARD, accepts_algorithm, haproxy_command, home_of,
                       nginx_command, start_balancers, switchyard_command)
from launch import Processes, free_port, start_backends, wait_port
from load import wrk
from processes import TICK_US, cpu_ticks, pids_of, rss_kib
from report import gnuplot, markdown_table, median, section, write_results
import slow_backend
import tls_termination

SECTIONS = ("throughput", "instructions", "data", "slow", "tls")
# switchyard's load-aware algorithms, each counted under callgrind as
# `switchyard-ALGORITHM` (plain `switchyard` is the default, round_robin).
COUNTED_ALGORITHMS = ("least_conn", "least_request", "ewma")


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


def twenty_routes():
    """`routes:` with 19 routes a benchmark request does not match, then one
    that takes everything to the upstream `backend`."""
    lines = ["routes:"]
    for i in range(19):
        match = [f"path_prefix: /service{i}/", f"host: api{i}.example.com", f"headers: {{ x-tenant: t{i} }}"][i % 3]
        lines.append(f"  - {{ match: {{ {match} }}, upstream: backend }}")
    lines.append("  - upstream: backend")
    return "\n".join(lines) + "\n"


def balancer_commands(workdir, tag, backends, workers, check_path, under_valgrind=False, algorithms=()):
    """How to run nginx, HAProxy, switchyard (and the minimal Pingora
    balancer) over `backends`, each on a port of its own: name -> (port, argv).
    Under valgrind also switchyard behind 20 routes, and switchyard with each
    of `algorithms` this build knows (`switchyard-ALGORITHM`)."""
    commands = {}
    port = free_port()
    commands["nginx"] = (port, nginx_command(home_of(workdir, tag, "nginx"), port, backends, workers,
                                             under_valgrind=under_valgrind))
    port = free_port()
    commands["haproxy"] = (port, haproxy_command(home_of(workdir, tag, "haproxy"), port, backends, workers,
                                                 under_valgrind=under_valgrind))
    port = free_port()
    commands["switchyard"] = (port, switchyard_command(home_of(workdir, tag, "switchyard"), port, backends,
                                                       workers, check_path))
    if under_valgrind:
        # The cost of routing: the same, behind 19 routes that do not match
        # (path prefixes, hosts, headers) and a last one that does.
        port = free_port()
        commands["switchyard-20-routes"] = (port, switchyard_command(
            home_of(workdir, tag, "switchyard-20-routes"), port, backends, workers, check_path, extra=twenty_routes()))
    for algorithm in algorithms:
        if accepts_algorithm(algorithm):
            name, port = f"switchyard-{algorithm}", free_port()
            commands[name] = (port, switchyard_command(home_of(workdir, tag, name), port, backends, workers,
                                                       check_path, algorithm))
    if MINIMAL.exists():
        port = free_port()
        peers = [f"127.0.0.1:{p}" for p in backends]
        commands["pingora-minimal"] = (port, [str(MINIMAL), "--listen", f"127.0.0.1:{port}", "--threads", str(workers), *peers])
    return commands


def instructions_per_request(workdir, backends, workers, warmup, duration, only=None, algorithms=COUNTED_ALGORITHMS):
    """User-space instructions per request of each balancer (or of those
    named in `only`), counted by valgrind's callgrind over `duration` seconds
    of wrk with 8 connections (after `warmup` seconds). Unlike time, this
    count barely moves from run to run, so it shows small changes that
    machine noise hides."""
    counts = {}
    commands = balancer_commands(workdir, "callgrind", backends, workers, "/", under_valgrind=True,
                                 algorithms=algorithms)
    for name in sorted(set(only or ()) - set(commands)):
        print(f"note: no balancer {name} to count (known here: {', '.join(commands)})", flush=True)
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


def start_fixed_backends(procs, workdir):
    """One nginx answering a fixed 3-byte response on three ports: the
    backends of the throughput and instructions sections."""
    ports = [free_port() for _ in range(3)]
    (workdir / "backend-nginx.conf").write_text(nginx_backend_conf(workdir, ports))
    procs.start("backend-nginx", ["nginx", "-c", str(workdir / "backend-nginx.conf"), "-e", str(workdir / "backend-nginx.err")])
    for p in ports:
        wait_port(p)
    return ports


def measure_throughput(procs, workdir, args, backend_ports):
    """Alternating rounds over the balancers, then the latency added at one
    connection and the memory of idle clients: (summary, low, rss)."""
    commands = balancer_commands(workdir, "fixed", backend_ports, args.workers, "/")
    balancers = start_balancers(procs, commands, "fixed")
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
    return summary, low, rss


def measure_data(procs, workdir, args):
    """/api/data of the demo backend (200 ms) at high concurrency."""
    data_ports = [free_port() for _ in range(3)]
    start_backends(procs, DEMO_BACKEND, data_ports, delay_ms=200)
    data_balancers = start_balancers(procs, balancer_commands(workdir, "data", data_ports, args.workers, "/api/status"), "data")
    data = {}
    for name in list(data_balancers) + ["direct"]:
        port = data_ports[0] if name == "direct" else data_balancers[name][0]
        data[name] = wrk(port, args.data_connections, max(3, args.duration), "/api/data", threads=2)
        print(f"/api/data {name:15} {data[name]['rps']:8.0f} req/s p99 {data[name]['p99']*1e3:7.1f} ms errors {data[name]['errors']} {data[name]['socket_errors']}", flush=True)
    return data


def sections_arg(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown section(s) {', '.join(unknown) or '(none)'}; known: {', '.join(SECTIONS)}")
    return names


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--section", type=sections_arg, default=list(SECTIONS), metavar="NAMES",
                        help=f"run only these sections (comma-separated: {', '.join(SECTIONS)}; default: all); "
                             "bench/results.md keeps the others' last figures")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections of the throughput section")
    parser.add_argument("--workers", type=int, default=1, help="workers/threads of every balancer")
    parser.add_argument("--idle", type=int, default=9000,
                        help="idle keep-alive clients for the RSS figure (HAProxy's maxconn is capped at 9990 "
                             "by this machine's 20000 file descriptor hard limit)")
    parser.add_argument("--data-connections", type=int, default=2000)
    parser.add_argument("--smoke", action="store_true", help="one short round of everything, results not written")
    parser.add_argument("--instructions", metavar="NAMES",
                        help="only count instructions per request of these balancers (comma-separated, e.g. "
                             "switchyard,switchyard-least_conn,switchyard-least_request,switchyard-ewma): the "
                             "figure to compare before and after a change to the request path")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.duration, args.idle, args.data_connections = 1, 1, 200, 200

    workdir = Path(tempfile.mkdtemp(prefix="switchyard-bench-"))
    procs = Processes(workdir)
    results = {}
    try:
        if args.instructions or {"throughput", "instructions", "tls"} & set(args.section):
            backend_ports = start_fixed_backends(procs, workdir)
        if args.instructions:
            instructions_per_request(workdir, backend_ports, args.workers, 1, 5, only=args.instructions.split(","))
            return
        if "throughput" in args.section:
            results["throughput"] = measure_throughput(procs, workdir, args, backend_ports)
        if "instructions" in args.section:
            # The smoke run leaves the algorithm variants out: they differ
            # from `switchyard` by one line of config, which the slow
            # section runs anyway.
            measure = 1 if args.smoke else 5
            results["instructions"] = instructions_per_request(
                workdir, backend_ports, args.workers, 1, measure,
                algorithms=() if args.smoke else COUNTED_ALGORITHMS)
        if "data" in args.section:
            results["data"] = measure_data(procs, workdir, args)
        if "slow" in args.section:
            results["slow"] = slow_backend.measure(workdir, args)
        if "tls" in args.section:
            results["tls"] = tls_termination.measure(procs, workdir, args, backend_ports)
    except Exception:
        for log in sorted(workdir.glob("**/*.log")) + sorted(workdir.glob("**/*.err")):
            text = log.read_text(errors="replace").strip()
            if text:
                print(f"--- {log.relative_to(workdir)}:\n{text[-2000:]}", file=sys.stderr)
        raise
    finally:
        procs.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    if args.smoke:
        print("smoke run: ok")
        return
    report(args, results)


def report(args, results):
    """Write the sections in `results` to bench/results.md and their plots."""
    writers = {
        "throughput": lambda r: throughput_lines(args, *r),
        "instructions": instructions_lines,
        "data": lambda r: data_lines(args, r),
        "slow": lambda r: slow_backend.report(r, args),
        "tls": lambda r: tls_termination.report(r, args),
    }
    sections = {name: writers[name](r) for name, r in results.items()}
    write_results(sections, SECTIONS)
    if "throughput" in results:
        plot(results["throughput"][0])
    if "slow" in results:
        slow_backend.plot(results["slow"])
    for lines in sections.values():
        print("\n".join(lines))


def throughput_lines(args, summary, low, rss):
    nginx = summary["nginx"]

    def cpu(name, value):
        return "-" if name == "direct" else value

    lines = [
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
    return lines


def instructions_lines(instructions):
    return instructions_table(instructions) + algorithm_cost(instructions)


def algorithm_cost(instructions):
    """Issue #14's goal: each load-aware algorithm costs at most 3 % more
    instructions per request than round_robin (`switchyard`)."""
    counted = [a for a in COUNTED_ALGORITHMS if f"switchyard-{a}" in instructions]
    if "switchyard" not in instructions or not counted:
        return []
    extra = {a: instructions[f"switchyard-{a}"] / instructions["switchyard"] - 1 for a in counted}
    costs = ", ".join(f"`{a}` {cost * 100:+.1f} %" for a, cost in extra.items())
    verdict = "met" if all(cost <= 0.03 for cost in extra.values()) else "not met"
    return ["", f"Goal: each load-aware algorithm at most 3 % more instructions per request than round_robin: "
                f"{costs}; {verdict}."]


def instructions_table(instructions):
    return section(
        "User-space instructions per request (callgrind)",
        "Each balancer alone under valgrind's callgrind, wrk with 8 connections; instructions executed in the "
        "balancer's own process (not the kernel's) divided by the requests served. Deterministic where time is "
        "noisy: the figure to watch when changing the request path. `switchyard` uses round_robin; "
        "`switchyard-ALGORITHM` is the same config with that `algorithm` (fixed-response backends, so all "
        "equally fast).",
        ["balancer", "instructions/request", "x nginx"],
        [(name, f"{count:.0f}", f"{count / instructions['nginx']:.2f}") for name, count in instructions.items()],
    )


def data_lines(args, data):
    return section(
        f"/api/data of the demo backend (200 ms) with {args.data_connections} connections", None,
        ["balancer", "requests/s", "p99 ms", "errors"],
        [(name, f"{d['rps']:.0f}", f"{d['p99']*1e3:.1f}", f"{d['errors']} {d['socket_errors']}".strip())
         for name, d in data.items()],
    )


def plot(summary):
    """bench/results.png: the throughput section relative to nginx."""
    rows = [f"{n} {summary[n]['rps'] / summary['nginx']['rps']:.3f} {summary['nginx']['p99'] / summary[n]['p99']:.3f} "
            f"{summary['nginx']['cpu_us'] / summary[n]['cpu_us']:.3f}" for n in summary if n != "direct"]
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
plot '{{data}}' using 2:xtic(1) title 'requests/s', '' using 3 title '1/p99', '' using 4 title '1/(CPU per request)'
"""
    gnuplot(script, rows, "results")


if __name__ == "__main__":
    sys.exit(main())
