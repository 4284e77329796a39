"""Parallel trials (issue 7, bar 4): how much do the peers' own batch rules cost them?

Bar 4 asks that with 4 trials running each algorithm's regret at 50 trials stays within
1.5x of its sequential regret. This runs the same protocol as ``quality.py`` (4 asks
pending, the oldest told first) on our GP and TPE and on the peers' rules for running
trials, each with its own defaults:

- NativeGP: kriging-believer fantasies; NativeTPE: its damped liar (``tpe_native``).
- Optuna GP: ``GPSampler``, which with RUNNING trials in the study maximises a q-log-EI over
  QMC samples of their joint posterior with the candidate.
- Optuna TPE (constant_liar): ``TPESampler(constant_liar=True)``, Optuna's rule for parallel
  workers (sequential runs are the same as the default sampler's).
- BoTorch qLogNEI: ``SingleTaskGP`` with its defaults (an RBF kernel whose length-scale prior
  grows with the dimension, outcomes standardised) fitted by ``fit_gpytorch_mll``,
  ``qLogNoisyExpectedImprovement`` with the running asks as ``X_pending`` (it integrates
  over their unknown values), ``optimize_acqf`` with 10
  restarts from 512 raw samples, after max(5, 2 x dims) scrambled Sobol points (Ax's rule
  for its default strategy). Continuous spaces only (Branin, Hartmann6); BoTorch is a
  benchmark-only dependency like Optuna (``pip install -e ".[bench]"``).

Besides the regret at 50 trials it reports when the median curve (over seeds, of the best
regret so far) first reaches each regret level: where regret falls by orders of magnitude
per few trials, a ratio of regrets says little, and trials to a level are what parallel
workers cost.

    nice -n 10 .venv/bin/python benchmarks/batch_peers.py --json /tmp/batch.json --write
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # as quality.py
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from functions import PROBLEMS  # noqa: E402
from quality import OptunaRunner, Params, Runner, best_curve, runners  # noqa: E402
from results_md import provenance, table, write_section  # noqa: E402

import hpwidgets.space as hs  # noqa: E402

# Imported here only so that the provenance line names their versions; each may be missing.
with contextlib.suppress(ImportError):
    import optuna  # noqa: F401
with contextlib.suppress(ImportError):
    import botorch  # noqa: F401

TITLE = "Parallel trials: our batch rules against the peers' (issue 7, bar 4)"
N_TRIALS = 50
PARALLEL = 4
METHODS = ("NativeGP", "Optuna GP", "BoTorch qLogNEI", "NativeTPE", "Optuna TPE (constant_liar)")
CONTINUOUS_ONLY = ("BoTorch qLogNEI",)
LEVELS = (0.3, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5)
# Written from the run of 2026-12-07 (seeds 0-39, /tmp/s18/batch.json, every run redone on the AMD
# EPYC with Optuna 5.1.0 and the damped TPE; NativeTPE's runs with 4 pending redone after
# `pending_centroid`, /tmp/s19/batch.json); kept here so that a rerun with --write prints them
# again: check them against the new tables before committing.
NOTES: tuple[str, ...] = (
    "On the issue's seeds 0-9 no peer keeps its parallel regret within 1.5x on every function it "
    "runs: Optuna's GP misses on Branin (1.7x) and Hartmann6 (11x), BoTorch on Hartmann6 (3.2x), Optuna's "
    "TPE with its constant liar on Branin (2.6x) and Hartmann6 (1.8x). Over seeds 0-39 the ratios that meet "
    "the bar belong to runs still far from the optimum: BoTorch's 1.1x / 1.4x at regrets of 0.003 and "
    "0.08, Optuna GP's 1.4x / 1.4x on Branin / mixed5 at 7e-5 and 0.09. Where a method is still "
    "refining, each new best is followed up once per batch, not once per trial, and a regret that "
    "falls by an order of magnitude in a few trials then shows a lag of a few trials as a large "
    "ratio: our GP with 4 pending reaches Branin's levels down to 1e-5 1-3 trials after the sequential "
    "run and Hartmann6's 0.1 and 0.01 8 and 14 trials after it (its median at 50 trials with 4 "
    "pending, 0.0033, is about the sequential one's at 40); Optuna's GP reaches Branin's levels "
    "down to 1e-3 4-7 trials late and on Hartmann6 never reaches 0.1 within 50 (39 one at a time).",
    "With 4 pending, our GP's median regret at 50 trials is below every peer's one-at-a-time median on "
    "all three functions over seeds 0-39 (5.1e-6 / 0.0033 / 9.2e-4 against Optuna GP's 7.3e-5 / 0.0077 "
    "/ 0.094 and BoTorch's 0.0029 / 0.082). Our TPE's is below Optuna TPE's one-at-a-time median on "
    "all three (0.021 / 0.34 / 0.21 against 0.14 / 0.36 / 0.32), and with 4 pending each, further "
    "ahead (Optuna's: 0.18 / 0.5 / 0.31).",
    "Before the TPE began to damp its bad density (it scores `l(x) / g(x) ** 0.8`, commit a969dab; the "
    "run of 2026-11-27 on another CPU with Optuna 5.0.0) the NativeTPE row read 0.074 / 0.16 / 0.18 one "
    "at a time and 0.032 / 0.27 / 0.36 with 4 pending on seeds 0-9 (0.43x / 1.8x / 2x), and 0.032 / 0.2 / "
    "0.23 and 0.042 / 0.32 / 0.23 on seeds 0-39 (1.3x / 1.6x / 1x). The sequential runs gained more than "
    "the parallel ones on Branin, so its ratios rose; on Hartmann6 the parallel median of these 40 seeds "
    "rose (0.32 -> 0.38), which on 300 other seeds it did not (0.323 -> 0.331, p = 0.85). Before that, "
    "its parallel runs were 0.064 / 0.37 / 0.26 on seeds 0-9 and 0.045 / 0.34 / 0.21 on seeds 0-39, "
    "until its good density became the best point alone while asks run (`pending_best_only`, chosen on "
    "seeds 100-399 and 740-1039). Then, while asks run, its good kernel moved to the weighted mean of "
    "the best three good points (`pending_centroid`, chosen on seeds 2200-3399, confirmed on 3400-3699): "
    "before it the parallel runs were 0.031 / 0.51 / 0.29 on seeds 0-9 (2.8x / 3.4x / 1.4x) and 0.018 / "
    "0.38 / 0.22 on seeds 0-39 (1.9x / 1.9x / 1.1x).",
    "NativeGP's runs with 4 pending were redone on 2026-11-28 after it began to screen only "
    "candidates near its best points while asks run (`pending_local`, chosen on seeds 100-179, confirmed "
    "on 1340-1499). Before it they were 2.1e-5 / 0.0022 / 0.0013 on seeds 0-9 (3.3x / 0.037x / 270x, "
    "Branin / Hartmann6 / mixed5) and 2e-5 / 0.0028 / 0.0043 on seeds 0-39 (9x / 400x / 7.7x), when "
    "the median curve reached Branin's levels down to 1e-4 2-7 trials after the sequential run's and "
    "never reached 1e-5 within 50 trials.",
    "Both GP peers integrate over the unknown values of the running trials (Optuna's `qLogEI` over "
    "QMC samples of the joint posterior, BoTorch's `qLogNoisyExpectedImprovement`); ours tells them "
    "their posterior mean (kriging believer) and, while they run, screens only candidates near its "
    "best points; the believer on 80 tuning seeds beat our own sample-averaged "
    "EI (\"Search quality\", notes). Batch Thompson sampling (each ask made while others run takes "
    "the minimum of one joint posterior draw over 1,280 random and locally perturbed candidates, "
    "with or without the believer's fantasies) was worse on seeds 100-139: Branin 1.6e-5 against "
    "7.3e-6, Hartmann6 0.18 / 0.14 against 2.5e-4. Nor, on those seeds against 7.3e-6 / 2.5e-4 / 3.0e-4 "
    "(Branin / Hartmann6 / mixed5), did every 2nd or 4th ask made as if none were running, so that one "
    "ask in a few lands where the sequential run's would (9.8e-5 / 4.9e-4 / 5.2e-4; 8.5e-5 / 5.7e-4 / "
    "1.9e-3), or the running asks added to the anchors of the local candidates, with twice the local "
    "candidates and polished starts (1.1e-5 / 2.4e-4 / 2.6e-4).",
    "BoTorch 0.18.1 with gpytorch 1.15.2 came from the project's `bench` extra; every runner used one "
    "thread. The 1120 runs took 30 min of wall time (2 processes under `nice -n 10`); a BoTorch run took "
    "10-23 s, an Optuna GP run 1.1-11 s, a NativeGP run 0.6-1.9 s.",
)


class BoTorchRunner(Runner):
    """BoTorch's standard single-objective loop behind ask/tell, on the unit cube."""

    def __init__(self, space: hs.SearchSpace, seed: int) -> None:
        import torch
        from torch.quasirandom import SobolEngine

        torch.set_num_threads(1)
        self.torch, self.space, self.seed = torch, space, seed
        self.names = list(space.searched())
        self.n_init = max(5, 2 * len(self.names))  # Ax's Sobol steps before its default model
        self.sobol = SobolEngine(len(self.names), scramble=True, seed=seed)
        self.told: list[tuple[Any, float]] = []
        self.pending: dict[int, Any] = {}
        self.number = 0

    def _suggest(self) -> Any:
        from botorch.acquisition.logei import qLogNoisyExpectedImprovement
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.optim import optimize_acqf
        from gpytorch.mlls import ExactMarginalLogLikelihood

        torch = self.torch
        torch.manual_seed(self.seed * 1000 + self.number)  # the MC samples and restarts
        X = torch.stack([x for x, _ in self.told])
        Y = -torch.tensor([[y] for _, y in self.told], dtype=torch.double)  # BoTorch maximises
        model = SingleTaskGP(X, Y)
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        pending = torch.stack(list(self.pending.values())) if self.pending else None
        acq = qLogNoisyExpectedImprovement(model, X_baseline=X, X_pending=pending)
        bounds = torch.stack([torch.zeros(len(self.names)), torch.ones(len(self.names))]).double()
        candidate, _ = optimize_acqf(acq, bounds, q=1, num_restarts=10, raw_samples=512)
        return candidate[0].detach()

    def ask(self) -> Params:
        if len(self.told) + len(self.pending) < self.n_init:
            x = self.sobol.draw(1, dtype=self.torch.double)[0]
        else:
            x = self._suggest()
        self.number += 1
        self.pending[self.number] = x
        params = {name: self.space[name].from_unit(float(u)) for name, u in zip(self.names, x, strict=True)}
        return {**params, "__number": self.number}

    def tell(self, params: Params, value: float) -> None:
        self.told.append((self.pending.pop(params["__number"]), value))

    add = tell


