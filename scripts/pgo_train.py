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

from launch import Processes, free_port, start_backends, start_switchyard, switchyard_config


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            response.read()
    except urllib.error.HTTPError:
        pass  # a 404 is part of the training too


def main():
    switchyard, backend = sys.argv[1:3]
    with tempfile.TemporaryDirectory(prefix="switchyard-pgo-") as work, Processes(work) as procs:
        ports = [free_port() for _ in range(3)]
        start_backends(procs, backend, ports, delay_ms=0)
        listen, metrics = free_port(), free_port()
        conf = Path(work) / "switchyard.yaml"
        conf.write_text(switchyard_config(work, listen, metrics, ports))
        proxy = start_switchyard(procs, switchyard, ["-c", str(conf)], listen)
        subprocess.run(["wrk", "-t1", "-c64", "-d8s", f"http://127.0.0.1:{listen}/api/data"],
                       check=True, stdout=subprocess.DEVNULL)
        for path in ["/check", "/check?format=json", "/no/such/path"]:
            get(listen, path)
        get(metrics, "/metrics")
        proxy.terminate()
        proxy.wait(timeout=30)  # the profile is written on the way out
        print(f"pgo: training run done (switchyard exited with {proxy.returncode})")


if __name__ == "__main__":
    sys.exit(main())
