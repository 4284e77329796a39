"""Shared by the benchmark scripts: a markdown table, and a section of RESULTS.md replaced in place."""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _short_notes(argv: list[str]) -> list[str]:
    """The command line with each ``--note`` text shown as "..." (the section prints it anyway)."""
    return ['"..."' if i > 0 and argv[i - 1] == "--note" else arg for i, arg in enumerate(argv)]


def cpu_name() -> str:
    """The CPU's model name where Linux tells it, else what ``platform`` knows: floating-point results
    (and so a long optimiser run) can differ in the last digits from one CPU family to another."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance() -> str:
    """Command, date and machine, the way RESULTS.md states them for each section."""
    date = subprocess.run(["date"], capture_output=True, text=True).stdout.strip()
    command = " ".join(["python", os.path.relpath(sys.argv[0]), *_short_notes(sys.argv[1:])])
    versions = []
    for name in ("hyperopt", "skopt", "sklearn", "optuna", "numpy", "torch", "botorch"):
        module = sys.modules.get(name)
        if module is not None:
            versions.append(f"{name} {getattr(module, '__version__', '?')}")
    machine = f"{cpu_name()}, {os.cpu_count()} cores, no GPU, {platform.machine()}, Python {platform.python_version()}"
    return (f"Command: `{command}`  \nDate: {date}  \nMachine: {machine}  \n"
            f"Versions: {', '.join(versions)}")


def write_section(title: str, body: str) -> None:
    """Replace the ``## title`` section of RESULTS.md (or append it), keeping the others."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)
    print(f"wrote section {title!r} of {RESULTS}")


def median_grid(methods: Sequence[str], problems: Sequence[str], seeds: range,
                run: Callable[[str, str, int], float]) -> dict[str, list[float]]:
    """{method: [median over ``seeds`` of ``run(method, problem, seed)`` per problem]}, with a
    progress line on stderr after each cell (these runs take minutes)."""
    medians: dict[str, list[float]] = {}
    for method in methods:
        medians[method] = []
        for problem in problems:
            medians[method].append(statistics.median(run(method, problem, seed) for seed in seeds))
            print(f"# {method} {problem} {medians[method][-1]:.3g}", file=sys.stderr, flush=True)
    return medians


def seeds_and_problems(doc: str, seeds: str) -> tuple[argparse.Namespace, range, list[str]]:
    """The synthetic benchmarks' command line: --seeds START:STOP, --problems, --write."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default=seeds, metavar="START:STOP")
    parser.add_argument("--problems", default="branin,hartmann6,mixed5")
    parser.add_argument("--write", action="store_true", help="rewrite this section of RESULTS.md")
    args = parser.parse_args()
    start, stop = (int(x) for x in args.seeds.split(":"))
    return args, range(start, stop), args.problems.split(",")
