"""Checkpoints in practice: one Hyperband iteration on the MNIST MLP, promoted configs restarted
from scratch vs resumed from ``trial.checkpoint_dir``.

The MLP, data split, space and seeding of ``hyperband_mnist.py``; two studies of
``Hyperband(eta=3, sampler="random", mode="sync")`` with the same seed, one full iteration
(69 trials), each study one trial at a time in its own process (1 torch thread), both at once:

* restart: ``mnist_mlp.Objective(resume=False)``: every trial trains its config from scratch;
* checkpoint: ``CheckpointObjective`` loads the model and Adam state from its config's
  ``trial.checkpoint_dir`` when there is one, trains only the missing epochs and saves
  (written to a temporary file, then renamed, so a killed trial never leaves half a file).

Training is seeded per config and per epoch, so the two studies must see identical accuracies
and make the same 69 decisions; the script checks both and reports the epochs trained, the
wall time and the bytes the checkpoints take on disk.

    nice -n 5 .venv/bin/python benchmarks/checkpoint_mnist.py     # writes RESULTS.md
    .venv/bin/python benchmarks/checkpoint_mnist.py --quick       # synthetic data, R=9, seconds
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist_mlp import Data, FreshTrainer, Objective, accuracy, load_mnist, synthetic_data, train_epoch
from results_md import provenance, table, write_section

import hpwidgets as hw
from hpwidgets.algorithms.hyperband import Hyperband

TITLE = "Checkpoints: Hyperband on MNIST, restart vs resume"
SETUP = (
    "One full Hyperband iteration (`Hyperband(eta=3, sampler=\"random\", mode=\"sync\")`, seed 0, 69 trials, "
    "budget 1-27 epochs) on the MNIST MLP of \"Hyperband on MNIST (issue 7)\" (same data split, space and "
    "seeding), twice, "
    "each study one trial at a time: **restart** trains every trial from scratch; **checkpoint** loads the "
    "model and Adam state from the config's `trial.checkpoint_dir` (torch.save to a temporary file, then "
    "renamed) and trains only the missing epochs. Training is seeded per config and per epoch, so both "
    "studies must see the same accuracies and make the same decisions (checked below).")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
_DATA: Data | None = None  # set in the parent before the worker processes fork


class CheckpointObjective(FreshTrainer):
    """Trains a config to ``epochs``, continuing the state its checkpoint folder holds."""

    def __call__(self, params: dict[str, Any], trial: hw.Trial) -> dict[str, float]:
        bs, budget, seed, model, opt = self.start(params)
        saved, done = trial.checkpoint_dir / "state.pt", 0
        if saved.exists():
            state = torch.load(saved)
            if state["epochs"] <= budget:  # a larger budget than asked: train afresh instead
                model.load_state_dict(state["model"])
                opt.load_state_dict(state["optimizer"])
                done = state["epochs"]
        for epoch in range(done, budget):
            train_epoch(model, opt, self.data, bs, seed + 7919 * (epoch + 1))
        part = saved.with_suffix(".part")
        torch.save({"epochs": budget, "model": model.state_dict(), "optimizer": opt.state_dict()}, part)
        os.replace(part, saved)
        return {"accuracy": accuracy(model, self.data.val), "trained_epochs": float(budget - done)}


def run_study(job: tuple[str, int, int]) -> dict[str, Any]:
    """One study in a worker process: its trials by number, wall time and checkpoint bytes."""
    how, max_budget, trials = job
    torch.set_num_threads(1)
    assert _DATA is not None
    objective = CheckpointObjective(_DATA, rep=0) if how == "checkpoint" else Objective(_DATA, 0, resume=False)
    space = {"lr": hw.loguniform(1e-4, 1e-1), "batch_size": hw.choice(16, 32, 64, 128, 256),
             "epochs": hw.budget(1, max_budget)}
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        study = hw.tune(objective, space, algo=Hyperband(eta=3, sampler="random", mode="sync"), trials=trials,
                        maximize="accuracy", seed=0, storage=Path(folder) / "study.db", progress=False)
        wall = time.perf_counter() - start
        root = study.checkpoints.root
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) if root.exists() else 0
        study.store.close()
    trials_out = [{"params": dict(t.params), "accuracy": t.metrics.get("accuracy"),
                   "trained": t.metrics.get("trained_epochs")} for t in study.trials]
    return {"how": how, "wall_s": wall, "bytes": size, "trials": trials_out}


def render(restart: dict[str, Any], resumed: dict[str, Any], wall: float) -> str:
    same_params = [t["params"] for t in restart["trials"]] == [t["params"] for t in resumed["trials"]]
    same_acc = [t["accuracy"] for t in restart["trials"]] == [t["accuracy"] for t in resumed["trials"]]
    rows = []
    for run in (restart, resumed):
        trained = sum(t["trained"] for t in run["trials"])
        top = max(t["accuracy"] for t in run["trials"] if t["accuracy"] is not None)
        rows.append([run["how"], str(len(run["trials"])), f"{trained:.0f}", f"{run['wall_s']:.0f}",
                     f"{top:.4f}", f"{run['bytes'] / 1e6:.1f} MB"])
    ratio = resumed["wall_s"] / restart["wall_s"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return "\n".join([
        SETUP, "", provenance() + f"  \nhpwidgets: commit {commit or '?'}  ",
        f"Wall time: {wall / 60:.1f} min for this invocation (the two studies side by side, one core each, "
        f"niceness {os.nice(0)})", "",
        table(["run", "trials", "epochs trained", "wall s", "best val acc", "checkpoints on disk"], rows), "",
        f"- Same {len(restart['trials'])} decisions (params of every trial, in order): "
        f"{'yes' if same_params else '**no**'}; "
        f"identical validation accuracies: {'yes' if same_acc else '**no**'}.",
        f"- Wall time with checkpoints: {ratio:.2f}x the restart study's."])


def main(argv: Sequence[str] | None = None) -> None:
    global _DATA
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding MNIST/raw (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="tiny synthetic data, R=9; prints, writes nothing")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # before any op, so nothing holds a thread pool when the workers fork
    _DATA = synthetic_data(0) if args.quick else load_mnist(args.data)
    max_budget, trials = (9, 13) if args.quick else (27, 69)
    start = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        restart, resumed = pool.map(run_study, [("restart", max_budget, trials), ("checkpoint", max_budget, trials)])
    body = render(restart, resumed, time.perf_counter() - start)
    print(body)
    if not args.quick:
        write_section(TITLE, body)


if __name__ == "__main__":
    main()
