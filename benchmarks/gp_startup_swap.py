"""Bar 1 with the start-up points swapped: does the gap on seeds 0-9 come from the model or the draw?

NativeGP starts from 15 scrambled Sobol points, Optuna's GPSampler from 10 uniformly random
ones; then each fits its model and asks. Here each GP also runs from the other one's start-up
points for the same seed: they are told first, as history, and the GP's own start-up count is
set to their number, so its model asks every later trial. Per seed and start-up design, both
GPs then see the same first trials, and the regrets after 50 trials compare the models alone.

    .venv/bin/python benchmarks/gp_startup_swap.py --write    # seeds 0-39, RESULTS.md
"""

from __future__ import annotations

import statistics
import sys
from multiprocessing import Pool
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout's hpwidgets, not whichever one is installed
sys.path.insert(0, str(HERE))
from quality import HwRunner, OptunaRunner, Params, Runner, _clean  # noqa: E402, I001 (first: it sets one BLAS thread)
from functions import PROBLEMS, Problem  # noqa: E402
from results_md import provenance, seeds_and_problems, table, write_section  # noqa: E402

from hpwidgets.algorithms.gp_native import NativeGP  # noqa: E402

TITLE = "GP start-up points swapped (issue 7, bar 1)"
TRIALS = 50
OURS_STARTUP, OPTUNA_STARTUP = NativeGP().n_startup_trials, 10  # 10: GPSampler's default
Told = list[tuple[Params, float]]
READING = (
    "On Hartmann6 the gap on the issue's seeds 0-9 is the start-up draw, not the model: from the same "
    "points NativeGP ends below Optuna's GP on 9 and 10 of the 10 seeds, and on 39 and 40 of seeds 0-39. "
    "NativeGP's 15 Sobol points of seeds 0-9 leave four runs in reach of the local basin and seed 5 far "
    "out on a long ridge of the global one (\"Where the GP's Hartmann6 runs end\"); from those points "
    "Optuna's GP ends at 0.15, and at 1.7 on seed 5. From Optuna's 10 random points NativeGP ends 9 of "
    "the 10 runs in the global basin. That is the draw of these ten seeds, not a better design: on seeds "
    "10-109 (throwaway driver) NativeGP ended 28 of 100 runs above regret 0.05 from Optuna's 10 random "
    "points, 36 from its own 15 Sobol points, 35 from 10 uniformly random points of its own and 31 from "
    "15 Latin-hypercube points, differences within what 100 seeds can tell. On mixed5 about half of "
    "NativeGP's runs stop at the tanh activation's optimum (regret 0.15) or a ripple of `shift` (0.18) "
    "from either start, and there the design matters more to it than to Optuna's GP: on seeds 0-39 "
    "(throwaway driver) 19 of 40 runs ended above 0.05 from its 15 Sobol points, 21 from 10 Sobol "
    "points, 25 from 10 or from 15 uniformly random points.")


def play(runner: Runner, problem: Problem, told: Told, n_trials: int = TRIALS) -> tuple[float, Told]:
    """Tell ``told`` as history, ask the rest of ``n_trials``: (best regret, every trial in order)."""
    trials = list(told)
    for params, value in told:
        runner.add(params, value)
    while len(trials) < n_trials:
        params = runner.ask()
        value = problem.fn(_clean(params))
        runner.tell(params, value)
        trials.append((_clean(params), value))
    return min(problem.regret(v) for _, v in trials), trials


def our_gp(problem: Problem, seed: int, n_startup: int = OURS_STARTUP) -> HwRunner:
    return HwRunner(lambda: NativeGP(n_startup_trials=n_startup), problem.space, seed, 1)


def optuna_gp(problem: Problem, seed: int, n_startup: int = OPTUNA_STARTUP) -> OptunaRunner:
    return OptunaRunner("gp", problem.space, seed, 1, n_startup_trials=n_startup)


def run(job: tuple[str, int]) -> tuple[str, int, dict[str, float]]:
    """The four regrets of one seed: each GP from its own start-up points and from the other's."""
    name, seed = job
    problem = PROBLEMS[name]
    ours_own, our_trials = play(our_gp(problem, seed), problem, [])
    optuna_own, optuna_trials = play(optuna_gp(problem, seed), problem, [])
    our_design, optuna_design = our_trials[:OURS_STARTUP], optuna_trials[:OPTUNA_STARTUP]
    return name, seed, {
        "ours, own": ours_own,
        "optuna, own": optuna_own,
        "ours, optuna's": play(our_gp(problem, seed, OPTUNA_STARTUP), problem, optuna_design)[0],
        "optuna, ours": play(optuna_gp(problem, seed, OURS_STARTUP), problem, our_design)[0],
    }


def cell(results: list[dict[str, float]], first: str, second: str) -> list[str]:
    """Both medians and how many seeds the first GP ended strictly below the second."""
    a, b = [r[first] for r in results], [r[second] for r in results]
    wins = sum(x < y for x, y in zip(a, b, strict=True))
    return [f"{statistics.median(a):.2g}", f"{statistics.median(b):.2g}", f"{wins}/{len(a)}"]


def rows(results: list[tuple[str, int, dict[str, float]]], problems: list[str], seeds: range) -> list[list[str]]:
    blocks = [("0-9", range(10))] if set(range(10)) <= set(seeds) else []
    if seeds != range(10):
        blocks.append((f"{seeds.start}-{seeds.stop - 1}", seeds))
    out = []
    for problem in problems:
        for label, block in blocks:
            mine = [r for p, s, r in results if p == problem and s in block]
            out.append([problem, label, *cell(mine, "ours, own", "optuna, ours"),
                        *cell(mine, "ours, optuna's", "optuna, own")])
    return out


def main() -> None:
    args, seeds, problems = seeds_and_problems(__doc__, "0:40")
    import optuna  # noqa: F401  (the runs import it in the workers; here so the provenance names it)
    import torch  # noqa: F401  (Optuna's GP runs on it)
    with Pool(2) as pool:
        results = pool.map(run, [(p, s) for p in problems for s in seeds])
    header = ["function", "seeds", f"NativeGP from its {OURS_STARTUP} Sobol points", "Optuna GP from the same",
              "NativeGP ahead", f"NativeGP from Optuna's {OPTUNA_STARTUP} random points", "Optuna GP from its own",
              "NativeGP ahead"]
    body = "\n\n".join([
        provenance(),
        __doc__.split("\n\n")[1].replace("\n", " "),
        f"Median regret after {TRIALS} trials, and on how many seeds NativeGP ended below Optuna's GP "
        "from the same start-up points. The first and last regret columns are the two GPs as they run "
        "by default (the Search quality table's NativeGP and Optuna GP rows).",
        table(header, rows(results, problems, seeds)),
        READING,
    ])
    print(body)
    if args.write:
        write_section(TITLE, body)


if __name__ == "__main__":
    main()
