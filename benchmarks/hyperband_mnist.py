"""Issue 7, item 3: does Hyperband reach random search's best MNIST accuracy on 1/3 of its epochs?

The article's MNIST MLP (784-128-10, Adam), lr log-uniform [1e-4, 1e-1], batch size in
{16, 32, 64, 128, 256}, budget 1-27 epochs, eta 3. The 60k training images are split once
(fixed permutation) into 50k for training and 10k for validation; the objective trains for
``budget`` epochs and returns validation accuracy (test accuracy of the 10k test set is kept
alongside). Per repetition:

* random search: N configs at the full budget, N chosen so N * R is closest to the epochs of
  one full Hyperband iteration (R = 27: N = 16, 432 epochs); its best accuracy is the target A;
* ``Hyperband(eta=3, sampler="random", mode="sync")``, one full iteration (all brackets);
* ``Hyperband(eta=3, sampler="tpe", mode="sync")`` (BOHB-style), one full iteration.

Epochs to reach A are counted over trials in completion order, two ways: *restart* (each
trial costs its budget: a promoted config is trained again from scratch, what hpwidgets'
schedule implies) and *resume* (the objective keeps each config's model and optimizer and
trains only the missing epochs). Training is seeded per config and per epoch, so the two give
bit-identical accuracies (checked at start-up) and one run yields both accountings.

Each study runs its trials one at a time (1 torch thread); the studies of all repetitions run
``--workers`` at a time in separate processes.

    nice -n 5 .venv/bin/python benchmarks/hyperband_mnist.py --reps 3        # writes RESULTS.md
    .venv/bin/python benchmarks/hyperband_mnist.py --quick                   # synthetic, seconds
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist_mlp import Data, Objective, load_mnist, synthetic_data
from results_md import provenance, table, write_section

import hpwidgets as hw
from hpwidgets.algorithms.hyperband import Hyperband, bracket_table

TITLE = "Hyperband on MNIST (issue 7)"
ALGOS = ("random", "hyperband", "bohb")
SAMPLER_NOTE = (
    "BOHB-style: Hyperband's `ConfigSampler` (hpwidgets/algorithms/config_sampler.py) draws a third of the "
    "new configs at random and the rest from a fresh TPE fitted on the largest budget with ≥ dims + 2 = 4 "
    "results (BOHB's rule), so the model starts after the 4th 1-epoch result of the first bracket.")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


_DATA: Data | None = None  # set in the parent before the worker processes fork


def space(max_budget: int) -> dict[str, Any]:
    return {"lr": hw.loguniform(1e-4, 1e-1), "batch_size": hw.choice(16, 32, 64, 128, 256),
            "epochs": hw.budget(1, max_budget)}


def check_resume(max_epochs: int = 3) -> bool:
    """Resume (1 epoch, then continued to ``max_epochs``) must equal training from scratch."""
    assert _DATA is not None
    params = {"lr": 3e-3, "batch_size": 64}
    resumed = Objective(_DATA, rep=0, resume=True)
    resumed({**params, "epochs": 1})
    a = resumed({**params, "epochs": max_epochs})
    b = Objective(_DATA, rep=0, resume=False)({**params, "epochs": max_epochs})
    return a == {**b, "trained_epochs": float(max_epochs - 1)}


def iteration_plan(max_budget: int, eta: float) -> dict[str, int]:
    """One full Hyperband iteration's trials and epochs, and the matching random-search size."""
    rungs = [r for b in bracket_table(1, max_budget, eta) for r in b.rungs]
    restart = sum(r.n * r.budget for r in rungs)
    return {"trials": sum(r.n for r in rungs), "epochs": restart,
            "random_trials": max(1, round(restart / max_budget))}


def epochs_to_reach(records: Sequence[dict[str, Any]], target: float, cost: str) -> float | None:
    """Cumulative epochs (``cost``: "budget" = restart, "trained" = resume) at which the running
    best accuracy first reaches ``target``, records in completion order; None if never."""
    spent = 0.0
    for record in records:
        spent += record[cost]
        if record["accuracy"] is not None and record["accuracy"] >= target:
            return spent
    return None


def algorithm(name: str, eta: float) -> Any:
    if name == "random":
        return "random"
    return Hyperband(eta=eta, sampler="tpe" if name == "bohb" else "random", mode="sync")


