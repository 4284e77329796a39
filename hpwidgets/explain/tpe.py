"""The TPE explainer: the good and bad densities l(x) and g(x) per parameter, and their ratio.

TPE sorts the history by loss and splits it: the best few trials are "good", the rest "bad".
Each group becomes a Parzen density per parameter, l(x) from the good and g(x) from the bad;
candidates are drawn from l and the one with the largest l(x) / g(x) is tried next (the native
TPE damps g in that score, l(x) / g(x) ** 0.8, and so does its picture here).

The densities here follow hyperopt's adaptive Parzen estimator, in unit coordinates (where
hyperopt's own prior is centred at 0.5 with width 1): each observation gets a Gaussian as wide as
the larger gap to its neighbours, plus one prior component of weight ``prior_weight``; a choice
gets its counts plus ``prior_weight``. The native TPE weighs its good trials by rank, the best
heaviest (``worst_good_weight``), and so does its picture here. (hyperopt also fades trials beyond
the 25 most recent; the picture weighs them alike.) The split is hyperopt's
``ceil(gamma * sqrt(n))`` ("sqrt") or the native TPE's ``ceil(gamma * n)`` capped ("linear").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy.special import ndtr

from ..algorithms.tpe_native import rank_weights
from ..space import Choice, Dimension, SearchSpace
from ..trial import FrozenTrial
from .common import GRID_POINTS, Scored, dimension_grid, scale_of, scored_trials

PRIOR_MU, PRIOR_SIGMA = 0.5, 1.0  # the prior component, in unit coordinates
RULES = ("sqrt", "linear")


def n_good(n: int, gamma: float, rule: str = "sqrt", cap: int = 25) -> int:
    """How many of ``n`` trials are "good": hyperopt's ceil(gamma √n), or ceil(gamma n); at most ``cap``."""
    if rule not in RULES:
        raise ValueError(f"`rule` must be one of {list(RULES)}, but got rule={rule!r}")
    if not 0 < gamma <= 1:
        raise ValueError(f"`0 < gamma <= 1` must hold, but got gamma={gamma!r}")
    raw = gamma * math.sqrt(n) if rule == "sqrt" else gamma * n
    return min(math.ceil(raw), cap, n)


def split(losses: Sequence[float], gamma: float, rule: str = "sqrt", cap: int = 25) -> tuple[list[int], list[int]]:
    """Positions of the good and the bad trials: the ``n_good`` smallest losses (stable on ties)."""
    order = sorted(range(len(losses)), key=lambda i: losses[i])
    k = n_good(len(losses), gamma, rule, cap)
    return sorted(order[:k]), sorted(order[k:])


def adaptive_parzen(mus: Sequence[float], prior_weight: float = 1.0,
                    weights: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights, centres, widths) of the mixture for observations ``mus`` in [0, 1], sorted by centre;
    ``weights``: the observations' own (default 1 each), normalised with the prior's.

    hyperopt's rule: the prior joins the sorted observations; each observation is as wide as the
    larger gap to its neighbours (an end one: its one gap), clipped to [1 / min(100, 1 + m), 1]
    for m components; a lone observation is half the prior's width; the prior keeps width 1.
    """
    order = np.argsort(np.asarray(mus, dtype=float), kind="stable")
    mus = np.asarray(mus, dtype=float)[order]
    own = np.ones(len(mus)) if weights is None else np.asarray(weights, dtype=float)[order]
    at = int(np.searchsorted(mus, PRIOR_MU))
    centres = np.insert(mus, at, PRIOR_MU)
    if len(mus) == 1:
        widths = np.full(2, PRIOR_SIGMA / 2)
    elif len(mus) >= 2:
        gaps = np.diff(centres)
        widths = np.concatenate([gaps[:1], np.maximum(gaps[:-1], gaps[1:]), gaps[-1:]])
        widths = np.clip(widths, PRIOR_SIGMA / min(100.0, 1.0 + len(centres)), PRIOR_SIGMA)
    else:
        widths = np.ones(1)
    widths[at] = PRIOR_SIGMA
    mixture = np.insert(own, at, prior_weight)
    return mixture / mixture.sum(), centres, widths


def parzen_pdf(xs: np.ndarray, mus: Sequence[float], prior_weight: float = 1.0,
               weights: Sequence[float] | None = None) -> np.ndarray:
    """The mixture's density at ``xs``, each Gaussian truncated to [0, 1] (so it integrates to 1)."""
    weights, centres, widths = adaptive_parzen(mus, prior_weight, weights)
    xs = np.asarray(xs, dtype=float)[:, None]
    mass = ndtr((1 - centres) / widths) - ndtr(-centres / widths)
    z = (xs - centres) / widths
    pdf = np.exp(-0.5 * z**2) / (widths * math.sqrt(2 * math.pi) * mass)
    return pdf @ weights


def categorical_pmf(indices: Sequence[int], k: int, prior_weight: float = 1.0,
                    weights: Sequence[float] | None = None) -> np.ndarray:
    """Probabilities of ``k`` choices: each one's (weighted) count plus ``prior_weight``, normalised."""
    counts = np.bincount(np.asarray(indices, dtype=int), weights=weights, minlength=k).astype(float) + prior_weight
    return counts / counts.sum()


