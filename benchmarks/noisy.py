"""Noisy objectives: how good is the config a study reports as best when losses carry noise?

A training run's validation loss changes with the seed, so a tuner sees ``f(x) + noise``. Each
run tells the optimiser ``f(x) + e`` (``e`` Gaussian, sd as in ``NOISE``, drawn from a
generator seeded by the run's seed) for 50 trials; its score is the noise-free regret
``f(x*) - f*`` of the config with the lowest *observed* loss, which is what
``study.best_params`` returns. The median over seeds, with the 75th percentile alongside. The optimisers are
``quality.py``'s; ``NativeGP, noisy_start=None`` is the GP without its second fit start in the
noisy mode, as it was before that start was added.

    nice -n 10 .venv/bin/python benchmarks/noisy.py --write      # seeds 0-39, 2 processes
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # as quality.py
    os.environ.setdefault(_var, "1")

import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import optuna  # noqa: E402, F401  (imported here so that the provenance line names its version)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from functions import PROBLEMS  # noqa: E402
from quality import HwRunner, Runner, _clean, runners  # noqa: E402
from results_md import provenance, seeds_and_problems, table, write_section  # noqa: E402

from hpwidgets.algorithms.gp_native import NativeGP  # noqa: E402

TITLE = "Noisy objectives (issue 7)"
# The sd of the added noise, two levels per function. The best 5% of each space lies within
# 2.7 (Branin), 2.3 (Hartmann6) and 1.2 (mixed5) of the optimum (20,000 random points), so
# the levels are 11-37%, 1.3-4% and 2.5-8% of that spread.
NOISE = {"branin": (0.3, 1.0), "hartmann6": (0.03, 0.1), "mixed5": (0.03, 0.1)}
METHODS = ("random", "NativeTPE", "Optuna TPE", "NativeGP", "NativeGP, noisy_start=None", "Optuna GP")
N_TRIALS = 50
# Kept here so that a rerun with --write prints it again (it is not recomputed).
TRIED = (
    "Tried for the GP on seeds 100-139 (throwaway driver calling this script's `run`) and not adopted: EI's "
    "incumbent at the lowest posterior mean over the observed points (a plug-in noisy EI) instead of the "
    "lowest observed loss. Median regret, lowest observed loss → lowest posterior mean: Branin 0.039 → 0.035 "
    "(sd 0.3) and 0.211 → 0.166 (sd 1.0), Hartmann6 0.026 → 0.024 and 0.128 → 0.169, mixed5 0.047 → 0.047 "
    "and 0.144 → 0.153: better on one function, worse on two at the higher noise. The NativeTPE row "
    "before the TPE began to damp its bad density (it scores `l(x) / g(x) ** 0.8`, commit a969dab) read "
    "0.159 / 0.331 / 0.204 / 0.311 / 0.203 / 0.259 (the columns in order); paired on seeds 1600-1699 "
    "(throwaway driver calling this script's `run`) no column moved beyond noise except Hartmann6 at sd "
    "0.03, which improved (0.218 → 0.195, p = 0.01; elsewhere p >= 0.17).")


def _runner(method: str, problem: str, seed: int) -> Runner:
    space = PROBLEMS[problem].space
    if method == "NativeGP, noisy_start=None":
        return HwRunner(lambda: NativeGP(noisy_start=None), space, seed, 1)
    return runners()[method](space, seed, 1)


def run(method: str, problem: str, sd: float, seed: int) -> float:
    """Noise-free regret of the config with the lowest observed loss after ``N_TRIALS``."""
    fn, regret = PROBLEMS[problem].fn, PROBLEMS[problem].regret
    noise, runner = random.Random(seed * 7919 + 13), _runner(method, problem, seed)
    best_seen, best_regret = float("inf"), float("nan")
    for _ in range(N_TRIALS):
        params = runner.ask()
        value = fn(_clean(params))
        seen = value + sd * noise.gauss(0.0, 1.0)
        runner.tell(params, seen)
        if seen < best_seen:
            best_seen, best_regret = seen, regret(value)
    return best_regret


def _task(args: tuple[str, str, float, int]) -> tuple[tuple[str, str, float, int], float]:
    return args, run(*args)


def _cell(runs: list[float]) -> str:
    return f"{statistics.median(runs):.3g} ({np.quantile(runs, 0.75):.3g})"


def main() -> None:
    args, seeds, problems = seeds_and_problems(__doc__ or "", "0:40")
    tasks = [(m, p, sd, s) for p in problems for sd in NOISE[p] for m in METHODS for s in seeds]
    start, results = time.perf_counter(), {}
    with ProcessPoolExecutor(2) as pool:
        for key, value in pool.map(_task, tasks, chunksize=4):
            results[key] = value
    columns = [(p, sd) for p in problems for sd in NOISE[p]]
    header = ["", *[f"{p}, noise sd {sd}" for p, sd in columns]]
    rows = [[m, *[_cell([results[(m, p, sd, s)] for s in seeds]) for p, sd in columns]] for m in METHODS]
    minutes = (time.perf_counter() - start) / 60
    body = "\n\n".join([
        provenance() + f"  \nWall time: {minutes:.0f} min (2 processes)",
        f"Noise-free regret of the config with the lowest observed loss after {N_TRIALS} trials, the median "
        f"over seeds {seeds.start}-{seeds.stop - 1} (75th percentile in brackets; lower is better). Each "
        "trial's loss carried Gaussian noise of the sd named. `NativeGP, noisy_start=None`: the GP "
        "before its hyperparameter fit also started from a noisy model.",
        table(header, rows), TRIED])
    print(body)
    if args.write:
        write_section(TITLE, body)


if __name__ == "__main__":
    main()
