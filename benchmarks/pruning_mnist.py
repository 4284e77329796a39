"""ASHA pruning on the MNIST MLP: the epochs to reach random search's best, as for Hyperband.

Model, data split, space and seeds as in ``hyperband_mnist.py``. Per repetition r (study seed
``--seed`` + r) random search (16 configs at 27 epochs) sets the target A: read from
``hyperband_mnist.py``'s ``--json`` when given (``--reference``), else run here. Then
``algo="random"``, ``algo="tpe"`` and ``algo="gp"``, each with ``pruner="asha"`` (rungs at 1, 3 and 9 epochs,
eta 3), run one trial at a time; every trial reports validation accuracy after each epoch, and
the study stops once it has trained as many epochs as random search did. A pruned trial costs
the epochs it trained and counts with its accuracy at its last report, the model it leaves,
as a Hyperband trial at a low budget does. Training is seeded per (config, epoch), so a trial's
accuracy after k epochs equals a k-epoch trial's of the reference run.

    nice -n 5 .venv/bin/python benchmarks/pruning_mnist.py --reference HB.json --json OUT.json
    .venv/bin/python benchmarks/pruning_mnist.py --quick          # synthetic data, prints only
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hyperband_mnist as hbm
from mnist_mlp import Curve, Data, load_mnist, synthetic_data
from results_md import provenance, table, write_section

import hpwidgets as hw
from hpwidgets.events import TrialReported

TITLE = "ASHA pruning on MNIST (issue 7)"
PRUNED = {"asha": "random", "asha-tpe": "tpe", "asha-gp": "gp"}
LABELS = {"asha": "ASHA + random", "asha-tpe": "ASHA + TPE", "asha-gp": "ASHA + GP"}
_DATA: Data | None = None  # set in the parent before the worker processes fork


def stop_after(study: hw.Study, epochs: float) -> None:
    """Stop ``study`` at the report that brings its trained epochs to ``epochs``."""
    seen = 0

    def on_event(event: Any) -> None:
        nonlocal seen
        if isinstance(event, TrialReported):
            seen += 1
            if seen >= epochs:
                study.stop()
    study.subscribe(on_event)


def record(trial: hw.FrozenTrial) -> dict[str, Any]:
    """A trial as hyperband_mnist's records: cost = epochs trained, accuracy of the model it left."""
    last = trial.reports[-1].metrics.get("accuracy") if trial.reports else None
    return {"number": trial.number, "state": trial.state.name, "lr": trial.params["lr"],
            "batch_size": trial.params["batch_size"], "budget": len(trial.reports), "trained": len(trial.reports),
            "accuracy": trial.metrics.get("accuracy", last), "test_accuracy": trial.metrics.get("test_accuracy")}


def run_pruned(job: tuple[str, int, int, int, float]) -> dict[str, Any]:
    """One pruned study, trials one at a time, until it has trained ``epochs`` epochs."""
    name, rep, seed, max_budget, epochs = job
    torch.set_num_threads(1)
    assert _DATA is not None
    start = time.perf_counter()
    study = hw.Study(None, hbm.space(max_budget), PRUNED[name], maximize="accuracy", seed=seed, storage=None,
                     pruner="asha")
    stop_after(study, epochs)
    study.optimize(Curve(_DATA, rep), trials=100_000, progress=False)
    records = [record(t) for t in sorted(study.trials, key=lambda t: (t.finished_at or 0.0, t.number))]
    return {"algo": name, "rep": rep, "seed": seed, "wall_s": time.perf_counter() - start, "records": records}


def reference_runs(args: argparse.Namespace, plan: dict[str, int], pool: ProcessPoolExecutor) -> list[dict]:
    """Random search per repetition: from --reference, else run with hyperband_mnist's job."""
    known = json.loads(args.reference.read_text()) if args.reference else []
    runs = []
    for rep in range(args.reps):
        found = [r for r in known if r["algo"] == "random" and r["rep"] == rep and r["seed"] == args.seed + rep]
        runs.append(found[0] if found else pool.submit(
            hbm.run_job, ("random", rep, args.seed + rep, args.max_budget, 3, plan["random_trials"])).result())
    return runs


def summary_row(reference: dict[str, Any], pruned: dict[str, dict[str, Any]], tol: float) -> list[str]:
    rand = reference["records"]
    target, rand_epochs = hbm.best(rand)["accuracy"], sum(r["budget"] for r in rand)
    row = [str(reference["rep"]), f"{target:.4f}", f"{rand_epochs:g}"]
    for name in PRUNED:
        recs = pruned[name]["records"]
        fields = hbm.algo_fields(name, recs, target, rand_epochs, tol)
        n_pruned = sum(1 for r in recs if r["state"] == "PRUNED")
        top = hbm.best(recs)
        row += [hbm.fmt_reach(fields, f"{name}_trained"), hbm.fmt_reach(fields, f"{name}_trained_near"),
                f"{fields[f'{name}_trained_third']:.4f}", f"{top['accuracy']:.4f} ({len(recs)}, {n_pruned})"]
    return row


