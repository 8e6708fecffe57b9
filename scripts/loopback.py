"""Ports on 127.0.0.1 for the processes a script starts: shared by the PGO
training run (scripts/pgo_train.py) and the benchmark (bench/bench.py)."""

import socket
import time


def free_port():
    """An ephemeral port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, limit=15.0, proc=None):
    """Wait until something accepts on 127.0.0.1:`port`; fail early when
    `proc`, the process meant to listen there, has exited."""
    deadline = time.time() + limit
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")
