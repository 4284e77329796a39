"""What our TPE and GP share: the unit-cube encoding, the start-up design, the in-space scored
history, and the asks still pending (parallel trials). Subclasses only say how to suggest."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..space import SearchSpace
from ..trial import FrozenTrial
from ._encode import EncodedHistory, StartupDesign, UnitEncoder, drop_told
from .base import Algorithm

_MAX_PENDING = 64  # stale asks that are never told must not grow without bound


class ModelBased(Algorithm):
    """Start-up points from a low-discrepancy design, then ``_suggest`` on the encoded history."""

    n_startup_trials: int

    def __init__(self) -> None:
        super().__init__()
        self._encoder: UnitEncoder | None = None
        self._scored: EncodedHistory | None = None
        self._pending: list[dict[str, Any]] = []

    def _on_setup(self) -> None:
        assert self.space is not None
        self._encoder = UnitEncoder(self.space)
        self._scored = EncodedHistory(self._encoder)
        self._pending = []
        self._design = StartupDesign(self.next_seed())

    def set_space(self, space: SearchSpace) -> None:
        """Re-encode the in-space part of the history; the model is rebuilt on every ask."""
        super().set_space(space)
        self._encoder = UnitEncoder(space)
        self._scored = EncodedHistory(self._encoder)
        for trial, loss in self.scored_history():
            self._scored.add(trial, loss, self.target)
        self._pending = [p for p in self._pending if all(space[k].contains(v) for k, v in p.items())]

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

    def tell(self, trial: FrozenTrial) -> None:
        super().tell(trial)
        self._pending = drop_told(self._pending, trial.params)
        loss = self.loss(trial)
        if self._scored is not None and loss is not None and self.in_space(trial):
            self._scored.add(trial, loss, self.target)

    def _startup_count(self) -> int:
        """Asks still pending count towards the start-up design (at most ``parallel - 1`` of
        them, so stale asks never told can't shrink it): a parallel run then spends as many
        asks on design points as a sequential one, not ``parallel - 1`` more."""
        early = min(len(self._pending), max(self.parallel - 1, 0))
        return max(self.n_startup_trials - early, 1)

    def _suggest(self, rng: np.random.Generator) -> np.ndarray:
        """One encoded row to try next, from the scored history and the pending asks."""
        raise NotImplementedError
