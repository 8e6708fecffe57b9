"""wrk, the load of every benchmark section: one run and the figures it
reports (requests/s, p50, p99, errors)."""

import re
import subprocess


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
