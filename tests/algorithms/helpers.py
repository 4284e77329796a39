"""Shared by the algorithm tests: spaces, trial records and a small ask/tell loop."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

import hpwidgets.space as hs
from hpwidgets.algorithms.base import Algorithm
from hpwidgets.trial import FrozenTrial, Report, TrialState

MIXED = hs.SearchSpace({
    "lr": hs.loguniform(1e-4, 1e-1),
    "x": hs.uniform(-2.0, 3.0),
    "q": hs.quniform(0.1, 1.0, 0.25),
    "qlog": hs.Float(1.0, 1000.0, log=True, q=5.0),
    "width": hs.integer(16, 256, step=16),
    "units": hs.integer(1, 100, log=True),
    "act": hs.choice("relu", "tanh", None, 16),
    "epochs": hs.budget(1, 27),
})
QUADRATIC = hs.SearchSpace({"x": hs.uniform(-5.0, 5.0)})


def mixed_loss(p: Mapping[str, Any]) -> float:
    """A loss over MIXED with its optimum at lr=1e-2, x=1, width=64, act="tanh"."""
    return ((math.log10(p["lr"]) + 2) ** 2 + (p["x"] - 1) ** 2 + abs(p["width"] - 64) / 64
            + (0 if p["act"] == "tanh" else 1))


def complete(number: int, params: Mapping[str, Any], value: float) -> FrozenTrial:
    return FrozenTrial(number, TrialState.COMPLETE, params, value=value)


def failed(number: int, params: Mapping[str, Any]) -> FrozenTrial:
    return FrozenTrial(number, TrialState.FAIL, params, error="boom")


def pruned(number: int, params: Mapping[str, Any], last: float) -> FrozenTrial:
    """A pruned trial with no final value: its loss is the last reported metric."""
    return FrozenTrial(number, TrialState.PRUNED, params, reports=(Report(0, {"loss": last}),))


def assert_valid(space: hs.SearchSpace, params: Mapping[str, Any]) -> None:
    """Every searched name present, every value plain Python and inside its dimension."""
    assert set(params) == set(space.searched()), params
    for name, value in params.items():
        assert not isinstance(value, np.generic), (name, type(value))
        assert space[name].contains(value), (name, value, space[name])
        if isinstance(space[name], hs.Int):
            assert type(value) is int, (name, value)
        if isinstance(space[name], hs.Choice):
            assert any(type(v) is type(value) and v == value for v in space[name].values), (name, value)


def run(algo: Algorithm, fn: Callable[[Mapping[str, Any]], float], n: int) -> list[dict[str, Any]]:
    """Ask/evaluate/tell ``n`` times; the suggestions in order."""
    asked = []
    for _ in range(n):
        params = algo.ask()
        asked.append(params)
        algo.tell(complete(len(algo.history), params, fn(params)))
    return asked


def random_params(space: hs.SearchSpace, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    return {name: dim.from_unit(rng.random()) for name, dim in space.searched().items()}


def mean_distance(suggestions: list[dict[str, Any]], optimum: float) -> float:
    return sum(abs(p["x"] - optimum) for p in suggestions) / len(suggestions)


def distance_after_direction_run(algo: Algorithm, maximize: bool, n: int, last: int) -> tuple[float, float]:
    """Run ``algo`` on a 1-D quadratic whose optimum depends on the direction; return the mean
    distance of the last ``last`` suggestions to the optimum and what random search would get
    (E|U(-5, 5) - optimum|). A flipped direction would push suggestions to the far bound."""
    optimum, expected_random = (-3.0, 3.4) if maximize else (2.0, 2.9)
    sign = -1.0 if maximize else 1.0
    algo.setup(QUADRATIC, seed=0, maximize=maximize)
    asked = run(algo, lambda p: sign * (p["x"] - optimum) ** 2, n)
    return mean_distance(asked[-last:], optimum), expected_random



# --- Hyperband: a budgeted space, a fake training curve, finished trials, a one-at-a-time loop
def budgeted_space(high: int = 27) -> hs.SearchSpace:
    return hs.SearchSpace({"x": hs.uniform(0, 1), "act": hs.choice("relu", "tanh"), "epochs": hs.budget(1, high)})


def curve_loss(p: Mapping[str, Any]) -> float:
    """A fake training curve: cheap budgets rank configs noisily, full budget by (x - 0.3)^2."""
    bias = 0.05 if p["act"] == "tanh" else 0.0
    return (p["x"] - 0.3) ** 2 + bias + 0.3 * math.sin(17 * p["x"]) ** 2 / p["epochs"]


def finished(number: int, p: dict[str, Any], value: float | None = None,
             state: TrialState = TrialState.COMPLETE, **kwargs: Any) -> FrozenTrial:
    if value is None and state is TrialState.COMPLETE:
        value = curve_loss(p)
    return FrozenTrial(number, state, p, value, **kwargs)


def run_one_at_a_time(algorithm: Algorithm, n: int, start: int = 0) -> list[dict[str, Any]]:
    asked = []
    for number in range(start, start + n):
        p = algorithm.ask()
        asked.append(p)
        algorithm.tell(finished(number, p))
    return asked
