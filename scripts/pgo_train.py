#!/usr/bin/env python3
"""The training run of the PGO build (scripts/pgo.sh).

usage: pgo_train.py INSTRUMENTED_SWITCHYARD DEMO_BACKEND

Three demo backends (no delay) and the instrumented switchyard in front of
them, all on 127.0.0.1 ephemeral ports; wrk drives the request path the
benchmark measures (keep-alive clients, round robin, health checks on) and
the status page and metrics get a few requests. switchyard writes its
profile when it exits; every process started here is stopped at the end.
"""

import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from loopback import free_port, wait_port


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            response.read()
    except urllib.error.HTTPError:
        pass  # a 404 is part of the training too


def main():
    switchyard, backend = sys.argv[1:3]
    procs = []
    with tempfile.TemporaryDirectory(prefix="switchyard-pgo-") as work:
        try:
            ports = [free_port() for _ in range(3)]
            for i, port in enumerate(ports):
                procs.append(subprocess.Popen(
                    [backend, "--listen", f"127.0.0.1:{port}", "--name", f"b{i + 1}", "--delay-ms", "0", "--threads", "1"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            for port, proc in zip(ports, procs):
                wait_port(port, limit=60.0, proc=proc)
            listen, metrics = free_port(), free_port()
            peers = ", ".join(f"127.0.0.1:{p}" for p in ports)
            conf = Path(work) / "switchyard.yaml"
            conf.write_text(f"""server:
  threads: 1
  pid_file: {work}/switchyard.pid
  upgrade_sock: {work}/switchyard.sock
  grace_period_seconds: 0
  graceful_shutdown_timeout_seconds: 1
listen: 127.0.0.1:{listen}
metrics: 127.0.0.1:{metrics}
upstreams:
  backend:
    peers: [{peers}]
    health_check: {{ path: /api/status, interval: 1s }}
""")
            proxy = subprocess.Popen([switchyard, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(proxy)
            wait_port(listen, limit=60.0, proc=proxy)
            subprocess.run(["wrk", "-t1", "-c64", "-d8s", f"http://127.0.0.1:{listen}/api/data"],
                           check=True, stdout=subprocess.DEVNULL)
            for path in ["/check", "/check?format=json", "/no/such/path"]:
                get(listen, path)
            get(metrics, "/metrics")
            proxy.terminate()
            proxy.wait(timeout=30)  # the profile is written on the way out
            print(f"pgo: training run done (switchyard exited with {proxy.returncode})")
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()


if __name__ == "__main__":
    sys.exit(main())
