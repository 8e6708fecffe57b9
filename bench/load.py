"""The load of the benchmark sections: wrk (most sections), h2load
(nghttp2) where responses of very different latencies mix on a connection,
and `openssl s_time` for new TLS handshakes (wrk resumes TLS sessions when
it reconnects); one run each, and the figures it gives: requests/s, p50,
p99, errors, and the CPU time the client itself used, to tell when the
client is the bottleneck (h2load and s_time). h2load speaks HTTPS too
(`scheme="https"`).

wrk's latency percentiles are wrong there: through any balancer over two
5 ms backends and one 100 ms backend in turn, with one connection, wrk
reports a p50 of 62 ms where curl, h2load and a Python client all see 7 ms
(and its latencies add up to more than the run's length, which one
connection cannot do). h2load writes each request's time to a log, which
the percentiles here are computed from."""

import os
import re
import resource
import subprocess
import tempfile
import time


def seconds(text):
    """wrk's "1.23ms" (us, ms, s, m) in seconds."""
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run_client(argv):
    """Run the load client `argv` to its end: its output and the CPU time
    (user and system, seconds) it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return out, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


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


def h2load(port, connections, duration, path="/", scheme="http"):
    """`duration` seconds of h2load (HTTP/1.1, one thread; over TLS it offers
    only `http/1.1` by ALPN) with `connections` keep-alive connections
    against `scheme`://127.0.0.1:`port``path`: the same figures as `wrk`,
    the percentiles from each request's time in h2load's log, and over TLS
    `tls`: the protocol, cipher, key exchange and ALPN protocol it got."""
    fd, log = tempfile.mkstemp(prefix="h2load-", suffix=".log")
    os.close(fd)
    try:
        out, client_cpu = run_client(
            ["h2load", "--h1", "-t", "1", "-c", str(connections), "-D", str(duration), "--log-file", log,
             f"{scheme}://127.0.0.1:{port}{path}"])
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
    tls = re.search(r"TLS Protocol: (\S+)\nCipher: (\S+)\nServer Temp Key: (\S+) .*\nApplication protocol: (\S+)", out)
    return {
        "client_cpu": client_cpu,
        "tls": "{}, {}, {}, ALPN {}".format(*tls.groups()) if tls else "",
        "rps": len(times) / duration,
        "requests": len(times),
        "p50": percentile(50),
        "p99": percentile(99),
        "errors": int(statuses.group(3)) + int(statuses.group(4)),
        "socket_errors": f"{failed} failed, {errored} errored, {timeout} timeout" if failed + errored + timeout else "",
    }


def tls13_handshakes(port, clients, duration, path="/"):
    """`duration` seconds of `clients` parallel `openssl s_time -new -tls1_3`
    against 127.0.0.1:`port`: each connection a full TLS 1.3 handshake (a
    new session every time, none resumed), one HTTP/1.0 GET of `path` and
    the close. rps (handshakes/s over the wall time of the run), requests,
    bytes_per_response, seconds (that wall time), client_cpu, errors (the
    clients that failed, with their last line)."""
    # s_time sends "GET <page> HTTP/1.0\r\n\r\n": a Host header (which
    # switchyard requires) rides in the page, the rest in a harmless header.
    page = f"{path} HTTP/1.0\r\nHost: localhost\r\nX-Pad:"
    argv = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-tls1_3", "-time", str(duration),
            "-www", page]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              text=True) for _ in range(clients)]
    outputs = [(proc.communicate()[0], proc.returncode) for proc in procs]
    seconds = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    done, read, failures = 0, 0, []
    for out, code in outputs:
        figures = re.search(r"(\d+) connections in [\d.]+ real seconds, (\d+) bytes read per connection", out)
        if code != 0 or not figures:
            failures.append(out.strip().splitlines()[-1] if out.strip() else f"exit {code}")
            continue
        done += int(figures.group(1))
        read += int(figures.group(1)) * int(figures.group(2))
    return {
        "rps": done / seconds,
        "requests": done,
        "bytes_per_response": read / max(done, 1),
        "seconds": seconds,
        "client_cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "errors": len(failures),
        "socket_errors": "; ".join(failures),
    }