def make_runner(method: str, space: hs.SearchSpace, seed: int, parallel: int) -> Runner:
    if method == "BoTorch qLogNEI":
        return BoTorchRunner(space, seed)
    if method == "Optuna TPE (constant_liar)":
        return OptunaRunner("tpe", space, seed, parallel, constant_liar=True)
    return runners()[method](space, seed, parallel)


def _task(key: tuple[str, str, int, int]) -> tuple[str, list[float], float]:
    """One run: the best regret after each told trial, and its wall time."""
    method, problem, parallel, seed = key
    import warnings
    warnings.filterwarnings("ignore")  # BoTorch's and gpytorch's advice on every fit
    start = time.perf_counter()
    curve = best_curve(make_runner(method, PROBLEMS[problem].space, seed, parallel), PROBLEMS[problem],
                       N_TRIALS, parallel)
    return "|".join(map(str, key)), curve, time.perf_counter() - start


def tasks(methods: tuple[str, ...], problems: list[str], seeds: range) -> list[tuple[str, str, int, int]]:
    """Every run, slowest first (BoTorch), so the two processes finish together."""
    keys = [(m, p, par, s) for m in methods for p in problems for par in (1, PARALLEL) for s in seeds
            if not (m in CONTINUOUS_ONLY and p == "mixed5")]
    return sorted(keys, key=lambda k: k[0] not in CONTINUOUS_ONLY)


