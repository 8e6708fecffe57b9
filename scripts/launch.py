#!/usr/bin/env python3
"""One launcher for "demo backends + switchyard" on 127.0.0.1, shared by the
local demo (scripts/demo.sh), the PGO training run (scripts/pgo_train.py)
and the benchmark (bench/bench.py): ports, processes that are stopped at the
end, the demo backends, and switchyard with a config over them.

As a program it is the demo:
    launch.py SWITCHYARD DEMO_BACKEND [SWITCHYARD ARGS...]
three demo backends on 127.0.0.1:8001-8003 and switchyard in front of them
(its built-in config, unless the arguments say otherwise), until Ctrl-C or
until one of them exits.
"""

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port():
    """An ephemeral port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_busy(port):
    """Whether something accepts on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_port(port, limit=15.0, proc=None):
    """Wait until something accepts on 127.0.0.1:`port`; fail early when
    `proc`, the process meant to listen there, has exited."""
    deadline = time.time() + limit
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode} before listening on {port}")
        if port_busy(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class Processes:
    """Every process started here, stopped at the end (SIGTERM, then SIGKILL
    after `grace` seconds). Output goes to `<log_dir>/<name>.log`, or to the
    terminal without a `log_dir`."""

    def __init__(self, log_dir=None):
        self.log_dir = Path(log_dir) if log_dir else None
        self.procs = []

    def start(self, name, argv):
        out = open(self.log_dir / f"{name}.log", "w") if self.log_dir else None
        err = subprocess.STDOUT if out else None
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def wait_any(self):
        """Block until one of the processes exits; that one."""
        while True:
            for proc in self.procs:
                if proc.poll() is not None:
                    return proc
            time.sleep(0.1)

    def stop(self, sig=signal.SIGTERM, grace=5.0):
        """Stop every process still running; safe to call more than once."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(sig)
        for proc in self.procs:
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.stop()


def start_backends(procs, backend, ports, delay_ms=None):
    """The demo backend (`backend`, its binary) on each of `ports`, named
    b1, b2, ..., with a response delay of `delay_ms` (None: the backend's
    own default; a list: one delay per port); returns once they all accept."""
    delays = delay_ms if isinstance(delay_ms, list) else [delay_ms] * len(ports)
    started = []
    for i, (port, delay) in enumerate(zip(ports, delays)):
        argv = [str(backend), "--listen", f"127.0.0.1:{port}", "--name", f"b{i + 1}", "--threads", "1"]
        if delay is not None:
            argv += ["--delay-ms", str(delay)]
        started.append(procs.start(f"backend-b{i + 1}", argv))
    for port, proc in zip(ports, started):
        wait_port(port, limit=60.0, proc=proc)
    return started


def switchyard_config(workdir, listen, metrics, peers, threads=1, check_path="/api/status", extra="",
                      algorithm=None, tls=None):
    """A switchyard config over the peers on 127.0.0.1:`peers`, its files in
    `workdir`, no grace period; `extra`: more top-level YAML; `algorithm`:
    the upstream's (None: the default); `tls`: (certificate file, key file)
    to make the listener a TLS one (HTTP/2 by ALPN on, the default)."""
    peer_list = ", ".join(f"127.0.0.1:{p}" for p in peers)
    algorithm_line = f"    algorithm: {algorithm}\n" if algorithm else ""
    if tls:
        cert, key = tls
        listen_yaml = f"\n  - {{ addr: 127.0.0.1:{listen}, tls: {{ certificates: [ {{ cert: {cert}, key: {key} }} ] }} }}"
    else:
        listen_yaml = f"127.0.0.1:{listen}"
    return f"""server:
  threads: {threads}
  pid_file: {workdir}/switchyard.pid
  upgrade_sock: {workdir}/switchyard.sock
  grace_period_seconds: 0
  graceful_shutdown_timeout_seconds: 1
listen: {listen_yaml}
metrics: 127.0.0.1:{metrics}
{extra}upstreams:
  backend:
{algorithm_line}    peers: [{peer_list}]
    health_check: {{ path: {check_path}, interval: 1s }}
"""


def start_switchyard(procs, switchyard, args, listen, name="switchyard", limit=60.0):
    """`switchyard` with `args`; returns once it accepts on `listen`."""
    proc = procs.start(name, [str(switchyard), *args])
    wait_port(listen, limit=limit, proc=proc)
    return proc


DEMO_PORTS = [8001, 8002, 8003]
DEMO_MESSAGE = """
switchyard demo is running (Ctrl-C stops everything):
  curl localhost:8080/api/data              # through the balancer
  curl localhost:8080/check                 # peer states (add ?format=json for details)
  curl localhost:8001/api/switch            # switch backend b1 off (again: on)
  curl localhost:6192/metrics               # Prometheus metrics
  curl localhost:6193/upstreams             # the admin API: peers, weights, admin states
  curl -X POST localhost:6193/upstreams/backend/peers/127.0.0.1:8002/drain   # drain b2
"""


def demo(switchyard, backend, args):
    busy = [p for p in DEMO_PORTS + [8080, 6192, 6193] if port_busy(p)]
    if busy:
        print(f"demo: port(s) {busy} already in use; stop whatever listens there first", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    procs = Processes()
    try:
        start_backends(procs, backend, DEMO_PORTS)
        proxy = procs.start("switchyard", [str(switchyard), *args])
        try:
            wait_port(8080, limit=30.0, proc=proxy)
            print(DEMO_MESSAGE, flush=True)
        except RuntimeError:
            if proxy.poll() is not None:
                raise
            print("demo: switchyard runs, but not on :8080 (its config says otherwise)", flush=True)
        exited = procs.wait_any()
        print(f"demo: {exited.args[0]} exited; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except RuntimeError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C (or the terminal's SIGINT to the whole group) must
        # not interrupt the cleanup half-way.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.stop(signal.SIGINT)
        print("demo: stopped")

if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(demo(sys.argv[1], sys.argv[2], sys.argv[3:]))
