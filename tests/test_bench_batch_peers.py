"""batch_peers.py's accounting: the parallel protocol's curves and how the tables read them."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest
from benchkit import benchmark_script


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with benchmark_script("batch_peers") as module:
        yield module


def test_a_run_with_asks_pending_records_the_best_regret_after_each_told_trial(bench: ModuleType) -> None:
    key, curve, seconds = bench._task(("NativeGP", "branin", 4, 0))
    assert key == "NativeGP|branin|4|0" and len(curve) == bench.N_TRIALS and seconds > 0
    assert curve == sorted(curve, reverse=True)  # the best so far never gets worse
    assert curve[-1] < 1e-3 < curve[0]  # the GP's asks, 4 at a time, refine Branin's minimum


def test_first_reach_names_the_trial_or_a_dash(bench: ModuleType) -> None:
    assert bench.first_reach([1.0, 0.5, 0.05, 0.01], 0.1) == "3"
    assert bench.first_reach([1.0, 0.5], 0.1) == "–"


def test_the_regret_table_gives_the_ratio_and_the_bar_and_dashes_for_runs_not_made(bench: ModuleType) -> None:
    flat = [1.0] * bench.N_TRIALS
    curves = {f"A|f|1|{s}": [*flat[:-1], 1e-3] for s in range(3)}
    curves |= {f"A|f|4|{s}": [*flat[:-1], 2e-3 if s else 1.0] for s in range(3)}
    curves |= {f"B|f|1|{s}": flat for s in range(3)}  # B never ran with asks pending
    text = bench.regret_table(curves, ("A", "B"), ["f"], range(3))
    assert "| A | 0.001 | 0.002 (2×, **not met**) |" in text
    assert "| B | – | – |" in text
