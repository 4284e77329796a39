"""Trials stopped early, in the GP: fidelity as one more input, suggestions at the full one.

Under a pruner most trials end at a low rung, and the loss they leave is their last report,
made after fewer steps (epochs) than a finished trial's: biased (a learning curve still
falling) and noisier (less training, fewer epochs averaged). Fitted as if finished, those
reports pull the model towards what looks good early. Here instead:

* each row gets a fidelity coordinate ``log1p(step) / log1p(full)`` in [0, 1] (finished
  trials 1), with its own length scale, so the GP learns how values move with the steps;
* a stopped row's noise variance is ``(1 + full) / (1 + step)`` times a finished row's
  (a report after one step of 27 is the noisier one);
* log-EI is asked at fidelity 1, against the best value at fidelity 1.

``full`` is the largest last step among finished trials (or among all, before any finished).
Without a row stopped below it, ``fidelity_of`` returns None and the GP is the plain one.

Opt-in (``NativeGP(fidelity=True)``), because it is a trade. With ASHA on the synthetic
multi-fidelity problem (``benchmarks/pruning_synthetic.py``; its early reports are noisy but not
biased), against the default GP that fits each stop as a finished value, paired by seed:

* seeds 100-169 (where it was designed): Hartmann6 better in 47 of 70 runs (Wilcoxon
  p < 0.001; upper quartile of the regret 0.92 -> 0.43), Branin in 39 (p = 0.34), the mixed
  5-D problem in 30 (p = 0.26);
* seeds 0-49 (held out): Hartmann6 better in 35 of 50 (p = 0.003; upper quartile 1.53 -> 0.72),
  Branin worse in 36 (p = 0.005; median 0.0023 -> 0.0054), mixed 5-D worse in 30 (p = 0.06;
  median 0.058 -> 0.15).

Either half alone (the fidelity input; the per-row noise, also with that ratio squared) did
worse than the default on some problem in a 30- or 40-seed block of seeds 100-169, and so did
choosing between the two models per ask by their fitted posterior density.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Fidelity:
    """Per row: the fidelity coordinate in [0, 1] and the noise-variance multiplier."""

    column: np.ndarray
    noise_scale: np.ndarray

    def augment(self, X: np.ndarray, is_cat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``X`` with the fidelity column appended, and the matching ``is_cat``."""
        return np.hstack([X, self.column[:, None]]), np.append(is_cat, False)


def fidelity_of(steps: np.ndarray, stopped: np.ndarray) -> Fidelity | None:
    """The fidelities of rows whose last reported steps are ``steps`` (NaN: no reports), or
    None when no row was ``stopped`` early below the full step."""
    known = ~np.isnan(steps)
    finished = steps[known & ~stopped]
    reference = finished if len(finished) else steps[known]
    if not len(reference):
        return None
    full = float(reference.max())
    low = stopped & known & (steps < full)
    if full <= 0 or not low.any():
        return None
    step = np.clip(np.nan_to_num(steps, nan=full), 0.0, full)
    column = np.where(low, np.log1p(step) / np.log1p(full), 1.0)
    return Fidelity(column, np.where(low, (1.0 + full) / (1.0 + step), 1.0))


class AtFullFidelity:
    """A posterior over (x, fidelity) seen as one over x at fidelity 1 (``PosteriorLike``)."""

    def __init__(self, post: Any, full_rows: np.ndarray) -> None:
        self.post, self.full_rows = post, full_rows

    @staticmethod
    def _at_full(Xc: np.ndarray) -> np.ndarray:
        return np.hstack([Xc, np.ones((len(Xc), 1))])

    def predict(self, Xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.post.predict(self._at_full(Xc))

    def log_ei(self, Xc: np.ndarray, best: float) -> np.ndarray:
        return self.post.log_ei(self._at_full(Xc), best)

    def log_ei_and_grad(self, Xc: np.ndarray, best: float) -> tuple[np.ndarray, np.ndarray]:
        value, grad = self.post.log_ei_and_grad(self._at_full(Xc), best)
        return value, grad[:, :-1]

    def with_fantasies(self, Xp: np.ndarray) -> AtFullFidelity:
        """Pending asks run to the full fidelity unless stopped: fantasised there."""
        if len(Xp) == 0:
            return self
        post = self.post.with_fantasies(self._at_full(Xp))
        return AtFullFidelity(post, np.concatenate([self.full_rows, np.ones(len(Xp), dtype=bool)]))

    def incumbent(self) -> float:
        """The best value at fidelity 1 (fantasies included); an early report is not a result."""
        y = self.post.y
        at_full = y[self.full_rows]
        return float(at_full.min() if len(at_full) else y.min())
