"""The benchmark section "one slow backend" (issue #14): what a balancer
does when one of its backends turns slow, which is where balancing that sees
load pays. Three demo backends (examples/backend.rs, /api/data), two
answering in 5 ms and one in 100 ms, then all three in 5 ms (what each
algorithm costs when there is nothing to avoid); switchyard with each of its
algorithms, nginx with round robin and `least_conn`, HAProxy with
`roundrobin`, `leastconn` and `random(2)`; h2load (HTTP/1.1) with 32
connections, the balancers in alternating rounds. Not wrk: its latency
percentiles are wrong when slow and fast responses mix on a connection
(see load.py). Per balancer: requests/s, p50, p99 and the
share of the requests the slow backend answered, counted exactly by the
backends' own request counters (their /metrics) before and after each run.

Health checks are each balancer's usual: switchyard probes /api/status (no
delay) every second, HAProxy connects every second, nginx has only its
passive defaults; 100 ms is far below every timeout, so no balancer takes
the slow backend out: each has to see the slowness by itself."""

import re
import time
import urllib.request

from balancers import (DEMO_BACKEND, accepts_algorithm, haproxy_command, home_of, nginx_command,
                       start_balancers, switchyard_command)
from launch import Processes, free_port, start_backends
from load import h2load
from report import ROOT, gnuplot, markdown_table, summarize

ALGORITHMS = ("round_robin", "random", "least_conn", "least_request", "ewma")
NGINX_METHODS = {"nginx-round_robin": None, "nginx-least_conn": "least_conn"}
HAPROXY_BALANCES = ("roundrobin", "leastconn", "random(2)")
# /api/data delay of b1, b2, b3 in ms; b3 is the one that turns slow.
CONDITIONS = {"slow": [5, 5, 100], "healthy": [5, 5, 5]}
SLOW = 2
CONNECTIONS = 32
PATH = "/api/data"
# After a run, until the slow backend has answered what was still in flight
# (so that it is not counted in the next balancer's run).
SETTLE_S = 0.25
SERVED = re.compile(r'^demo_backend_requests_total\{path="/api/data",status="\d+"\} (\d+)$', re.M)


def balancer_commands(workdir, tag, backends, workers):
    """name -> (port, argv) of every balancer of the section over `backends`;
    a switchyard algorithm that this build does not know is left out."""
    commands = {}
    for algorithm in ALGORITHMS:
        if accepts_algorithm(algorithm):
            name, port = f"switchyard-{algorithm}", free_port()
            commands[name] = (port, switchyard_command(home_of(workdir, tag, name), port, backends, workers,
                                                       "/api/status", algorithm))
    for name, method in NGINX_METHODS.items():
        port = free_port()
        commands[name] = (port, nginx_command(home_of(workdir, tag, name), port, backends, workers, method))
    for balance in HAPROXY_BALANCES:
        name, port = f"haproxy-{balance}", free_port()
        commands[name] = (port, haproxy_command(home_of(workdir, tag, name), port, backends, workers, balance))
    return commands


def served(ports):
    """The /api/data requests each backend has answered so far, by its own
    counter."""
    counts = []
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            counts.append(sum(int(n) for n in SERVED.findall(answer.read().decode())))
    return counts


def run_condition(workdir, condition, delays, args):
    """Alternating rounds over the balancers with backends of `delays`:
    name -> medians of rps, p50, p99 and slow_share, and the errors of all
    rounds."""
    home = workdir / f"slow-{condition}"
    home.mkdir()
    with Processes(home) as procs:
        ports = [free_port() for _ in delays]
        start_backends(procs, DEMO_BACKEND, ports, delay_ms=delays)
        balancers = start_balancers(procs, balancer_commands(workdir, condition, ports, args.workers), condition)
        print(f"# one slow backend, {condition}: delays {delays} ms, {args.rounds} rounds x {args.duration}s, "
              f"{CONNECTIONS} connections, {args.workers} worker(s)", flush=True)
        rows = {name: [] for name in balancers}
        for round_no in range(args.rounds):
            for name, (port, _) in balancers.items():
                before = served(ports)
                result = h2load(port, CONNECTIONS, args.duration, PATH)
                time.sleep(SETTLE_S)
                counts = [after - was for after, was in zip(served(ports), before)]
                result["slow_share"] = counts[SLOW] / max(sum(counts), 1)
                rows[name].append(result)
                print(f"round {round_no + 1} {condition:7} {name:24} {result['rps']:8.0f} req/s"
                      f"  p50 {result['p50']*1e3:7.2f} ms  p99 {result['p99']*1e3:7.2f} ms"
                      f"  slow share {result['slow_share']*100:5.1f} %  errors {result['errors']} "
                      f"{result['socket_errors']}", flush=True)
    return {name: summarize(results, ("rps", "p50", "p99", "slow_share")) for name, results in rows.items()}


def measure(workdir, args):
    """The section's figures: condition ("slow", "healthy") -> balancer ->
    medians. The smoke run measures only "slow": "healthy" runs the same
    code with other delays."""
    conditions = {"slow": CONDITIONS["slow"]} if args.smoke else CONDITIONS
    return {condition: run_condition(workdir, condition, delays, args) for condition, delays in conditions.items()}


