"""The one contract every algorithm speaks: ``ask()`` a dict of params, ``tell()`` a FrozenTrial.

Rules, written once here and checked by ``tests/algorithms/test_conformance.py``:

* ``setup(space, seed=..., maximize=...)`` is called once by the study before any ``ask``;
  ``set_space`` may be called later (slider edits) and the algorithm must then suggest
  inside the new space, refitting on the in-range part of its history.
* ``ask()`` returns ``{name: value}`` for every searched dimension, plain Python values
  (never numpy scalars, never choice indices). A budget dimension may be set by the
  algorithm (Hyperband); otherwise the study fixes it at its maximum.
* ``ask()`` may be called several times before the matching ``tell`` (parallel trials).
* ``tell(trial)`` receives every finished trial: COMPLETE, PRUNED and FAIL ones, including
  trials from storage the algorithm never asked for (resume).
* ``withdraw(params)`` hands back an ask that will never run (the store already held every
  trial the study wanted, written by another process); the algorithm must then hold nothing
  for it: no pending fantasy, no schedule slot waiting on it. Default: nothing to forget.
* ``should_prune(trial_number, step, value)`` is asked after each report; default never.
* ``pruning`` is set by the study when a pruner may stop running trials: the trials still
  running are then the survivors of its rungs, not a random draw of the asks.
* ``observe(trial)``: while ``pruning`` is set, the study passes each running trial after each
  report, as a RUNNING FrozenTrial whose one report is its latest. It is what the trial would
  be told with if the pruner stopped it now; the trial's ``tell`` supersedes it. Default: ignore.
* With the same seed and one trial at a time, the sequence of suggestions is the same.
"""

from __future__ import annotations

import random as _random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..space import SearchSpace
from ..trial import FrozenTrial, TrialState
from ._spec import record_options, spec_of


class Algorithm(ABC):
    """Base class: keeps the space, the seed, the direction and the told history."""

    name: str = "algorithm"
    _options: Mapping[str, Any] = MappingProxyType({})  # the constructor's arguments (``_spec.record_options``)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        record_options(cls)

    def spec(self) -> str:
        """The name and constructor options as one string (``hyperband(eta=2)``): what a stored
        study records, so that resuming it rebuilds the same algorithm (``make_algorithm(spec)``)."""
        return spec_of(self.name, self._options, type(self).__module__.startswith("hpwidgets."))

    def __init__(self) -> None:
        self.space: SearchSpace | None = None
        self.seed: int | None = None
        self.maximize = False
        self.target: str | None = None
        self.parallel = 1
        self.pruning = False
        self.history: list[FrozenTrial] = []

    def setup(self, space: SearchSpace, *, seed: int | None = None, maximize: bool = False,
              target: str | None = None, parallel: int = 1) -> None:
        self.space, self.seed, self.maximize = space, seed, maximize
        self.target, self.parallel = target, parallel
        self.history = []
        self._rng = _random.Random(seed)
        self._on_setup()

    def _on_setup(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Subclasses build their sampler state here."""

    def set_space(self, space: SearchSpace) -> None:
        """Adopt an edited space; the default keeps the history and suggests inside ``space``."""
        self.space = space

    @abstractmethod
    def ask(self) -> dict[str, Any]:
        """The next suggestion, keyed by parameter name."""

    def tell(self, trial: FrozenTrial) -> None:
        """Record a finished trial (any state)."""
        self.history.append(trial)

    def withdraw(self, params: dict[str, Any]) -> None:  # noqa: B027 - optional, like _on_setup
        """Forget ``params``, an ask that will never be told; stateless samplers keep nothing."""

    def observe(self, trial: FrozenTrial) -> None:  # noqa: B027 - optional, like withdraw
        """A running trial's latest report (see the module doc); stateless samplers ignore it."""

    def should_prune(self, trial_number: int, step: int, value: float) -> bool:
        return False

    def continue_from(self, stored_spec: str) -> None:  # noqa: B027 - optional, like withdraw
        """Resuming a study that last ran ``stored_spec``, with this algorithm named anew: keep what
        a past run decided that the options leave open (Hyperband's "auto" mode). Default: nothing."""

    # --- helpers shared by the model-based algorithms --------------------------------------
    def loss(self, trial: FrozenTrial) -> float | None:
        """The value to *minimise* for a trial, or None when it has none (FAIL)."""
        if trial.state is TrialState.COMPLETE:
            value = trial.value
        elif trial.state in (TrialState.PRUNED, TrialState.RUNNING):  # its last report stands in
            value = trial.value if trial.value is not None else trial.last_reported(self.target)
        else:
            return None
        if value is None:
            return None
        return -value if self.maximize else value

    def in_space(self, trial: FrozenTrial) -> bool:
        """Whether a past trial lies inside the current (possibly narrowed) space."""
        assert self.space is not None
        return all(name in trial.params and dim.contains(trial.params[name])
                   for name, dim in self.space.searched().items())

    def scored_history(self) -> list[tuple[FrozenTrial, float]]:
        """In-space trials with a loss: what a model refits on."""
        out = []
        for trial in self.history:
            loss = self.loss(trial)
            if loss is not None and self.in_space(trial):
                out.append((trial, loss))
        return out

    def next_seed(self) -> int:
        return self._rng.randrange(2**31 - 1)


def resumed_seed(seed: int | None, n_trials: int) -> int | None:
    """The seed to set an algorithm up with when ``n_trials`` trials exist already (a resumed
    study, an algorithm swapped in mid-study). The seed alone would replay the draws those
    trials came from, so the same configs would run again; a stream derived from both keeps
    a resume reproducible without repeating them. A fresh study keeps its seed as given."""
    if seed is None or n_trials == 0:
        return seed
    # A str seeds through SHA-512: the same stream in every process, whatever PYTHONHASHSEED.
    return _random.Random(f"hpwidgets-resume:{seed}:{n_trials}").randrange(2**31 - 1)
