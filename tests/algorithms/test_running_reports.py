"""Under a pruner the running trials' latest reports join the model (``ModelBased.observe``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from helpers import complete, pruned

import hpwidgets as hw
import hpwidgets.space as hs
from hpwidgets.algorithms._model_based import ModelBased
from hpwidgets.algorithms.gp_native import NativeGP
from hpwidgets.algorithms.tpe_native import NativeTPE
from hpwidgets.trial import FrozenTrial, Report, TrialState

LINE = hs.SearchSpace({"x": hs.uniform(0.0, 10.0)})
MODELS: dict[str, Callable[[], ModelBased]] = {
    "tpe": lambda: NativeTPE(n_startup_trials=5),
    "gp": lambda: NativeGP(n_startup_trials=5, n_random=256, n_local=64, n_starts=2),
}


def running(number: int, params: dict[str, Any], step: int, loss: float) -> FrozenTrial:
    return FrozenTrial(number, TrialState.RUNNING, params, reports=(Report(step, {"loss": loss}),))


def told_on_a_bowl(name: str, *, pruning: bool, maximize: bool = False) -> ModelBased:
    """20 trials told on (x - 2)^2 (negated when maximising) over [0, 5] of [0, 10], 4 workers."""
    algo = MODELS[name]()
    algo.setup(LINE, seed=0, parallel=4, maximize=maximize)
    algo.pruning = pruning
    for number in range(20):
        x = 5 * number / 19
        algo.tell(complete(number, {"x": x}, -(x - 2) ** 2 if maximize else (x - 2) ** 2))
    return algo


@pytest.mark.parametrize("name", MODELS)
def test_a_running_report_is_data_until_the_trial_is_told(name: str) -> None:
    algo = told_on_a_bowl(name, pruning=True)
    asks = [algo.ask() for _ in range(3)]
    algo.observe(running(20, asks[0], 3, 0.5))
    algo.observe(running(20, asks[0], 9, 0.25))  # a later report replaces the earlier one
    X, losses, numbers = algo._model_history().arrays()
    assert len(X) == 21 and losses[-1] == 0.25 and numbers[-1] == 20
    assert algo._unreported() == asks[1:]  # no fantasy for the reported one
    assert len(algo._scored) == 20  # the told history itself is untouched
    algo.tell(pruned(20, asks[0], 0.25))
    assert algo._running == {} and len(algo._model_history()) == 21 and algo._unreported() == asks[1:]


@pytest.mark.parametrize("name", MODELS)
def test_without_a_pruner_running_reports_are_ignored(name: str) -> None:
    algo = told_on_a_bowl(name, pruning=False)
    params = algo.ask()
    algo.observe(running(20, params, 3, -5.0))
    assert algo._running == {} and len(algo._model_history()) == 20 and algo._unreported() == [params]


@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("name", MODELS)
def test_a_running_trial_that_reports_well_draws_the_next_asks(name: str, maximize: bool) -> None:
    """The told trials (all in [0, 5]) say x = 2; a survivor at x = 8 reports far better."""
    def next_ask(observe: bool) -> float:
        algo = told_on_a_bowl(name, pruning=True, maximize=maximize)
        if observe:
            algo.observe(running(20, {"x": 8.0}, 9, 5.0 if maximize else -5.0))
        return algo.ask()["x"]

    assert next_ask(observe=True) > 6  # near 8, or past it where the model extrapolates the dip
    assert abs(next_ask(observe=False) - 2) < 1


def test_a_narrowed_space_drops_running_reports_outside_it() -> None:
    algo = told_on_a_bowl("tpe", pruning=True)
    algo.observe(running(20, {"x": 8.0}, 9, -5.0))
    algo.observe(running(21, {"x": 1.0}, 9, -1.0))
    algo.set_space(hs.SearchSpace({"x": hs.uniform(0.0, 5.0)}))
    assert list(algo._running) == [21]


class Recording(NativeTPE):
    """NativeTPE that keeps every running trial the study shows it."""

    def __init__(self) -> None:
        super().__init__(n_startup_trials=3)
        self.observed: list[FrozenTrial] = []

    def observe(self, trial: FrozenTrial) -> None:
        self.observed.append(trial)
        super().observe(trial)


def three_epochs(params: dict[str, Any], trial: hw.Trial) -> float:
    for epoch in range(1, 4):
        trial.report(epoch, loss=(params["x"] - 2) ** 2 + 1 / epoch)
    return (params["x"] - 2) ** 2


@pytest.mark.parametrize("pruner", ["asha", None])
def test_a_study_shows_its_algorithm_running_trials_only_under_a_pruner(pruner: str | None) -> None:
    algo = Recording()
    study = hw.Study(None, {"x": hw.uniform(0, 10)}, algo, seed=0, storage=None, pruner=pruner)
    study.optimize(three_epochs, trials=8, parallel=2, progress=False)
    if pruner is None:
        assert algo.observed == []
        return
    by_number = {t.number: t for t in study.trials}
    assert algo.observed and {t.state for t in algo.observed} == {TrialState.RUNNING}
    for seen in algo.observed:  # one report, the trial's own params, never a stopping report
        [report] = seen.reports
        assert dict(seen.params) == dict(by_number[seen.number].params)
        assert report in by_number[seen.number].reports
    pruned_at = {(t.number, t.reports[-1].step) for t in study.trials if t.state is TrialState.PRUNED}
    assert not pruned_at & {(t.number, t.reports[0].step) for t in algo.observed}
    assert algo._running == {}  # every observed trial was told in the end