def median_curve(curves: list[list[float]]) -> list[float]:
    return [statistics.median(c[k] for c in curves) for k in range(N_TRIALS)]


def first_reach(curve: list[float], level: float) -> str:
    """The trial at which ``curve`` first reaches ``level``, or a dash."""
    return next((str(k + 1) for k, value in enumerate(curve) if value <= level), "–")


def _ratio(seq: float, par: float) -> str:
    ratio = par / seq if seq > 0 else float("inf")
    return f"{par:.2g} ({ratio:.2g}×, {'met' if ratio <= 1.5 else '**not met**'})"


def regret_table(curves: dict[str, list[float]], methods: tuple[str, ...], problems: list[str],
                 seeds: range) -> str:
    header = [""]
    for p in problems:
        header += [f"{p}, sequential", f"{p}, parallel={PARALLEL} (ratio, ≤ 1.5×?)"]
    rows = []
    for m in methods:
        cells = []
        for p in problems:
            got = [[curves.get(f"{m}|{p}|{par}|{s}") for s in seeds] for par in (1, PARALLEL)]
            if any(c is None for runs in got for c in runs):
                cells += ["–", "–"]
                continue
            seq, par = (statistics.median(c[-1] for c in runs) for runs in got)
            cells += [f"{seq:.2g}", _ratio(seq, par)]
        rows.append([m, *cells])
    return table(header, rows)