def tally(references: list[dict], results: list[dict]) -> list[str]:
    """Per pruned search: in how many repetitions it reached A on at most 1/3 of random's epochs."""
    out = []
    for name, label in LABELS.items():
        ratios = []
        for ref in references:
            rand_epochs = sum(r["budget"] for r in ref["records"])
            recs = next(r["records"] for r in results if r["algo"] == name and r["rep"] == ref["rep"])
            reach = hbm.epochs_to_reach(recs, hbm.best(ref["records"])["accuracy"], "trained")
            ratios.append(None if reach is None else reach / rand_epochs)
        met = sum(1 for x in ratios if x is not None and x <= 1 / 3)
        shown = ", ".join("never" if x is None else f"{x:.3f}" for x in ratios)
        out.append(f"- {label}: reached A on ≤ 1/3 of random's epochs in {met}/{len(ratios)} repetitions "
                   f"(ratios {shown}).")
    return out


def render(references: list[dict], results: list[dict], args: argparse.Namespace, wall: float) -> str:
    header = ["rep", "A (random's best)", "random epochs"]
    for label in LABELS.values():
        header += [f"{label}: epochs to A (ratio, ≤1/3?)", "to A−0.1pt", "best by 1/3 mark",
                   "best val (trials, pruned)"]
    rows = [summary_row(ref, {r["algo"]: r for r in results if r["rep"] == ref["rep"]}, 0.001)
            for ref in references]
    source = (f"read from `{args.reference}` (written by `hyperband_mnist.py --json`: the random-search studies "
              f"of the \"{hbm.TITLE}\" section)") if args.reference else "run here"
    reused = f"; {args.reused} pruned studies reused from `{args.json}`" if args.reused else ""
    times = "; ".join(f"{r['algo']} r{r['rep']} {r['wall_s']:.0f} s" for r in results)
    return "\n".join([
        __doc__.split("\n\n")[1].replace("\n", " "), "", provenance() + "  ",
        f"Random search {source}. Wall time of this invocation: {wall / 60:.1f} min{reused} ({args.workers} "
        "studies at a time, each one trial at a time, 1 torch thread, under `nice -n 5` on a machine shared with "
        f"other work). Study wall times: {times}.", "", table(header, rows), "", *tally(references, results)])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=hbm.DEFAULT_DATA, help="folder holding MNIST/raw")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="base study seed (default: %(default)s)")
    p.add_argument("--reference", type=Path, help="hyperband_mnist.py --json output holding random search")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", type=Path, help="also write every pruned study's trials here")
    p.add_argument("--resume", action="store_true", help="keep the pruned studies already in --json; run the rest")
    p.add_argument("--note", default="", help="a paragraph appended to the RESULTS.md section")
    p.add_argument("--quick", action="store_true", help="tiny synthetic data, R=9, 1 rep; prints, writes nothing")
    args = p.parse_args(argv)
    args.max_budget = 9 if args.quick else 27
    if args.quick:
        args.reps, args.reference = 1, None
    return args


def main(argv: Sequence[str] | None = None) -> str:
    global _DATA
    args = parse_args(argv)
    torch.set_num_threads(1)
    _DATA = synthetic_data(args.seed) if args.quick else load_mnist(args.data)
    hbm._DATA = _DATA  # the reference jobs run hyperband_mnist's own code
    plan = hbm.iteration_plan(args.max_budget, 3)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("fork")) as pool:
        references = reference_runs(args, plan, pool)
        jobs = [(name, ref["rep"], ref["seed"], args.max_budget, sum(r["budget"] for r in ref["records"]))
                for ref in references for name in PRUNED]
        results = json.loads(args.json.read_text()) if args.resume and args.json and args.json.exists() else []
        args.reused = len(results)
        have = {(r["algo"], r["rep"], r["seed"]) for r in results}
        for result in pool.map(run_pruned, [job for job in jobs if job[:3] not in have]):
            results.append(result)
            print(f"done: {result['algo']} r{result['rep']} in {result['wall_s']:.0f} s", flush=True)
            if args.json:
                args.json.write_text(json.dumps(results, indent=1))
    body = render(references, results, args, time.perf_counter() - start)
    if args.note:
        body += "\n\n" + args.note
    print(body)
    if not args.quick:
        write_section(TITLE, body)
    return body


if __name__ == "__main__":
    main()
