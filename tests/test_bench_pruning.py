"""The pruning benchmarks' accounting: MNIST on tiny synthetic data (no MNIST), and the worker simulation."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest
import torch  # noqa: F401 - a dev dependency: missing means a broken install
from benchkit import benchmark_script

import hpwidgets as hw
from hpwidgets.trial import Report


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with benchmark_script("pruning_mnist") as module:
        yield module


def test_a_reporting_trial_matches_the_reference_runs_at_every_epoch(bench: ModuleType) -> None:
    from mnist_mlp import Objective
    data = bench.synthetic_data(0)
    params = {"lr": 2e-3, "batch_size": 64}
    trial = hw.Trial(0, {**params, "epochs": 3})
    final = bench.Curve(data, rep=1)({**params, "epochs": 3}, trial)
    for epochs in (1, 3):  # random search's k-epoch accuracy is the pruned trial's at step k
        alone = Objective(data, rep=1, resume=False)({**params, "epochs": epochs})
        assert trial.reports[epochs - 1].metrics["accuracy"] == alone["accuracy"]
    assert final["accuracy"] == trial.reports[-1].metrics["accuracy"]


def test_a_pruned_trial_costs_its_reported_epochs_and_counts_its_last_accuracy(bench: ModuleType) -> None:
    reports = tuple(Report(step, {"accuracy": acc}) for step, acc in ((1, 0.90), (2, 0.93), (3, 0.92)))
    pruned = hw.FrozenTrial(4, hw.TrialState.PRUNED, {"lr": 1e-3, "batch_size": 32, "epochs": 27}, reports=reports)
    assert bench.record(pruned) | {"number": 4} == {
        "number": 4, "state": "PRUNED", "lr": 1e-3, "batch_size": 32, "budget": 3, "trained": 3,
        "accuracy": 0.92, "test_accuracy": None}


def test_a_study_stops_at_exactly_the_epoch_limit(bench: ModuleType) -> None:
    study = hw.Study(None, {"x": hw.uniform(0, 1)}, "random", seed=0, storage=None, pruner="asha")
    bench.stop_after(study, 40)

    def curve(params: dict, trial: hw.Trial) -> float:
        for step in range(1, 10):
            trial.report(step, loss=params["x"] + 1 / step)
        return params["x"]
    study.optimize(curve, trials=1000, progress=False)
    assert sum(len(t.reports) for t in study.trials) == 40 and len(study.trials) < 1000


def test_quick_mode_runs_end_to_end(bench: ModuleType) -> None:
    body = bench.main(["--quick", "--workers", "1"])
    assert "| 0 |" in body and "ASHA + TPE" in body


def test_the_simulated_workers_replay_a_study_exactly_with_one_worker(bench: ModuleType) -> None:
    import pruning_synthetic as synthetic
    from functions import PROBLEMS
    for name, algo in (("branin", "tpe"), ("mixed5", "random")):
        problem = PROBLEMS[name]
        assert synthetic.pruned_workers(problem, algo, 5, workers=1) == synthetic.pruned(problem, algo, 5)
