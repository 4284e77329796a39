"""The GP explainer: what a Gaussian process believes about the objective, and where EI points.

A small exact GP of its own (numpy only), so the picture does not depend on which GP backend the
study used: a Matérn-5/2 kernel on unit coordinates with one length scale, chosen by the marginal
likelihood from a fixed grid; the signal variance is profiled out in closed form. Losses are
fenced (a diverged run's loss pulled in towards the rest, as the GP sampler does) and standardised
first, so the mean is drawn in fenced units there. Beyond ``FIT_LIMIT`` trials the GP is fitted on
the best half of that many and the most recent rest, and only those are drawn (``total`` in the
results counts them all): an exact fit costs O(n³) per length scale, and a live explainer refits
after trials; the bytes per update stay bounded too. The acquisition
is expected improvement (EI) on the loss. A choice sits at its ``to_unit`` position (its index's
cell centre): good enough to draw, though it orders values that have no order.

``gp_slice`` cuts the posterior along one parameter with the others held at the incumbent (the
best trial so far); ``gp_map`` does the same over two parameters. Both mark where EI is largest:
the point a GP-EI search would try next within that cut.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.special import ndtr

from ..algorithms.gp_native import fence_outliers
from ..space import SearchSpace
from ..trial import FrozenTrial
from .common import GRID_POINTS, Scored, dimension_grid, incumbent, scale_of, scored_trials, unit_rows

LENGTHSCALES = tuple(np.geomspace(0.05, 2.0, 16))  # in unit coordinates: from wiggly to nearly flat
NOISE = 1e-6  # relative to the signal: the objectives here are (nearly) deterministic
_SQRT5 = math.sqrt(5.0)
FIT_LIMIT = 300  # trials in the fit: 16 exact fits of 300 take milliseconds, of 1,000 about 2 s
_LARGEST = float(np.finfo(float).max)


def matern52(A: np.ndarray, B: np.ndarray, lengthscale: float) -> np.ndarray:
    """Matérn-5/2 correlations between the rows of A and B (1 at distance 0)."""
    d2 = np.sum((A[:, None, :] - B[None, :, :]) ** 2, axis=-1)
    r = np.sqrt(np.maximum(d2, 0.0)) / lengthscale
    return (1.0 + _SQRT5 * r + (5.0 / 3.0) * r**2) * np.exp(-_SQRT5 * r)


def _factor(X: np.ndarray, lengthscale: float, noise: float) -> Any:
    C = matern52(X, X, lengthscale)
    C[np.diag_indices_from(C)] += noise
    return cho_factor(C, lower=True)


def log_marginal_likelihood(X: np.ndarray, y: np.ndarray, lengthscale: float, noise: float = NOISE) -> float:
    """log p(y | X) with the signal variance at its maximum-likelihood value y'C⁻¹y / n."""
    factor = _factor(X, lengthscale, noise)
    n = len(y)
    variance = max(float(y @ cho_solve(factor, y)) / n, 1e-300)
    log_det = 2.0 * float(np.sum(np.log(np.diag(factor[0])))) + n * math.log(variance)
    return -0.5 * (n + log_det + n * math.log(2 * math.pi))


def fit_lengthscale(X: np.ndarray, y: np.ndarray, grid: Sequence[float] = LENGTHSCALES) -> float:
    """The grid length scale with the largest marginal likelihood (the first one on ties)."""
    best, best_ll = float(grid[0]), -math.inf
    for ls in grid:
        try:
            ll = log_marginal_likelihood(X, y, ls)
        except np.linalg.LinAlgError:  # a long scale on near-duplicate points: too flat to factor
            continue
        if ll > best_ll:
            best, best_ll = float(ls), ll
    return best


