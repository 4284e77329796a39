"""Where Hyperband's new configs come from: random draws, or a model of one budget's results.

BOHB (Falkner et al., ICML 2018) fits its model on the results of the largest budget that has
enough of them: a 1-epoch loss says little about 27 epochs, but early on only 1-epoch results
exist, and waiting for full-budget ones would leave the model idle for most of an iteration.
A share of the draws stays random so the model's blind spots still get tried.

The model is any of our algorithms ("tpe" for BOHB-style). A fresh one is built for every
draw, told that budget's results, asked once and dropped: a long-lived one would keep the
configs Hyperband later drops at a low rung as asks still running (never told at the budget
it models), and its constant liar would push new draws away from the best region. What the
fresh model is told instead are the configs drawn earlier whose first result is still out
(parallel workers): as pending asks, so that draws made side by side stay apart.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..space import SearchSpace
from ..trial import FrozenTrial, TrialState
from . import make_algorithm
from ._encode import drop_told
from ._model_based import ModelBased
from .base import Algorithm
from .random import RandomSearch

RANDOM_FRACTION = 1 / 3  # BOHB's default share of random draws


class ConfigSampler:
    """Draws configs over the searched (budget-free) space; told results are keyed by budget."""

    def __init__(self, sampler: str | Algorithm, space: SearchSpace, *, seed: int | None, maximize: bool,
                 target: str | None) -> None:
        self._template, self._maximize, self._target = sampler, maximize, target
        self.model_based = sampler != "random"
        self._rng = np.random.default_rng(seed)
        self._random = RandomSearch()
        self._random.setup(space, seed=seed, maximize=maximize, target=target)
        self.space = space
        self.told: dict[Any, list[FrozenTrial]] = {}  # budget -> its COMPLETE / FAIL trials
        self.drawn: list[dict[str, Any]] = []  # configs handed out whose first result is still out

    def set_space(self, space: SearchSpace) -> None:
        """Later models see only the results inside ``space`` (our algorithms filter them)."""
        self.space = space
        self._random.set_space(space)

    def tell(self, trial: FrozenTrial, budget: Any) -> None:
        """A finished trial's searched params and outcome, filed under the budget it ran at.
        FAIL is filed too, as the contract expects; PRUNED (stopped by the user) has only a
        partial curve, so it only stops counting as drawn."""
        self.drawn = drop_told(self.drawn, trial.params)
        if trial.state in (TrialState.COMPLETE, TrialState.FAIL):
            self.told.setdefault(budget, []).append(trial)

    def withdraw(self, params: dict[str, Any]) -> None:
        """A drawn config that will never run is no longer a pending ask of later models."""
        self.drawn = drop_told(self.drawn, params)

    def model_budget(self) -> Any | None:
        """The largest budget with at least (dimensions + 2) results, BOHB's rule; None if none."""
        enough = [b for b, trials in self.told.items() if len(trials) >= len(self.space.searched()) + 2]
        return max(enough) if enough else None

    def ask(self) -> dict[str, Any]:
        budget = self.model_budget() if self.model_based else None
        if budget is None or self._rng.random() < RANDOM_FRACTION:
            params = self._random.ask()
        else:
            params = self._fresh_model(self.told[budget]).ask()
        self.drawn = [*self.drawn[-63:], params]  # bounded: a config never told must not pile up
        return params

    def _fresh_model(self, trials: list[FrozenTrial]) -> Algorithm:
        template = self._template
        model = make_algorithm(copy.deepcopy(template) if isinstance(template, Algorithm) else template)
        model.setup(self.space, seed=int(self._rng.integers(2**31)), maximize=self._maximize,
                    target=self._target, parallel=len(self.drawn) + 1)
        for trial in trials:
            model.tell(trial)
        if isinstance(model, ModelBased):
            for params in self.drawn:
                if self.space.contains(params):  # drawn before the space was narrowed: not comparable
                    model.add_pending(params)
        return model