def run_job(job: tuple[str, int, int, int, float, int]) -> dict[str, Any]:
    """One study, trials one at a time, in a worker process; its trials in completion order."""
    name, rep, seed, max_budget, eta, trials = job
    torch.set_num_threads(1)
    assert _DATA is not None
    start = time.perf_counter()
    study = hw.tune(Objective(_DATA, rep), space(max_budget), algo=algorithm(name, eta), trials=trials,
                    maximize="accuracy", seed=seed, storage=None, progress=False)
    mode = getattr(study.algorithm, "resolved_mode", "-")
    records = [{"number": t.number, "state": t.state.name, "lr": t.params["lr"],
                "batch_size": t.params["batch_size"], "budget": t.params["epochs"],
                "trained": t.metrics.get("trained_epochs", t.params["epochs"]),
                "accuracy": t.metrics.get("accuracy"), "test_accuracy": t.metrics.get("test_accuracy")}
               for t in sorted(study.trials, key=lambda t: (t.finished_at or 0.0, t.number))]
    return {"algo": name, "rep": rep, "seed": seed, "mode": mode, "wall_s": time.perf_counter() - start,
            "records": records}


def best(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return max((r for r in records if r["accuracy"] is not None), key=lambda r: r["accuracy"])


def best_within(records: Sequence[dict[str, Any]], epochs: float, cost: str) -> float | None:
    """The best accuracy among the trials finished within ``epochs`` (completion order)."""
    spent, top = 0.0, None
    for record in records:
        spent += record[cost]
        if spent > epochs:
            break
        if record["accuracy"] is not None and (top is None or record["accuracy"] > top):
            top = record["accuracy"]
    return top


def algo_fields(name: str, recs: Sequence[dict[str, Any]], target: float, rand_epochs: float,
                tol: float) -> dict[str, Any]:
    row: dict[str, Any] = {f"{name}_best": best(recs)["accuracy"], f"{name}_test": best(recs)["test_accuracy"]}
    for cost in ("budget", "trained"):
        reach = epochs_to_reach(recs, target, cost)
        row[f"{name}_{cost}"] = reach
        row[f"{name}_{cost}_ratio"] = None if reach is None else reach / rand_epochs
        row[f"{name}_{cost}_total"] = sum(r[cost] for r in recs)
        near = epochs_to_reach(recs, target - tol, cost)  # within noise of A
        row[f"{name}_{cost}_near"] = near
        row[f"{name}_{cost}_near_ratio"] = None if near is None else near / rand_epochs
        row[f"{name}_{cost}_near_total"] = row[f"{name}_{cost}_total"]
        row[f"{name}_{cost}_third"] = best_within(recs, rand_epochs / 3, cost)
    return row


def summarise(results: list[dict[str, Any]], tol: float = 0.001) -> list[dict[str, Any]]:
    """Per repetition: random's target and epochs; each Hyperband's epochs-to-reach and ratios."""
    rows = []
    for rep in sorted({r["rep"] for r in results}):
        by = {r["algo"]: r for r in results if r["rep"] == rep}
        if set(by) != set(ALGOS):
            continue  # a cut-short run: this repetition is incomplete
        rand = by["random"]["records"]
        target, rand_epochs = best(rand)["accuracy"], sum(r["budget"] for r in rand)
        row: dict[str, Any] = {"rep": rep, "target": target, "random_epochs": rand_epochs,
                               "random_test": best(rand)["test_accuracy"],
                               "random_third": best_within(rand, rand_epochs / 3, "budget")}
        for name in ALGOS[1:]:
            row.update(algo_fields(name, by[name]["records"], target, rand_epochs, tol))
        rows.append(row)
    return rows


def noise_table(rows: list[dict[str, Any]]) -> str:
    """Within noise: best accuracy at the 1/3 mark, and epochs to reach A - 0.1 points."""
    header = ["rep", "A", "random best by 1/3 mark", "HB best by 1/3 mark (restart / resume)",
              "BOHB best by 1/3 mark (restart / resume)", "HB to A−0.1pt restart", "HB resume", "BOHB restart",
              "BOHB resume"]

    def acc(x: float | None) -> str:
        return "—" if x is None else f"{x:.4f}"

    body = [[str(r["rep"]), f"{r['target']:.4f}", acc(r["random_third"]),
             f"{acc(r['hyperband_budget_third'])} / {acc(r['hyperband_trained_third'])}",
             f"{acc(r['bohb_budget_third'])} / {acc(r['bohb_trained_third'])}",
             *(fmt_reach(r, f"{n}_{c}_near") for n in ALGOS[1:] for c in ("budget", "trained"))] for r in rows]
    return table(header, body)


def fmt_reach(row: dict[str, Any], key: str) -> str:
    reach, ratio, total = row[key], row[f"{key}_ratio"], row[f"{key}_total"]
    if reach is None:
        return f"not reached ({total:g} spent)"
    mark = "yes" if ratio <= 1 / 3 else "no"
    return f"{reach:g} ({ratio:.3f}, {mark})"


def render(rows: list[dict[str, Any]], results: list[dict[str, Any]], args: argparse.Namespace,
           plan: dict[str, int], wall: float) -> str:
    """The RESULTS.md section: setup, per-repetition table, bar tally, notes."""
    header = ["rep", "random best val (test)", "random epochs", "HB restart: epochs to A (ratio, ≤1/3?)",
              "HB resume", "HB best val (test)", "BOHB restart", "BOHB resume", "BOHB best val (test)"]
    body = []
    for r in rows:
        body.append([str(r["rep"]), f"{r['target']:.4f} ({r['random_test']:.4f})", f"{r['random_epochs']:g}",
                     fmt_reach(r, "hyperband_budget"), fmt_reach(r, "hyperband_trained"),
                     f"{r['hyperband_best']:.4f} ({r['hyperband_test']:.4f})", fmt_reach(r, "bohb_budget"),
                     fmt_reach(r, "bohb_trained"), f"{r['bohb_best']:.4f} ({r['bohb_test']:.4f})"])
    reused = f"; {args.reused} studies reused from an earlier run's --json" if args.reused else ""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [setup_text(args, plan), "", provenance() + f"  \nhpwidgets: commit {commit or '?'}  ",
             f"Wall time: {wall / 60:.1f} min for this invocation{reused} ({args.workers} studies at a time, "
             "each one trial at a time, 1 torch thread; run under "
             "`nice -n 5` on a machine shared with other work)", "", table(header, body), "", *tally(rows), "",
             f"Within noise ({sampling_noise(rows, plan['random_trials'])}): the best "
             "accuracy each Hyperband had found within 1/3 of random's epochs, and the epochs it needed to come "
             "within 0.1 points of A (ratio to random's epochs, ≤ 1/3?):", "", noise_table(rows), "",
             *job_times(results), "", SAMPLER_NOTE, *([""] if args.note else []), args.note]
    return "\n".join(lines)


def sampling_noise(rows: list[dict[str, Any]], n_configs: int, n_val: int = 10000) -> str:
    """How much of a difference in validation accuracy the finite validation set alone makes."""
    a = statistics.median(r["target"] for r in rows)
    se = 100 * math.sqrt(a * (1 - a) / n_val)
    return (f"an accuracy near {a:.3f} measured on {n_val} validation images has a sampling standard error of "
            f"{se:.2f} points, so differences of ~0.1 points are noise, and A is the best of "
            f"{n_configs} such measurements")


def setup_text(args: argparse.Namespace, plan: dict[str, int]) -> str:
    data = "synthetic 10-class data (--quick)" if args.quick else \
        "MNIST (`../shared/data`): 50k train / 10k validation (fixed split of the 60k) / 10k test"
    return (f"SimpleNN 784-128-10, Adam, lr log-uniform [1e-4, 1e-1], batch size in {{16, 32, 64, 128, 256}}, "
            f"budget `hw.budget(1, {args.max_budget})` epochs, eta {args.eta:g}; data: {data}. The objective "
            f"returns validation accuracy (A = random search's best); test accuracy of the same model in brackets. "
            f"Per repetition r (study seed {args.seed} + r; model init and batch order seeded by (r, lr, "
            f"batch size, epoch)): random search with {plan['random_trials']} configs at the full budget "
            f"({plan['random_trials'] * args.max_budget} epochs, the closest multiple of {args.max_budget} to one "
            f"Hyperband iteration's {plan['epochs']}); `Hyperband(eta={args.eta:g}, sampler=\"random\", "
            f"mode=\"sync\")` and the BOHB-style `sampler=\"tpe\"`, each one full iteration ({plan['trials']} "
            f"trials, all brackets s_max..0, trials one at a time so brackets run in order). Epochs to reach A "
            f"count every finished trial in completion order up to and including the first whose validation "
            f"accuracy ≥ A. **restart**: each trial costs its budget (hpwidgets' Hyperband asks a promoted config "
            f"again with the larger budget; a plain objective retrains from scratch). **resume**: the objective "
            f"continues its own checkpoint of the same config and costs only the new epochs. Training is "
            f"deterministic per (config, epoch), so both accountings come from one run with identical "
            f"accuracies (checked at start-up: resume 1→3 epochs == 3 from scratch). Ratio = epochs to reach A / "
            f"random's epochs; bar ≤ 1/3.")


def tally(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for name, label in (("hyperband", "Hyperband"), ("bohb", "BOHB-style (TPE sampler)")):
        for cost, how in (("budget", "restart"), ("trained", "resume")):
            ratios = [r[f"{name}_{cost}_ratio"] for r in rows]
            met = sum(1 for x in ratios if x is not None and x <= 1 / 3)
            shown = ", ".join("never" if x is None else f"{x:.3f}" for x in ratios)
            med = statistics.median([math.inf if x is None else x for x in ratios])
            out.append(f"- {label}, {how}: bar met in {met}/{len(rows)} repetitions; ratios {shown} "
                       f"(median {f'{med:.3f}' if math.isfinite(med) else 'never'}).")
    accs = [r["target"] for r in rows]
    if len(accs) > 1:
        out.append(f"- Random search's best validation accuracy across repetitions: {min(accs):.4f}-{max(accs):.4f} "
                   f"(spread {100 * (max(accs) - min(accs)):.2f} points).")
    return out


def job_times(results: list[dict[str, Any]]) -> list[str]:
    parts = [f"{r['algo']} r{r['rep']} {r['wall_s']:.0f} s ({r['mode']})" for r in results]
    return ["Study wall times (schedule mode): " + "; ".join(parts) + "."]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding MNIST/raw (default: %(default)s)")
    p.add_argument("--reps", type=int, default=3, help="repetitions with different seeds (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="base study seed (default: %(default)s)")
    p.add_argument("--max-budget", type=int, default=27, help="R, in epochs (default: %(default)s)")
    p.add_argument("--eta", type=float, default=3, help="Hyperband's eta (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="studies run at once, one process each (default: 2)")
    p.add_argument("--json", type=Path, help="also write every trial here (after each study)")
    p.add_argument("--resume", action="store_true", help="keep the studies already in --json; run the rest")
    p.add_argument("--note", default="", help="a sentence appended to the RESULTS.md section")
    p.add_argument("--quick", action="store_true", help="tiny synthetic data, R=9, 1 rep; prints, writes nothing")
    args = p.parse_args(argv)
    if args.quick:
        args.max_budget, args.reps = 9, 1
    return args


def plan_jobs(args: argparse.Namespace, plan: dict[str, int],
              done: list[dict[str, Any]]) -> list[tuple[str, int, int, int, float, int]]:
    """Every (study, repetition) still to run, repetition by repetition so early ones finish first."""
    jobs = [(name, rep, args.seed + rep, args.max_budget, args.eta,
             plan["random_trials"] if name == "random" else plan["trials"])
            for rep in range(args.reps) for name in ALGOS]
    have = {(r["algo"], r["rep"], r["seed"], len(r["records"])) for r in done}
    return [job for job in jobs if (job[0], job[1], job[2], job[5]) not in have]


def main(argv: Sequence[str] | None = None) -> None:
    global _DATA
    args = parse_args(argv)
    torch.set_num_threads(1)  # before any op, so nothing holds a thread pool when the workers fork
    _DATA = synthetic_data(args.seed) if args.quick else load_mnist(args.data)
    plan = iteration_plan(args.max_budget, args.eta)
    results = json.loads(args.json.read_text()) if args.resume and args.json and args.json.exists() else []
    args.reused = len(results)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("fork")) as pool:
        if not pool.submit(check_resume).result():
            raise SystemExit("resume does not reproduce training from scratch; the two accountings would differ")
        for result in pool.map(run_job, plan_jobs(args, plan, results)):
            results.append(result)
            print(f"done: {result['algo']} r{result['rep']} in {result['wall_s']:.0f} s", flush=True)
            if args.json:  # after each study, so a cut-short run still leaves its finished studies
                args.json.write_text(json.dumps(results, indent=1))
    wall = time.perf_counter() - start
    body = render(summarise(results), results, args, plan, wall)
    print(body)
    if not args.quick:
        write_section(TITLE, body)


if __name__ == "__main__":
    main()