def reach_table(curves: dict[str, list[float]], methods: tuple[str, ...], problem: str, seeds: range) -> str:
    header = [problem, *[f"regret ≤ {level:g}" for level in LEVELS]]
    rows = []
    for m in methods:
        runs = [[curves.get(f"{m}|{problem}|{par}|{s}") for s in seeds] for par in (1, PARALLEL)]
        if any(c is None for r in runs for c in r):
            continue
        seq, par = (median_curve(r) for r in runs)
        rows.append([m, *[f"{first_reach(seq, lv)} / {first_reach(par, lv)}" for lv in LEVELS]])
    return table(header, rows)


def body(curves: dict[str, list[float]], methods: tuple[str, ...], problems: list[str], seeds: range,
         n_run: int, minutes: float) -> str:
    first = range(seeds.start, min(seeds.start + 10, seeds.stop))
    parts = [
        provenance() + f"  \nWall time: {minutes:.0f} min for the {n_run} runs made by this invocation "
        "(2 processes); the others were read from its --json.",
        f"Median best regret after {N_TRIALS} trials, one at a time and with {PARALLEL} asks pending (the oldest "
        "told first, as in \"Search quality\"); in brackets parallel/sequential and whether bar 4's 1.5× holds. "
        "Each method runs with its own defaults (the script's docstring says what they are); a dash: not "
        "run (BoTorch on the mixed space).",
        f"**Seeds {first.start}-{first.stop - 1}** (the issue's block)",
        regret_table(curves, methods, problems, first),
        *([f"**Seeds {seeds.start}-{seeds.stop - 1}**", regret_table(curves, methods, problems, seeds)]
          if len(seeds) > len(first) else []),
        f"Trials at which the median curve over seeds {seeds.start}-{seeds.stop - 1} (best regret so far) "
        f"first reaches each regret, one at a time / with {PARALLEL} pending (a dash: not within {N_TRIALS}).",
        *[reach_table(curves, methods, p, seeds) for p in problems],
        *NOTES,
    ]
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0:40", metavar="START:STOP")
    parser.add_argument("--problems", default="branin,hartmann6,mixed5")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--json", type=Path, help="keep every run's curve here; runs already there are reused")
    parser.add_argument("--write", action="store_true", help="rewrite this section of RESULTS.md")
    args = parser.parse_args()
    start, stop = (int(x) for x in args.seeds.split(":"))
    seeds, problems, methods = range(start, stop), args.problems.split(","), tuple(args.methods.split(","))
    curves: dict[str, list[float]] = json.loads(args.json.read_text()) if args.json and args.json.exists() else {}
    todo = [k for k in tasks(methods, problems, seeds) if "|".join(map(str, k)) not in curves]
    began, seconds = time.perf_counter(), {m: 0.0 for m in methods}
    with ProcessPoolExecutor(2) as pool:
        for key, curve, wall in pool.map(_task, todo):
            curves[key], seconds[key.split("|")[0]] = curve, seconds[key.split("|")[0]] + wall
            print(f"# {key} {curve[-1]:.3g} {wall:.1f}s", file=sys.stderr, flush=True)
            if args.json:
                args.json.write_text(json.dumps(curves))
    text = body(curves, methods, problems, seeds, len(todo), (time.perf_counter() - began) / 60)
    print(text)
    if args.write:
        write_section(TITLE, text)


if __name__ == "__main__":
    main()