def goal_checks(results):
    """Issue #14's goals for this section, checked on `results`."""
    slow, healthy = results["slow"], results["healthy"]
    ours = {name: s for name, s in slow.items() if name.startswith("switchyard-")}
    theirs = {name: s for name, s in slow.items() if not name.startswith("switchyard-")}
    best = min(ours, key=lambda name: (ours[name]["p99"], -ours[name]["rps"]))
    best_p99 = min(theirs, key=lambda name: theirs[name]["p99"])
    best_rps = max(theirs, key=lambda name: theirs[name]["rps"])

    def verdict(met):
        return "met" if met else "not met"

    lines = [
        f"Goal: switchyard's best algorithm with the slow backend beats the best of nginx and HAProxy on p99 and "
        f"requests/s. Best switchyard (lowest p99): `{best}`, p99 {ours[best]['p99']*1e3:.2f} ms, "
        f"{ours[best]['rps']:.0f} requests/s; best of the others: p99 {theirs[best_p99]['p99']*1e3:.2f} ms "
        f"(`{best_p99}`), {theirs[best_rps]['rps']:.0f} requests/s (`{best_rps}`). "
        f"p99: {verdict(ours[best]['p99'] < theirs[best_p99]['p99'])}; "
        f"requests/s: {verdict(ours[best]['rps'] > theirs[best_rps]['rps'])}.",
    ]
    if "switchyard-ewma" in slow and "switchyard-ewma" in healthy:
        ratio = slow["switchyard-ewma"]["p99"] / healthy["switchyard-ewma"]["p99"]
        lines.append(f"Goal: `ewma`'s p99 with the slow backend at most 2x its p99 with all three healthy: "
                     f"{ratio:.2f}x, {verdict(ratio <= 2)}.")
    else:
        lines.append("Goal: `ewma`'s p99 at most 2x the all-healthy p99: not measured (this build has no `ewma`).")
    return lines


def table(summary):
    return markdown_table(
        ["balancer", "requests/s", "p50 ms", "p99 ms", "slow share %", "errors"],
        [(name, f"{s['rps']:.0f}", f"{s['p50']*1e3:.2f}", f"{s['p99']*1e3:.2f}", f"{s['slow_share']*100:.1f}",
          f"{s['errors']} {s['socket_errors']}".strip()) for name, s in summary.items()],
    )


def report(results, args):
    """The section of bench/results.md."""
    fast, slow = CONDITIONS["slow"][0], CONDITIONS["slow"][SLOW]
    lines = [
        "## One slow backend",
        "",
        f"Measured by `./bench/run.sh --section slow` on {time.strftime('%Y-%m-%d')}: three demo backends "
        f"(examples/backend.rs, `{PATH}`), two answering in {fast} ms and one (b3) in {slow} ms, then all three in "
        f"{fast} ms; {args.rounds} rounds of {args.duration} s per balancer, alternating, h2load (HTTP/1.1) with "
        f"{CONNECTIONS} keep-alive connections (not wrk: its latency percentiles are wrong when 5 ms and 100 ms "
        "responses mix on a connection; h2load logs each request's time), "
        f"{args.workers} worker(s) per balancer. Medians over rounds. Slow share: the "
        "requests b3 answered, by the backends' own counters. No balancer's health checks take b3 out (switchyard "
        "probes /api/status, HAProxy connects, nginx has only passive checks): each has to see the slowness "
        "through its algorithm. `switchyard-ALGORITHM` is switchyard with that `algorithm`; nginx and HAProxy "
        "with their own names for theirs.",
        "",
        f"### Two backends at {fast} ms, one at {slow} ms",
        "",
        *table(results["slow"]),
        "",
        f"### All three at {fast} ms",
        "",
        *table(results["healthy"]),
        "",
    ]
    return lines + goal_checks(results)


def plot(results):
    """bench/results-slow.png: requests/s and p99 of every balancer, with
    the slow backend and with all healthy."""
    slow, healthy = results["slow"], results["healthy"]
    rows = [f"{name} {slow[name]['rps']:.0f} {healthy[name]['rps']:.0f} {slow[name]['p99']*1e3:.2f} "
            f"{healthy[name]['p99']*1e3:.2f}" for name in slow if name in healthy]
    script = f"""set terminal pngcairo noenhanced size 1200,600
set output '{ROOT / "bench/results-slow.png"}'
set multiplot layout 1,2 title 'One slow backend: two at 5 ms, one at 100 ms (and all three at 5 ms); h2load, 32 connections'
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by 90 right nomirror
set yrange [0:*]
set grid ytics
set key above
set title 'requests/s (higher is better)'
plot '{{data}}' using 2:xtic(1) title 'one slow', '' using 3 title 'all healthy'
set title 'p99 ms (lower is better)'
plot '{{data}}' using 4:xtic(1) title 'one slow', '' using 5 title 'all healthy'
unset multiplot
"""
    gnuplot(script, rows, "results-slow")