def posterior(X: np.ndarray, y: np.ndarray, Xs: np.ndarray, lengthscale: float,
              noise: float = NOISE) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation at ``Xs`` of the GP conditioned on (X, y).

    The signal variance is y'C⁻¹y / n (its maximum-likelihood value), so at a training point the
    mean is the observation and the deviation ~0 when ``noise`` is small.
    """
    factor = _factor(X, lengthscale, noise)
    alpha = cho_solve(factor, y)
    variance = max(float(y @ alpha) / len(y), 1e-12)
    Ks = matern52(Xs, X, lengthscale)
    mean = Ks @ alpha
    reduction = np.sum(Ks * cho_solve(factor, Ks.T).T, axis=1)
    return mean, np.sqrt(variance * np.clip(1.0 - reduction, 0.0, None))


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """E[max(best - f, 0)] for f ~ N(mean, std²): how much a point may beat the best loss."""
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    gain = best - mean
    safe = np.where(std > 0, std, 1.0)
    z = gain / safe
    ei = gain * ndtr(z) + safe * np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    return np.where(std > 0, np.maximum(ei, 0.0), np.maximum(gain, 0.0))


class _Model(NamedTuple):
    """The GP fitted to a study's history, in standardised loss units."""

    names: tuple[str, ...]
    X: np.ndarray
    y: np.ndarray
    lengthscale: float
    mu: float
    sd: float
    maximize: bool
    scored: tuple[Scored, ...]  # the trials fitted (and drawn)
    total: int  # trials with a value: more than ``scored`` beyond ``FIT_LIMIT``
    incumbent: Scored


