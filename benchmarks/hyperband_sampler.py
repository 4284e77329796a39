"""Hyperband's config samplers on a synthetic multi-fidelity problem, in seconds.

Each trial evaluates a benchmark function (benchmarks/functions.py) at its searched params and
reports it with Gaussian noise of standard deviation ``0.5 / sqrt(budget)``: cheap rungs are noisy
estimates of the full-budget value, as short trainings are of long ones. Score: simple regret of
the best *noise-free* value among full-budget (27) trials after two Hyperband iterations (138
trials, eta 3, sync brackets), median over seeds. Samplers: random (plain Hyperband), tpe
(BOHB-style, the default model sampler), gp.

    .venv/bin/python benchmarks/hyperband_sampler.py --write       # seeds 100-139, RESULTS.md
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from functions import PROBLEMS, Problem  # noqa: E402
from results_md import median_grid, provenance, seeds_and_problems, table, write_section  # noqa: E402

import hpwidgets.space as hs  # noqa: E402
from hpwidgets.algorithms.hyperband import Hyperband  # noqa: E402
from hpwidgets.trial import FrozenTrial, TrialState  # noqa: E402

TITLE = "Hyperband's config sampler (synthetic multi-fidelity)"
SAMPLERS = ("random", "tpe", "gp")
NOISE = 0.5


# Kept here so that a rerun with --write prints them again (they are not recomputed).
NOTES = (
    "Before commit 0df6fd4 the `tpe` sampler was one long-lived TPE told only full-budget results, which "
    "kept every config dropped at a lower rung as a running ask: on the same seeds it scored 0.146 "
    "(Branin) and 0.657 (Hartmann6) against 0.104 and 0.488 after that commit (the same `run` function "
    "with hpwidgets from commit 678cbbf on PYTHONPATH, tpe only). The TPE's rank-weighted good set (the "
    "worst good point weighs 0.01 of the best) moved the `tpe` row from 0.104 / 0.488 / 0.414 to 0.108 / "
    "0.568 / 0.439 on these 40 seeds; paired over seeds 100-199 (throwaway driver calling this script's "
    "`run`, equal weights against rank weights) the change is within noise: Branin 0.110 → 0.093 (p = "
    "0.53), Hartmann6 0.488 → 0.501 (p = 0.88), mixed5 0.385 → 0.396 (p = 0.84, Wilcoxon). The `gp` "
    "sampler fits poorly on the noisy 1-epoch rungs of Hartmann6 (1.05; 0.99 before NativeGP's fit also "
    "started from a noisy model, `noisy_start`, which left the other two within 0.01); BOHB's own choice,"
    ' and our default for `sampler="tpe"`, is the TPE. Then the TPE began to damp its bad density (it '
    "scores `l(x) / g(x) ** 0.8`, commit a969dab), which moved the `tpe` row from 0.108 / 0.568 / 0.439 to "
    "the figures above; paired over other seeds (throwaway driver calling this script's `run`) Branin "
    "improved, 0.134 → 0.066 on seeds 1600-1699 (p = 0.001) and 0.123 → 0.074 on 1700-1899 (p = 8e-4), "
    "and Hartmann6 and mixed5 stayed within noise (p >= 0.33).")


def run(problem: Problem, sampler: str, seed: int, n_trials: int = 138) -> float:
    """Regret of the best full-budget config after ``n_trials`` trials of one Hyperband study."""
    space = hs.SearchSpace({**problem.space.searched(), "b": hs.budget(1, 27)})
    hb = Hyperband(sampler=sampler)
    hb.setup(space, seed=seed)
    noise = np.random.default_rng(seed)
    best = math.inf
    for number in range(n_trials):
        params = hb.ask()
        budget = params["b"]
        value = problem.fn({k: v for k, v in params.items() if k != "b"})
        reported = value + noise.normal(0.0, NOISE / math.sqrt(budget))
        hb.tell(FrozenTrial(number, TrialState.COMPLETE, params, value=reported))
        if budget == 27:
            best = min(best, problem.regret(value))
    return best


def main() -> None:
    args, seeds, problems = seeds_and_problems(__doc__, "100:140")
    medians = median_grid(SAMPLERS, problems, seeds,
                          lambda sampler, name, seed: run(PROBLEMS[name], sampler, seed))
    rows = [[sampler, *(f"{m:.3g}" for m in values)] for sampler, values in medians.items()]
    body = "\n\n".join([
        provenance(),
        f"Median over seeds {seeds.start}-{seeds.stop - 1} of the noise-free regret of the best full-budget config "
        f"after two Hyperband iterations (138 trials, budget 1-27, eta 3, sync); every report carries Gaussian "
        f"noise of sd {NOISE}/sqrt(budget). `tpe` is the BOHB-style sampler (hpwidgets/algorithms/config_sampler.py).",
        table(["sampler", *problems], rows),
        NOTES,
    ])
    print(body)
    if args.write:
        write_section(TITLE, body)


if __name__ == "__main__":
    main()
