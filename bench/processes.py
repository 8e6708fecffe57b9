"""What a balancer's processes use, read from /proc: CPU time (clock ticks)
and resident memory, for the process and its children (nginx's workers)."""

import os
from pathlib import Path

TICK_US = 1_000_000 / os.sysconf("SC_CLK_TCK")


def pids_of(root_pid):
    """The process and its children (nginx's workers)."""
    pids = [root_pid]
    children = Path(f"/proc/{root_pid}/task/{root_pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    return pids


def cpu_ticks(pids):
    """User and system CPU time of `pids` so far, in clock ticks."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except FileNotFoundError:
            pass
    return total


def rss_kib(pids):
    """Resident memory of `pids`, KiB."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total
