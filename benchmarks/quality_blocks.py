"""Issue 7's regret bars on 100 seeds: how often does a 10-seed median meet them?

The bars compare medians over seeds 0-9. For the GPs, regret@50 on Hartmann6 is bimodal
(a run either finds the global basin, regret ~1e-6, or refines the local one, regret
0.119), so a 10-seed median lands on whichever mode holds 5 of the 10 runs: a coin flip
for both peers. This script runs seeds 0-99 for ours and Optuna's (seeds 0-9 are the
issue's; 10-99 were never used to choose a setting), and reports per function:

* each optimiser's median regret@50 over all 100 seeds, with its quartiles, and how many
  runs ended above 0.05 (in a local basin or short of the optimum);
* for every bar, in how many of the ten disjoint 10-seed blocks (0-9, 10-19, ..., 90-99)
  it holds, and whether it holds for the 100-seed medians.

    nice -n 10 .venv/bin/python benchmarks/quality_blocks.py --json /tmp/blocks.json --write
    .venv/bin/python benchmarks/quality_blocks.py --seeds 4 --block 2 --problems branin   # smoke

Runs go to ``--workers`` processes, one (optimiser, function, parallel, block) per task;
with ``--json`` every finished task is saved, and a rerun with the same file only runs
what is missing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from quality import PROBLEMS, best_curve, runners  # first: it sets one BLAS thread before numpy loads
from results_md import provenance, table, write_section

TITLE = "Search quality on 100 seeds (issue 7)"
PEERS = {"NativeTPE": "Optuna TPE", "NativeGP": "Optuna GP"}
# every optimiser one at a time and with 4 asks pending: the peers' parallel rows are context
# for the parallel bar (what the best peer loses to the same lag), not part of it
ROWS = [(label, par) for par in (1, 4) for pair in PEERS.items() for label in pair]
STUCK = 0.05  # regret@50 above this: the run ended in a local basin or short of the optimum
Job = tuple[str, str, int, int]  # label, problem, parallel, first seed of the block


def run_block(job: Job, block: int, n_trials: int) -> list[list[float]]:
    """Best-regret curves of one optimiser on ``block`` consecutive seeds."""
    label, problem, parallel, first = job
    make, fn = runners()[label], PROBLEMS[problem]
    return [best_curve(make(fn.space, seed, parallel), fn, n_trials, parallel)
            for seed in range(first, first + block)]


def key(job: Job) -> str:
    return "|".join(map(str, job))


def jobs_for(problems: list[str], n_seeds: int, block: int) -> list[Job]:
    return [(label, p, par, first) for p in problems for label, par in ROWS
            for first in range(0, n_seeds, block)]


Curves = dict[str, list[list[float]]]  # task key -> best-regret curve of each seed
Blocks = dict[str, list[list[float]]]  # row name -> per 10-seed block, the regret of each seed


def run_all(todo: list[Job], done: Curves, args: argparse.Namespace) -> None:
    """Run the missing tasks; save after each one, so an interrupted run loses one task at most."""
    missing = [job for job in todo if key(job) not in done]
    print(f"# {len(missing)} of {len(todo)} tasks to run", file=sys.stderr, flush=True)
    with ProcessPoolExecutor(args.workers) as pool:
        futures = {pool.submit(run_block, job, args.block, args.trials): job for job in missing}
        for future in as_completed(futures):
            job = futures[future]
            done[key(job)] = future.result()
            final = statistics.median(c[-1] for c in done[key(job)])
            print(f"# {key(job)}: median {final:.3g}", file=sys.stderr, flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(done))


def regrets(done: Curves, job: tuple[str, str, int], at: int, args: argparse.Namespace) -> list[list[float]]:
    """Per block, in seed order, the regret after ``at`` trials."""
    return [[curve[at - 1] for curve in done[key((*job, first))]] for first in range(0, args.seeds, args.block)]


def flat(blocks: list[list[float]]) -> list[float]:
    return [x for block in blocks for x in block]


def _fmt(x: float) -> str:
    return f"{x:.2g}" if x < 0.01 else f"{x:.3f}"


def summary_rows(blocks: Blocks) -> list[list[str]]:
    rows = []
    for name, per_block in blocks.items():
        runs = flat(per_block)
        q1, med, q3 = statistics.quantiles(runs, n=4, method="inclusive")
        rows.append([name, _fmt(med), f"{_fmt(q1)} – {_fmt(q3)}", f"{sum(x > STUCK for x in runs)}/{len(runs)}"])
    return rows


def bar_row(name: str, ours: list[list[float]], other: list[list[float]], factor: float) -> list[str]:
    """Whether median(ours) <= factor * median(other): on the first block, per block, on all seeds."""
    held = [statistics.median(a) <= factor * statistics.median(b) for a, b in zip(ours, other, strict=True)]
    whole = statistics.median(flat(ours)) <= factor * statistics.median(flat(other))
    return [name, "met" if held[0] else "not met", f"{sum(held)}/{len(held)}", "met" if whole else "**not met**"]


def bar_rows(blocks: Blocks, lagged: Blocks) -> list[list[str]]:
    """The issue's bars, and the diagnostic: parallel vs sequential 3 trials earlier (the lag alone)."""
    rows = []
    for mine, peer in PEERS.items():
        parallel = blocks[f"{mine}, parallel=4"]
        rows += [bar_row(f"{mine} ≤ {peer}", blocks[mine], blocks[peer], 1.0),
                 bar_row(f"{mine} parallel=4 ≤ 1.5 × sequential", parallel, blocks[mine], 1.5),
                 bar_row(f"(diagnostic) {mine} parallel=4 ≤ sequential 3 trials earlier", parallel,
                         lagged[mine], 1.0),
                 bar_row(f"(context) {peer} parallel=4 ≤ 1.5 × its sequential", blocks[f"{peer}, parallel=4"],
                         blocks[peer], 1.5),
                 bar_row(f"(context) {mine} parallel=4 ≤ {peer} parallel=4", parallel,
                         blocks[f"{peer}, parallel=4"], 1.0)]
    return rows


