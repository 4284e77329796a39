"""gp_startup_swap.py's accounting: the told start-up points, the model's asks after them, the table."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest
from benchkit import benchmark_script


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with benchmark_script("gp_startup_swap") as module:
        yield module


def test_a_gp_told_another_design_keeps_those_points_first_and_models_every_later_ask(bench: ModuleType) -> None:
    branin = bench.PROBLEMS["branin"]
    _, own = bench.play(bench.our_gp(branin, 0), branin, [], n_trials=12)
    design = [({"x1": 0.1 * i - 4.0, "x2": 1.5 * i}, 0.0) for i in range(5)]
    design = [(p, branin.fn(p)) for p, _ in design]
    runner = bench.our_gp(branin, 0, n_startup=len(design))
    regret, trials = bench.play(runner, branin, design, n_trials=12)
    assert trials[:5] == design and len(trials) == 12
    assert runner.algo.n_startup_trials == 5 and len(runner.algo.history) == 12
    assert regret == min(branin.regret(v) for _, v in trials)
    # Its 6th trial comes from the model. Left at 15 start-up trials, the same GP told the same
    # points would ask the first point of its Sobol design next, as a fresh run does first.
    assert trials[5][0] != own[0][0]
    _, still_designing = bench.play(bench.our_gp(branin, 0), branin, design, n_trials=6)
    assert still_designing[5][0] == own[0][0]


def test_a_cell_gives_both_medians_and_the_seeds_where_the_first_gp_is_strictly_ahead(bench: ModuleType) -> None:
    results = [{"a": 1e-3, "b": 2e-3}, {"a": 0.5, "b": 0.1}, {"a": 1e-6, "b": 1e-6}]
    assert bench.cell(results, "a", "b") == ["0.001", "0.002", "1/3"]


def test_the_issue_seeds_get_their_own_row_besides_the_whole_range(bench: ModuleType) -> None:
    four = {"ours, own": 1.0, "optuna, ours": 2.0, "ours, optuna's": 3.0, "optuna, own": 4.0}
    results = [("branin", s, four) for s in range(12)]
    table = bench.rows(results, ["branin"], range(12))
    assert [row[:2] for row in table] == [["branin", "0-9"], ["branin", "0-11"]]
    assert table[0][2:] == ["1", "2", "10/10", "3", "4", "10/10"]
    assert [row[1] for row in bench.rows(results[:10], ["branin"], range(10))] == ["0-9"]
