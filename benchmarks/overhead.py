"""Per-trial cost of the algorithms at 10/50/100/200 finished trials, ours vs the raw libraries.

    python benchmarks/overhead.py [--quick] [--problem mixed5] [--steps 7] [--write]

Every method is given the same random history of ``n`` finished trials (told, never asked),
then takes ``--steps`` ask -> evaluate -> tell steps (``--cheap-steps`` for fast methods).
Steps are interleaved across methods so that load from other processes hits them all
alike. Reported: the median over steps of ``ask`` alone and of ``ask + tell`` (skopt does
its work in ``tell``, Optuna in ``ask``).
For hyperopt the "ask" is the ``tpe.suggest`` call alone, with ``n_startup_jobs=10`` to
match our TPE's default (so both run the model from n=10 on).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout's hpwidgets, not whichever one is installed
sys.path.insert(0, str(HERE))

from functions import PROBLEMS, Problem  # noqa: E402
from peers import METHODS, RawHyperopt, Runner, optuna_gp_available  # noqa: E402
from results_md import provenance, table, write_section  # noqa: E402

import hpwidgets.space as hs  # noqa: E402
from hpwidgets.algorithms.random import RandomSearch  # noqa: E402

TITLE = "Overhead: tpe-hyperopt and gp-skopt vs the raw libraries"
HYPEROPT = "hyperopt tpe.suggest"
RUNNERS: dict[str, Callable[[hs.SearchSpace, int], Runner]] = {
    "ours tpe-hyperopt": METHODS["ours tpe-hyperopt"],
    HYPEROPT: lambda space, seed: RawHyperopt(space, seed, n_startup_jobs=10),
    "ours gp-skopt": METHODS["ours gp-skopt"],
    "skopt gp (defaults)": METHODS["skopt gp (defaults)"],
    "ours random": METHODS["ours random"],
    "optuna tpe": METHODS["optuna tpe"],
    "optuna gp": METHODS["optuna gp"],
}


def history(problem: Problem, n: int) -> list[tuple[dict, float]]:
    """``n`` random trials with their losses, the same for every method."""
    source = RandomSearch()
    source.setup(problem.space, seed=12345)
    out = []
    for _ in range(n):
        params = source.ask()
        out.append((params, problem.fn(params)))
    return out


def step(runner: Runner, problem: Problem) -> tuple[float, float]:
    """One timed ask -> evaluate -> tell: (ask seconds, ask + tell seconds)."""
    start = time.perf_counter()
    params = runner.ask()
    asked = time.perf_counter()
    value = problem.fn(params)
    told_from = time.perf_counter()
    runner.tell(params, value)
    told = time.perf_counter()
    ask = runner.suggest_seconds if isinstance(runner, RawHyperopt) else asked - start
    return ask, ask + (told - told_from)


def measure(problem: Problem, names: Sequence[str], n: int, steps: int,
            cheap_steps: int) -> dict[str, tuple[float, float]]:
    """Median (ask, ask + tell) seconds per method after ``n`` finished trials.

    Methods under 50 ms a step get ``cheap_steps`` steps: TPE's cost varies from ask to ask
    (hyperopt draws its candidates by rejection sampling), so a few steps are not enough
    to compare two TPEs within 20%.
    """
    runners = {}
    for name in names:
        runners[name] = RUNNERS[name](problem.space, 0)
        for params, value in history(problem, n):
            runners[name].tell(params, value)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for i in range(max(steps, cheap_steps)):
        if i < steps:
            order = list(names)
        else:
            order = [m for m in names if statistics.median(t for _, t in samples[m]) < 0.05]
        for name in order[i % len(order):] + order[:i % len(order)]:  # rotate: no fixed neighbour
            time.sleep(0.02)  # let the previous method's spinning BLAS/OpenMP threads go idle
            samples[name].append(step(runners[name], problem))
    return {name: (statistics.median(a for a, _ in s), statistics.median(t for _, t in s))
            for name, s in samples.items()}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}" if seconds < 1 else f"{seconds * 1000:.0f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 10, 50 and 3 steps")
    parser.add_argument("--problem", default="mixed5", choices=list(PROBLEMS))
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--cheap-steps", type=int, default=41, help="steps for methods under 50 ms")
    parser.add_argument("--methods", nargs="*", default=list(RUNNERS))
    parser.add_argument("--write", action="store_true", help="replace the overhead section of RESULTS.md")
    args = parser.parse_args(argv)
    sizes, steps = ((10, 50), 3) if args.quick else ((10, 50, 100, 200), args.steps)
    cheap_steps = 9 if args.quick else args.cheap_steps
    names = [m for m in args.methods if m != "optuna gp" or optuna_gp_available()]
    problem = PROBLEMS[args.problem]
    results = {}
    for n in sizes:
        results[n] = measure(problem, names, n, steps, cheap_steps)
        print(f"  n={n} done", file=sys.stderr)
    header = ["method"] + [f"n={n}" for n in sizes]
    ask_rows = [[name] + [ms(results[n][name][0]) for n in sizes] for name in names]
    total_rows = [[name] + [ms(results[n][name][1]) for n in sizes] for name in names]
    ratio = [f"n={n}: {results[n]['ours tpe-hyperopt'][0] / results[n][HYPEROPT][0]:.2f}x"
             for n in sizes if "ours tpe-hyperopt" in names and HYPEROPT in names]
    text = "\n".join([
        provenance(), "",
        f"Problem: {problem.name} ({len(problem.space)} dims). Milliseconds, median over {steps} steps per n "
        f"({cheap_steps} for methods under 50 ms), steps interleaved across methods in rotating order.", "",
        "**ask** (hyperopt: the `tpe.suggest` call alone)", "", table(header, ask_rows), "",
        "**ask + tell** (the whole per-trial cost of the algorithm)", "", table(header, total_rows), "",
        f"Our TPE ask / raw tpe.suggest: {', '.join(ratio) or 'n/a'}", "",
    ] + (["Skipped (torch not importable): optuna gp", ""] if "optuna gp" not in names else []))
    print(text)
    if args.write:
        write_section(TITLE + (" (quick)" if args.quick else ""), text)


if __name__ == "__main__":
    main()
