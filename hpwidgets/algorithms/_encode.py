"""A numeric view of a search space shared by the native TPE and GP.

Numeric dimensions live in the unit interval through each dimension's own ``to_unit``
(so log dimensions are already log-scaled there); a choice is stored as its index.
``snap`` maps unit coordinates onto the values ``from_unit`` would return, vectorised,
so a model can score exactly the points that will be suggested.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..space import Choice, Dimension, Float, Int, SearchSpace
from ..trial import FrozenTrial, TrialState

# Above this many levels a discrete dimension is searched like a continuous one.
MAX_GRID = 4096


def _log_edges(dim: Int) -> tuple[float, float]:
    return math.log(max(dim.low - 0.5, 0.5)), math.log(dim.high + 0.5)


def _grid_values(dim: Dimension) -> np.ndarray | None:
    """Every value a discrete numeric dimension can take, sorted; None for continuous ones."""
    if isinstance(dim, Int):
        n = (dim.high - dim.low) // dim.step + 1
        return None if n > MAX_GRID else dim.low + dim.step * np.arange(n, dtype=float)
    if isinstance(dim, Float) and dim.q is not None:
        k_lo, k_hi = math.ceil(dim.low / dim.q), math.floor(dim.high / dim.q)
        if k_hi - k_lo + 1 > MAX_GRID:
            return None
        values = np.arange(k_lo, k_hi + 1, dtype=float) * dim.q
        return np.unique(np.clip(np.concatenate([[dim.low], values, [dim.high]]), dim.low, dim.high))
    return None


def values_to_unit(dim: Dimension, v: np.ndarray) -> np.ndarray:
    """``dim.to_unit`` on an array of numeric values."""
    if isinstance(dim, Int):
        v = np.clip(v, dim.low, dim.high)
        if dim.log:
            lo, hi = _log_edges(dim)
            return (np.log(v) - lo) / (hi - lo)
        lo, hi = dim.low - 0.5 * dim.step, dim.high + 0.5 * dim.step
        return (v - lo) / (hi - lo)
    assert isinstance(dim, Float)
    v = np.clip(v, dim.low, dim.high)
    if dim.log:
        lo, hi = math.log(dim.low), math.log(dim.high)
        return (np.log(v) - lo) / (hi - lo)
    return (v - dim.low) / (dim.high - dim.low)


def unit_to_values(dim: Dimension, u: np.ndarray) -> np.ndarray:
    """``dim.from_unit`` on an array (the same arithmetic, so the same rounding)."""
    u = np.clip(u, 0.0, 1.0)
    if isinstance(dim, Int):
        if dim.log:
            lo, hi = _log_edges(dim)
            x = np.exp(lo + u * (hi - lo))
        else:
            x = dim.low - 0.5 * dim.step + u * (dim.high - dim.low + dim.step)
        k = np.round((x - dim.low) / dim.step)
        return np.clip(dim.low + k * dim.step, dim.low, dim.high)
    assert isinstance(dim, Float)
    if dim.log:
        x = np.exp(math.log(dim.low) + u * (math.log(dim.high) - math.log(dim.low)))
    else:
        x = dim.low + u * (dim.high - dim.low)
    x = np.clip(x, dim.low, dim.high)
    if dim.q is not None:
        x = np.clip(np.round(x / dim.q) * dim.q, dim.low, dim.high)
    return x


class UnitEncoder:
    """Params <-> rows of floats: unit coordinates for numbers, indices for choices."""

    def __init__(self, space: SearchSpace) -> None:
        self.dims: dict[str, Dimension] = space.searched()
        self.names = list(self.dims)
        dims = list(self.dims.values())
        self.is_cat = np.array([isinstance(d, Choice) for d in dims], dtype=bool)
        self.n_choices = np.array([len(d.values) if isinstance(d, Choice) else 0 for d in dims])
        self.is_discrete = np.array([not isinstance(d, Float) or d.q is not None for d in dims]) & ~self.is_cat
        # Unit positions of every level of each discrete numeric dimension (None: too many).
        self.grids: list[np.ndarray | None] = []
        for d in dims:
            values = None if isinstance(d, Choice) else _grid_values(d)
            self.grids.append(None if values is None else values_to_unit(d, values))
        # Numeric dimensions without a grid to snap to (floats, and integers with too many levels).
        self.is_continuous = np.array([g is None for g in self.grids], dtype=bool) & ~self.is_cat

    @property
    def n_dims(self) -> int:
        return len(self.names)

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        row = np.empty(self.n_dims)
        for j, (name, dim) in enumerate(self.dims.items()):
            value = params[name]
            row[j] = dim.index(value) if isinstance(dim, Choice) else dim.to_unit(value)
        return row

    def encode_many(self, params: list[Mapping[str, Any]]) -> np.ndarray:
        if not params:
            return np.empty((0, self.n_dims))
        return np.stack([self.encode(p) for p in params])

    def decode(self, row: np.ndarray) -> dict[str, Any]:
        """Plain Python values (``from_unit`` snaps and returns ints where it should)."""
        out: dict[str, Any] = {}
        for j, (name, dim) in enumerate(self.dims.items()):
            if isinstance(dim, Choice):
                out[name] = dim.values[int(np.clip(round(float(row[j])), 0, len(dim.values) - 1))]
            else:
                out[name] = dim.from_unit(float(row[j]))
        return out

    def snap(self, X: np.ndarray) -> np.ndarray:
        """Move unit coordinates onto suggestible points (discrete grids, integer indices)."""
        X = np.array(X, dtype=float, copy=True)
        for j, dim in enumerate(self.dims.values()):
            if self.is_cat[j]:
                X[:, j] = np.clip(np.round(X[:, j]), 0, self.n_choices[j] - 1)
            elif self.is_discrete[j]:
                X[:, j] = values_to_unit(dim, unit_to_values(dim, X[:, j]))
            else:
                X[:, j] = np.clip(X[:, j], 0.0, 1.0)
        return X

    def from_cube(self, U: np.ndarray) -> np.ndarray:
        """Points of the unit cube -> snapped rows (a choice takes its share of [0, 1))."""
        U = np.array(U, dtype=float, copy=True)
        U[:, self.is_cat] = np.floor(U[:, self.is_cat] * self.n_choices[self.is_cat])
        return self.snap(U)

    def random(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` snapped points, uniform in unit space (log dims uniform in log space)."""
        return self.from_cube(rng.random((n, self.n_dims)))