def fit_subset(scored: Sequence[Scored], limit: int = FIT_LIMIT) -> list[Scored]:
    """The trials the GP is fitted on, by number: all of them up to ``limit``; beyond, the best half
    of ``limit`` (where EI looks) and the most recent rest (where the search is now)."""
    if len(scored) <= limit:
        return list(scored)
    best = sorted(scored, key=lambda s: (s.loss, s.number))[:limit // 2]
    taken = {s.number for s in best}
    recent = [s for s in reversed(scored) if s.number not in taken][:limit - len(best)]
    return sorted(best + recent, key=lambda s: s.number)


def standardised(losses: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(y, mu, sd): the fenced losses as ``mu + sd * y`` with y of mean 0 and deviation 1.

    Moments are taken on the losses divided by the largest magnitude, so 1e200 cannot overflow
    the variance (one diverged run made every drawn number NaN)."""
    fenced = fence_outliers(losses)
    top = float(np.max(np.abs(fenced))) or 1.0
    unit = fenced / top
    mu, sd = float(unit.mean()), float(unit.std()) or 1.0
    return (unit - mu) / sd, mu * top, sd * top


def _fit(trials: Iterable[FrozenTrial], space: SearchSpace, maximize: bool, target: str | None) -> _Model:
    scored = scored_trials(trials, space, maximize, target)
    best = incumbent(scored)  # raises when there is nothing to fit
    fit = fit_subset(scored)
    dims = space.searched()
    X = unit_rows(dims, [s.params for s in fit])
    y, mu, sd = standardised(np.array([s.loss for s in fit]))
    return _Model(tuple(dims), X, y, fit_lengthscale(X, y), mu, sd, maximize, tuple(fit), len(scored), best)


def _in_units(standard: np.ndarray, scale: float, shift: float = 0.0) -> np.ndarray:
    """``standard * scale + shift``, clipped at the largest float (losses near 1e308): JSON has no inf."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.clip(standard * scale + shift, -_LARGEST, _LARGEST)


def _predict(model: _Model, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, std) in the user's value units and EI in loss units, at unit-coordinate rows."""
    mean, std = posterior(model.X, model.y, rows, model.lengthscale)
    ei = _in_units(expected_improvement(mean, std, float(model.y.min())), model.sd)
    loss_mean = _in_units(mean, model.sd, model.mu)
    return (-loss_mean if model.maximize else loss_mean), _in_units(std, model.sd), ei


class GPSlice(NamedTuple):
    """The posterior along one parameter, the others at the incumbent's values."""

    param: str
    scale: str  # "linear", "log" or "category"
    xs: tuple[Any, ...]  # parameter values along the cut
    mean: tuple[float, ...]  # posterior mean of the value
    std: tuple[float, ...]  # posterior standard deviation of the value
    acquisition: tuple[float, ...]  # expected improvement of the loss
    observed: tuple[tuple[Any, float, int], ...]  # (parameter value, value, trial number) of every trial
    next_x: Any  # where EI is largest along the cut
    incumbent: dict[str, Any]
    lengthscale: float
    total: int  # trials with a value; ``observed`` holds those fitted, fewer beyond ``FIT_LIMIT``


def gp_slice(trials: Iterable[FrozenTrial], space: SearchSpace, param: str, maximize: bool = False,
             target: str | None = None, n: int = GRID_POINTS) -> GPSlice:
    """Posterior mean ± std and EI along ``param``; ValueError before the first scored trial."""
    model = _fit(trials, space, maximize, target)
    dim = space.searched()[param]
    values, unit = dimension_grid(dim, n)
    rows = np.repeat(unit_rows(space.searched(), [model.incumbent.params]), len(values), axis=0)
    rows[:, model.names.index(param)] = unit
    mean, std, ei = _predict(model, rows)
    observed = tuple((s.params[param], s.value, s.number) for s in model.scored)
    return GPSlice(param, scale_of(dim), tuple(values), tuple(mean.tolist()), tuple(std.tolist()),
                   tuple(ei.tolist()), observed, values[int(np.argmax(ei))],
                   dict(model.incumbent.params), model.lengthscale, model.total)


class GPMap(NamedTuple):
    """The posterior over two parameters (x across, y up), the others at the incumbent's values."""

    params: tuple[str, str]
    scales: tuple[str, str]
    xs: tuple[Any, ...]
    ys: tuple[Any, ...]
    mean: tuple[tuple[float, ...], ...]  # [row for each y][column for each x]
    std: tuple[tuple[float, ...], ...]
    acquisition: tuple[tuple[float, ...], ...]
    observed: tuple[tuple[Any, Any, float, int], ...]  # (x, y, value, trial number)
    next_xy: tuple[Any, Any]
    incumbent: dict[str, Any]
    total: int  # trials with a value; ``observed`` holds those fitted


def gp_map(trials: Iterable[FrozenTrial], space: SearchSpace, params: tuple[str, str], maximize: bool = False,
           target: str | None = None, n: int = 40) -> GPMap:
    """Posterior mean, std and EI on an n × n grid of two parameters."""
    a, b = params
    if a == b:
        raise ValueError(f"a map needs two different parameters, but got {a!r} twice")
    model = _fit(trials, space, maximize, target)
    dims = space.searched()
    (xv, xu), (yv, yu) = dimension_grid(dims[a], n), dimension_grid(dims[b], n)
    rows = np.repeat(unit_rows(dims, [model.incumbent.params]), len(xv) * len(yv), axis=0)
    gy, gx = np.meshgrid(yu, xu, indexing="ij")  # row-major: y outer, x inner
    rows[:, model.names.index(a)], rows[:, model.names.index(b)] = gx.ravel(), gy.ravel()
    mean, std, ei = _predict(model, rows)
    shape = (len(yv), len(xv))
    k = int(np.argmax(ei))

    def grid(values: np.ndarray) -> tuple[tuple[float, ...], ...]:
        return tuple(tuple(row) for row in values.reshape(shape).tolist())

    observed = tuple((s.params[a], s.params[b], s.value, s.number) for s in model.scored)
    return GPMap((a, b), (scale_of(dims[a]), scale_of(dims[b])), tuple(xv), tuple(yv), grid(mean), grid(std),
                 grid(ei), observed, (xv[k % len(xv)], yv[k // len(xv)]), dict(model.incumbent.params),
                 model.total)
