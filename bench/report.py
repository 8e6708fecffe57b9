"""bench/results.md and the plots: Markdown tables, and a section of the
results replaced on its own, so that `--section NAME` rewrites only what it
measured."""

import re
import statistics
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench/results.md"
TITLE = "# switchyard vs nginx vs HAProxy"
# Each section of results.md starts with this line (invisible once rendered).
MARKER = re.compile(r"^<!-- section: (\S+) -->$", re.M)


def median(rows, key):
    return statistics.median(r[key] for r in rows)


def summarize(rows, keys):
    """One balancer's runs in one figure each: the medians of `keys`, the
    errors of all runs summed and their socket errors joined."""
    summary = {key: median(rows, key) for key in keys}
    summary["errors"] = sum(r["errors"] for r in rows)
    summary["socket_errors"] = "; ".join(r["socket_errors"] for r in rows if r["socket_errors"])
    return summary


def markdown_table(columns, rows):
    """A Markdown table, the first column left-aligned, the others right."""
    lines = ["| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def section(heading, intro, columns, rows):
    """A results section: heading, an optional paragraph, a table."""
    return ["", f"## {heading}", ""] + ([intro, ""] if intro else []) + markdown_table(columns, rows)


def write_results(sections, order):
    """Replace the sections named in `sections` (name -> lines) in
    bench/results.md and keep the others, in `order`. Text of a file from
    before sections were marked is kept ahead of them, unless every section
    is written anew."""
    kept, unmarked = {}, ""
    if RESULTS.exists():
        parts = MARKER.split(RESULTS.read_text())
        unmarked = parts[0].replace(TITLE, "", 1).strip()
        kept = {name: text.strip("\n") for name, text in zip(parts[1::2], parts[2::2])}
    kept.update({name: "\n".join(lines).strip("\n") for name, lines in sections.items()})
    text = [TITLE]
    if unmarked and not set(order) <= set(sections):
        text += ["", unmarked]
    for name in order:
        if name in kept:
            text += ["", f"<!-- section: {name} -->", kept[name]]
    RESULTS.write_text("\n".join(text) + "\n")


def gnuplot(script, rows, name):
    """Run gnuplot's `script` over a data file of `rows` (lines of
    whitespace-separated fields), which the script names `{data}`."""
    data = ROOT / f"bench/.{name}.dat"
    data.write_text("".join(row + "\n" for row in rows))
    try:
        subprocess.run(["gnuplot"], input=script.replace("{data}", str(data)), text=True, check=True)
    finally:
        data.unlink()