class StartupDesign:
    """Scrambled Sobol points for the first trials: they cover the cube more evenly than
    independent draws, which matters most when only ~10 points are spent exploring."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._engine: Any = None
        self._dims = -1

    def next(self, n_dims: int) -> np.ndarray:
        from scipy.stats import qmc

        if self._engine is None or self._dims != n_dims:
            self._engine, self._dims = qmc.Sobol(n_dims, scramble=True, seed=self._seed), n_dims
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Sobol's balance warning for counts that are no power of two
            return self._engine.random(1)


def drop_told(pending: list[dict[str, Any]], params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Pending asks without the first one a finished trial carries (the budget may be added)."""
    for i, p in enumerate(pending):
        if all(k in params and params[k] == v for k, v in p.items()):
            return pending[:i] + pending[i + 1:]
    return pending


class EncodedHistory:
    """The scored, in-space trials as arrays, encoded once when told instead of on every ask
    (at a few hundred trials re-encoding cost more than the model itself)."""

    def __init__(self, encoder: UnitEncoder) -> None:
        self.encoder = encoder
        self._rows: list[np.ndarray] = []
        self._losses: list[float] = []
        self._numbers: list[int] = []
        self._steps: list[tuple[float, bool]] = []

    def add(self, trial: FrozenTrial, loss: float, target: str | None = None) -> None:
        self._rows.append(self.encoder.encode(trial.params))
        self._losses.append(loss)
        self._numbers.append(trial.number)
        curve = trial.reported(target)  # a RUNNING trial, like a PRUNED one, stopped short of the end
        self._steps.append((float(curve[-1][0]) if curve else math.nan, trial.state is not TrialState.COMPLETE))

    def extended(self, scored: list[tuple[FrozenTrial, float]], target: str | None = None) -> EncodedHistory:
        """A copy with ``scored`` added; this history is left as it was."""
        copy = EncodedHistory(self.encoder)
        copy._rows, copy._losses = list(self._rows), list(self._losses)
        copy._numbers, copy._steps = list(self._numbers), list(self._steps)
        for trial, loss in scored:
            copy.add(trial, loss, target)
        return copy

    def __len__(self) -> int:
        return len(self._losses)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, losses, trial numbers), in the order the trials were told."""
        X = np.array(self._rows).reshape(len(self._rows), self.encoder.n_dims)
        return X, np.array(self._losses, dtype=float), np.array(self._numbers)

    def last_steps(self) -> tuple[np.ndarray, np.ndarray]:
        """Each row's last reported step (NaN without reports) and whether it was stopped early:
        how far a pruned trial's stand-in loss is from a finished one (``_gp_fidelity``)."""
        steps = np.array([s for s, _ in self._steps], dtype=float)
        return steps, np.array([p for _, p in self._steps], dtype=bool)
