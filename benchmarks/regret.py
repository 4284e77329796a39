"""Simple regret after 10/25/50 trials: median and IQR over seeds, ours vs the raw libraries.

    python benchmarks/regret.py [--quick] [--seeds 10] [--slow-seeds 5] [--write]

Slow peers (skopt with defaults, Optuna's GP) can be run on fewer seeds (``--slow-seeds``)
to keep the whole run under half an hour on 2 cores; the table says how many each had.
To spread one run over processes: ``--methods ... --save part.json`` in each, then
``--load part*.json --write`` builds the tables from the saved rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout's hpwidgets, not whichever one is installed
sys.path.insert(0, str(HERE))

from functions import PROBLEMS, Problem  # noqa: E402
from peers import METHODS, Runner, optuna_gp_available  # noqa: E402
from results_md import provenance, table, write_section  # noqa: E402

import hpwidgets.space as hs  # noqa: E402

SLOW = ("skopt gp (defaults)", "optuna gp")
TITLE = "Regret: tpe-hyperopt and gp-skopt vs the raw libraries"


def run(problem: Problem, make: Callable[[hs.SearchSpace, int], Runner], seed: int, n_trials: int) -> list[float]:
    """Best-so-far regret after each trial of one seeded run."""
    runner, best, curve = make(problem.space, seed), float("inf"), []
    for _ in range(n_trials):
        params = runner.ask()
        value = problem.fn(params)
        runner.tell(params, value)
        best = min(best, value)
        curve.append(problem.regret(best))
    return curve


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q2, q1, q3


def cell(values: Sequence[float]) -> str:
    median, q1, q3 = quartiles(values)
    return f"{median:.3g} [{q1:.3g}, {q3:.3g}]"


def bench_problem(problem: Problem, methods: Sequence[str], seeds: int, slow_seeds: int,
                  budgets: Sequence[int]) -> list[list[str]]:
    rows = []
    for name in methods:
        n_seeds = slow_seeds if name in SLOW else seeds
        start = time.perf_counter()
        curves = [run(problem, METHODS[name], seed, max(budgets)) for seed in range(n_seeds)]
        per_run = (time.perf_counter() - start) / n_seeds
        rows.append([name, str(n_seeds)] + [cell([c[b - 1] for c in curves]) for b in budgets] + [f"{per_run:.1f}"])
        print(f"  {problem.name:10s} {name:25s} done in {per_run * n_seeds:.0f} s", file=sys.stderr)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds, 25 trials")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--slow-seeds", type=int, default=None, help="seeds for skopt defaults and optuna gp")
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--problems", nargs="*", default=list(PROBLEMS))
    parser.add_argument("--save", help="also write the rows as JSON here")
    parser.add_argument("--load", nargs="*", default=[], help="build the tables from saved rows, run nothing")
    parser.add_argument("--write", action="store_true", help="replace the regret section of RESULTS.md")
    parser.add_argument("--title", default=TITLE, help="the RESULTS.md section to replace")
    args = parser.parse_args(argv)
    budgets = (10, 25) if args.quick else (10, 25, 50)
    rows: dict[str, list[list[str]]] = {}
    runs: list[str] = []
    if args.load:
        for path in args.load:
            saved = json.loads(Path(path).read_text())
            runs.append(saved.pop("_provenance", f"(no provenance saved in {Path(path).name})"))
            for name, part in saved.items():
                rows.setdefault(name, []).extend(part)
        rows = {name: rows[name] for name in PROBLEMS if name in rows}
    else:
        seeds = 3 if args.quick else args.seeds
        slow_seeds = min(args.slow_seeds or seeds, seeds)
        methods = [m for m in args.methods if m != "optuna gp" or optuna_gp_available()]
        if len(methods) < len(args.methods):
            print("optuna gp skipped: torch is not importable", file=sys.stderr)
        for name in args.problems:
            rows[name] = bench_problem(PROBLEMS[name], methods, seeds, slow_seeds, budgets)
    if args.save:
        Path(args.save).write_text(json.dumps({"_provenance": provenance(), **rows}))
    title = args.title + (" (quick)" if args.quick else "")
    report(rows, budgets, title if args.write else None, runs)


def report(rows: dict[str, list[list[str]]], budgets: Sequence[int], title: str | None, runs: list[str]) -> None:
    order = {name: i for i, name in enumerate(METHODS)}
    head = [provenance()] if not runs else ["Tables built from the saved rows of these runs:", ""] + [
        "- " + run.replace("  \n", "; ") for run in runs]
    out = [*head, "", "Cells: simple regret `f(best) - f*`, median [25th, 75th percentile] over seeds "
           "0..n-1 (`seeds` column); `s/run`: wall seconds per seeded run of the largest budget.", ""]
    for name, part in rows.items():
        header = ["method", "seeds"] + [f"after {b}" for b in budgets] + ["s/run"]
        part = sorted(part, key=lambda row: order.get(row[0], len(order)))
        out += [f"### {name} (f* = {PROBLEMS[name].optimum})", "", table(header, part), ""]
    text = "\n".join(out)
    print(text)
    if title is not None:
        write_section(title, text)


if __name__ == "__main__":
    main()
