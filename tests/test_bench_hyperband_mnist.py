"""The Hyperband-on-MNIST benchmark's accounting, on hand-made trials and tiny synthetic data (no MNIST)."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest
import torch  # noqa: F401 - a dev dependency: missing means a broken install
from benchkit import benchmark_script


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with benchmark_script("hyperband_mnist") as module:
        yield module


def test_epochs_to_reach_counts_in_completion_order_up_to_the_first_hit(bench: ModuleType) -> None:
    # A bracket's story: three 1-epoch configs, the best promoted to 3 epochs (2 of them new), then to 9.
    records = [{"budget": 1, "trained": 1, "accuracy": 0.90}, {"budget": 1, "trained": 1, "accuracy": 0.95},
               {"budget": 1, "trained": 1, "accuracy": None},  # failed: costs its epochs, never reaches
               {"budget": 3, "trained": 2, "accuracy": 0.97}, {"budget": 9, "trained": 6, "accuracy": 0.98}]
    assert bench.epochs_to_reach(records, 0.97, "budget") == 6
    assert bench.epochs_to_reach(records, 0.97, "trained") == 5
    assert bench.epochs_to_reach(records, 0.975, "budget") == 15
    assert bench.epochs_to_reach(records, 0.95, "trained") == 2  # reaching counts, ties included
    assert bench.epochs_to_reach(records, 0.99, "budget") is None


def test_iteration_plan_matches_the_hyperband_paper_table(bench: ModuleType) -> None:
    # R=27, eta=3 (Li et al. 2018, Table 1 shape): brackets of 40, 17, 8 and 4 evaluations.
    assert bench.iteration_plan(27, 3) == {"trials": 69, "epochs": 423, "random_trials": 16}


def test_resuming_a_checkpoint_reproduces_training_from_scratch(bench: ModuleType) -> None:
    bench._DATA = bench.synthetic_data(0)
    assert bench.check_resume(max_epochs=3)
    objective = bench.Objective(bench._DATA, rep=0)
    params = {"lr": 1e-3, "batch_size": 128}
    assert objective({**params, "epochs": 2})["trained_epochs"] == 2
    assert objective({**params, "epochs": 5})["trained_epochs"] == 3
    assert objective({**params, "epochs": 1})["trained_epochs"] == 1  # below the checkpoint: from scratch