class TPESplit(NamedTuple):
    gamma: float
    rule: str
    threshold: float  # the worst good value: values up to (down to, when maximising) here are "good"
    good: tuple[int, ...]  # trial numbers
    bad: tuple[int, ...]
    maximize: bool = False


class TPEDensity(NamedTuple):
    """l(x), g(x) and l/g along one parameter, with the good and bad observations."""

    param: str
    scale: str  # "linear", "log" or "category"
    xs: tuple[Any, ...]
    good_pdf: tuple[float, ...]
    bad_pdf: tuple[float, ...]
    ratio: tuple[float, ...]
    good_x: tuple[Any, ...]
    bad_x: tuple[Any, ...]
    next_x: Any  # where the ratio is largest
    power: float = 1.0  # the ratio is l / g ** power


def ratio_label(power: float) -> str:
    """How the ratio a TPE maximises reads: l(x) / g(x), or with g damped, l(x) / g(x)^0.8."""
    return "l(x) / g(x)" if power == 1.0 else f"l(x) / g(x)^{power:g}"


def _density(name: str, dim: Dimension, good: Sequence[Scored], bad: Sequence[Scored], prior_weight: float,
             n: int, good_weights: np.ndarray, power: float) -> TPEDensity:
    values, unit = dimension_grid(dim, n)
    good_x, bad_x = [s.params[name] for s in good], [s.params[name] for s in bad]
    if isinstance(dim, Choice):
        k = len(dim.values)
        l_pdf = categorical_pmf([dim.index(v) for v in good_x], k, prior_weight, good_weights)
        g_pdf = categorical_pmf([dim.index(v) for v in bad_x], k, prior_weight)
    else:
        l_pdf = parzen_pdf(unit, [dim.to_unit(v) for v in good_x], prior_weight, good_weights)
        g_pdf = parzen_pdf(unit, [dim.to_unit(v) for v in bad_x], prior_weight)
    ratio = l_pdf / np.maximum(g_pdf, 1e-300) ** power
    return TPEDensity(name, scale_of(dim), tuple(values), tuple(l_pdf.tolist()), tuple(g_pdf.tolist()),
                      tuple(ratio.tolist()), tuple(good_x), tuple(bad_x), values[int(np.argmax(ratio))], power)


def tpe_split(trials: Iterable[FrozenTrial], space: SearchSpace, maximize: bool = False, target: str | None = None,
              gamma: float = 0.25, rule: str = "sqrt", cap: int = 25) -> TPESplit:
    """Which trials TPE counts as good and which as bad; ValueError before the first scored trial."""
    scored = scored_trials(trials, space, maximize, target)
    if not scored:
        raise ValueError("no trial with a value inside the space yet: nothing to split")
    good, bad = split([s.loss for s in scored], gamma, rule, cap)
    threshold = max(scored[i].loss for i in good)
    return TPESplit(gamma, rule, -threshold if maximize else threshold, tuple(scored[i].number for i in good),
                    tuple(scored[i].number for i in bad), maximize)


def tpe_densities(trials: Iterable[FrozenTrial], space: SearchSpace, maximize: bool = False,
                  target: str | None = None, gamma: float = 0.25, rule: str = "sqrt", cap: int = 25,
                  prior_weight: float = 1.0, worst_good_weight: float = 1.0, bad_density_power: float = 1.0,
                  n: int = GRID_POINTS) -> tuple[TPESplit, tuple[TPEDensity, ...]]:
    """The split and, for every searched parameter, l(x), g(x) and l(x) / g(x) ** bad_density_power;
    the good trials weigh from 1 (the best) down to ``worst_good_weight`` by rank, and g is damped by
    ``bad_density_power``, as in the native TPE."""
    trials = list(trials)
    the_split = tpe_split(trials, space, maximize, target, gamma, rule, cap)
    by_number = {s.number: s for s in scored_trials(trials, space, maximize, target)}
    good = [by_number[k] for k in the_split.good]
    bad = [by_number[k] for k in the_split.bad]
    weights = np.empty(len(good))
    weights[np.argsort([s.loss for s in good], kind="stable")] = rank_weights(len(good), worst_good_weight)
    return the_split, tuple(_density(name, dim, good, bad, prior_weight, n, weights, bad_density_power)
                            for name, dim in space.searched().items())


def tpe_settings(algorithm: Any) -> dict[str, Any]:
    """gamma, rule and prior weight of a study's TPE (hyperopt's or the native one); defaults otherwise."""
    native = hasattr(algorithm, "gamma_cap")  # NativeTPE: ceil(gamma n), capped
    return {"gamma": float(getattr(algorithm, "gamma", 0.25)), "rule": "linear" if native else "sqrt",
            "cap": int(getattr(algorithm, "gamma_cap", 25)),
            "prior_weight": float(getattr(algorithm, "prior_weight", 1.0)),
            "worst_good_weight": float(getattr(algorithm, "worst_good_weight", 1.0)),
            "bad_density_power": float(getattr(algorithm, "bad_density_power", 1.0))}