def problem_section(done: Curves, problem: str, args: argparse.Namespace) -> list[str]:
    name = {(label, par): label if par == 1 else f"{label}, parallel=4" for label, par in ROWS}
    blocks = {name[row]: regrets(done, (row[0], problem, row[1]), args.trials, args) for row in ROWS}
    lagged = {label: regrets(done, (label, problem, 1), args.trials - 3, args) for label in PEERS}
    lag_rows = [[f"{label}, sequential @{args.trials - 3}", *summary_rows({"": lagged[label]})[0][1:]]
                for label in PEERS]
    return ["", f"### {problem}", "",
            table(["", "median", "quartiles", f"> {STUCK}"], summary_rows(blocks) + lag_rows), "",
            table(["bar", f"seeds 0-{args.block - 1}", f"{args.block}-seed blocks met", f"{args.seeds}-seed medians"],
                  bar_rows(blocks, lagged))]


def markdown(done: Curves, problems: list[str], args: argparse.Namespace, seconds: float) -> str:
    wall = (f"{seconds / 60:.0f} min for this invocation, {args.workers} processes "
            "(tasks loaded from --json not counted)")
    parts = [provenance() + "  ", f"Wall time: {wall}" + (f"  \n{args.note}" if args.note else ""), "",
             f"Regret@{args.trials} (`f(best) - f*`) on seeds 0-{args.seeds - 1}, in blocks of {args.block}. "
             "Seeds 0-9 are the issue's (the Search quality section's table); no setting was chosen on 10-99. "
             f"`> {STUCK}`: runs that ended above that regret (on Hartmann6 nearly all of them sit in the "
             "local basin at 0.119). Bars: in how many blocks the bar holds for the block medians, and "
             f"whether it holds for the {args.seeds}-seed medians. With 4 asks pending the model is 3 trials "
             f"behind the suggestions, so the sequential run's regret after {args.trials - 3} trials (same runs) "
             "is what that lag alone predicts for parallel=4: the diagnostic row compares with it. Where a "
             "sequential curve still falls steeply over its last 3 trials (a GP refining an optimum to 1e-6), "
             "the lag alone exceeds a 1.5x bar unless a batch refines more per trial than single asks do (our "
             "GP's batches, kept near its best points, now beat the lag on Branin). The (context) rows run "
             "Optuna's samplers with 4 asks pending the same way, each with its own rule for running trials "
             "(TPESampler's default constant liar, GPSampler's running-trial handling): what the best peer "
             "loses to the same lag, and whether ours still beats it."]
    for problem in problems:
        parts += problem_section(done, problem, args)
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--block", type=int, default=10)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", default="", help="save finished tasks here; a rerun skips them")
    parser.add_argument("--write", action="store_true", help="rewrite this section of RESULTS.md")
    parser.add_argument("--note", default="", help="a line to add under the provenance (e.g. where --json came from)")
    args = parser.parse_args()
    problems = args.problems.split(",")
    import optuna  # noqa: F401 (the peers run in the workers; imported here for the versions line)

    path = Path(args.json) if args.json else None
    done: Curves = json.loads(path.read_text()) if path and path.exists() else {}
    start = time.perf_counter()
    run_all(jobs_for(problems, args.seeds, args.block), done, args)
    text = markdown(done, problems, args, time.perf_counter() - start)
    print(text)
    if args.write:
        write_section(TITLE, text)


if __name__ == "__main__":
    main()
