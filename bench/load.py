"""The load of the benchmark sections: wrk (most sections), and h2load
(nghttp2) where responses of very different latencies mix on a connection
(one run each, and the figures it gives: requests/s, p50, p99, errors).

wrk's latency percentiles are wrong there: through any balancer over two
5 ms backends and one 100 ms backend in turn, with one connection, wrk
reports a p50 of 62 ms where curl, h2load and a Python client all see 7 ms
(and its latencies add up to more than the run's length, which one
connection cannot do). h2load writes each request's time to a log, which
the percentiles here are computed from."""

import os
import re
import subprocess
import tempfile


def seconds(text):
    """wrk's "1.23ms" (us, ms, s, m) in seconds."""
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def wrk(port, connections, duration, path="/", threads=1):
    """`duration` seconds of wrk with `connections` keep-alive connections
    against 127.0.0.1:`port``path`: rps, requests, p50 and p99 (seconds),
    errors (non-2xx/3xx answers) and socket_errors (wrk's text, or "")."""
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


def h2load(port, connections, duration, path="/"):
    """`duration` seconds of h2load (HTTP/1.1, one thread) with `connections`
    keep-alive connections against 127.0.0.1:`port``path`: the same figures
    as `wrk`, the percentiles from each request's time in h2load's log."""
    fd, log = tempfile.mkstemp(prefix="h2load-", suffix=".log")
    os.close(fd)
    try:
        out = subprocess.run(
            ["h2load", "--h1", "-t", "1", "-c", str(connections), "-D", str(duration), "--log-file", log,
             f"http://127.0.0.1:{port}{path}"],
            capture_output=True, text=True, check=True,
        ).stdout
        with open(log) as lines:
            # start (us since the epoch), status, time to the end of the response (us)
            times = sorted(int(line.split("\t")[2]) * 1e-6 for line in lines if line.strip())
    finally:
        os.unlink(log)
    if not times:
        raise RuntimeError(f"h2load completed no request:\n{out}")
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                     r"(\d+) errored, (\d+) timeout", out)
    statuses = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    failed, errored, timeout = (int(n) for n in done.groups()[2:])
    percentile = lambda p: times[min(len(times) - 1, int(p / 100 * len(times)))]
    return {
        "rps": len(times) / duration,
        "requests": len(times),
        "p50": percentile(50),
        "p99": percentile(99),
        "errors": int(statuses.group(3)) + int(statuses.group(4)),
        "socket_errors": f"{failed} failed, {errored} errored, {timeout} timeout" if failed + errored + timeout else "",
    }
