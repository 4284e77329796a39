"""What our TPE and GP share: the unit-cube encoding, the start-up design, the in-space scored
history, the asks still pending (parallel trials) and, under a pruner, the running trials'
latest reports. Subclasses only say how to suggest."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..space import SearchSpace
from ..trial import FrozenTrial
from ._encode import EncodedHistory, StartupDesign, UnitEncoder, drop_told
from .base import Algorithm

_MAX_PENDING = 64  # stale asks that are never told must not grow without bound


def _fits(space: SearchSpace, params: dict[str, Any]) -> bool:
    """Whether a pending ask still counts in an edited space: it holds a value inside every
    searched dimension (a removed dimension's value is ignored, an added one drops the ask)."""
    return all(name in params and dim.contains(params[name]) for name, dim in space.searched().items())


def is_finite(loss: float) -> bool:
    """False for NaN, +-inf and an int beyond a float's range (10**400), which ``math.isfinite``
    would raise on."""
    try:
        return math.isfinite(loss)
    except OverflowError:
        return False


class ModelBased(Algorithm):
    """Start-up points from a low-discrepancy design, then ``_suggest`` on the encoded history.

    A loss that is not finite (NaN, +inf or -inf, told through ask/tell; a study never passes
    one) is a diverged run and ranks last, as the pruners and Hyperband rank it: it is kept
    as +inf, which TPE sorts into its bad set and the GP fits as the worst finite loss.
    FAIL trials, which have no loss at all, are left out."""

    n_startup_trials: int

    def __init__(self) -> None:
        super().__init__()
        self._encoder: UnitEncoder | None = None
        self._scored: EncodedHistory | None = None
        self._pending: list[dict[str, Any]] = []
        self._running: dict[int, tuple[FrozenTrial, float]] = {}  # number -> (latest report, loss)

    def _on_setup(self) -> None:
        assert self.space is not None
        self._refuse_nothing_to_model(self.space)
        self._encoder = UnitEncoder(self.space)
        self._scored = EncodedHistory(self._encoder)
        self._pending, self._running = [], {}
        self._design = StartupDesign(self.next_seed())

    def set_space(self, space: SearchSpace) -> None:
        """Re-encode the in-space part of the history; the model is rebuilt on every ask."""
        self._refuse_nothing_to_model(space)
        super().set_space(space)
        self._encoder = UnitEncoder(space)
        self._scored = EncodedHistory(self._encoder)
        for trial, loss in self.scored_history():
            self._scored.add(trial, loss, self.target)
        self._pending = [p for p in self._pending if _fits(space, p)]
        self._running = {n: seen for n, seen in self._running.items() if self.in_space(seen[0])}

    def _refuse_nothing_to_model(self, space: SearchSpace) -> None:
        """A space of the budget alone leaves the model no coordinate to fit (and numpy an empty
        encoding to choke on): refused by name, as hyperband refuses it."""
        if not space.searched():
            raise ValueError(f"{self.name} needs at least one searched dimension besides the budget, but the "
                             f"space holds only {list(space)!r}")

    def ask(self) -> dict[str, Any]:
        enc = self._encoder
        assert enc is not None and self._scored is not None, "setup() must be called before ask()"
        rng = np.random.default_rng(self.next_seed())
        if len(self._scored) < self._startup_count():
            row = enc.from_cube(self._design.next(enc.n_dims))[0]
        else:
            row = self._suggest(rng)
        params = enc.decode(row)
        self._pending = [*self._pending[-_MAX_PENDING + 1:], params]
        return params

    def add_pending(self, params: dict[str, Any]) -> None:
        """Count ``params`` as an ask still running that was drawn elsewhere (Hyperband builds a
        fresh model per draw: the configs its earlier draws put on workers are pending here)."""
        self._pending = [*self._pending[-_MAX_PENDING + 1:], dict(params)]

    def withdraw(self, params: dict[str, Any]) -> None:
        self._pending = drop_told(self._pending, params)

    def observe(self, trial: FrozenTrial) -> None:
        """Under a pruner, a running trial has survived its rungs so far and its latest report is
        what it would be told with if stopped now: the model takes it as data, and no longer a
        fantasy. With 4 workers and ASHA (``benchmarks/pruning_synthetic.py``) the model saw
        mostly trials stopped at the first rung, while the promising ones ran unseen."""
        loss = self.loss(trial)
        if not self.pruning or loss is None or not self.in_space(trial):
            return
        self._running[trial.number] = (trial, loss)
        while len(self._running) > _MAX_PENDING:  # a trial never told must not grow it forever
            del self._running[next(iter(self._running))]

    def tell(self, trial: FrozenTrial) -> None:
        super().tell(trial)
        self._running.pop(trial.number, None)
        self._pending = drop_told(self._pending, trial.params)
        loss = self.loss(trial)
        if self._scored is not None and loss is not None and self.in_space(trial):
            self._scored.add(trial, loss, self.target)

    def loss(self, trial: FrozenTrial) -> float | None:
        """The base loss, with a non-finite one (a diverged run) as +inf: see the class doc."""
        loss = super().loss(trial)
        return loss if loss is None or is_finite(loss) else math.inf

    def _startup_count(self) -> int:
        """Asks still pending count towards the start-up design (at most ``parallel - 1`` of
        them, so stale asks never told can't shrink it): a parallel run then spends as many
        asks on design points as a sequential one, not ``parallel - 1`` more."""
        early = min(len(self._pending), max(self.parallel - 1, 0))
        return max(self.n_startup_trials - early, 1)

    def _model_history(self) -> EncodedHistory:
        """What the model fits: the told trials and the running trials' latest reports."""
        assert self._scored is not None
        return self._scored.extended(list(self._running.values()), self.target) if self._running else self._scored

    def _unreported(self) -> list[dict[str, Any]]:
        """The pending asks the model has no report of yet: the ones a fantasy stands in for."""
        pending = self._pending
        for trial, _ in self._running.values():
            pending = drop_told(pending, trial.params)
        return pending

    def _suggest(self, rng: np.random.Generator) -> np.ndarray:
        """One encoded row to try next, from ``_model_history()`` and ``_unreported()``."""
        raise NotImplementedError
