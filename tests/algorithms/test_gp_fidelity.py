"""NativeGP with trials stopped early: fidelities, per-row noise and suggestions at full fidelity."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import test_conformance as conf

import hpwidgets.space as hs
from hpwidgets.algorithms import _gp_model as gm
from hpwidgets.algorithms._gp_fidelity import AtFullFidelity, fidelity_of
from hpwidgets.algorithms.gp_native import NativeGP
from hpwidgets.trial import FrozenTrial, Report, TrialState

NAN = math.nan


@pytest.mark.parametrize("check", conf.OBJECT_CHECKS, ids=lambda f: f.__name__)
def test_conformance_with_fidelity(check: Callable[[Any], None]) -> None:
    check(NativeGP(n_startup_trials=5, n_random=512, n_local=128, n_starts=4, fidelity=True))


def test_no_fidelity_without_a_trial_stopped_below_the_full_step() -> None:
    assert fidelity_of(np.array([9.0, 9.0, NAN]), np.array([False, False, False])) is None
    assert fidelity_of(np.array([9.0, 9.0]), np.array([False, True])) is None  # stopped at the top
    assert fidelity_of(np.array([NAN, NAN]), np.array([True, True])) is None  # nothing reported


def test_fidelity_column_and_noise_by_hand() -> None:
    steps = np.array([26.0, 2.0, 8.0, NAN, 30.0])
    stopped = np.array([False, True, True, False, True])
    fid = fidelity_of(steps, stopped)
    assert fid is not None  # full = 26, the finished trial's step; the stopped one at 30 counts as full
    assert fid.column == pytest.approx([1.0, math.log(3) / math.log(27), math.log(9) / math.log(27), 1.0, 1.0])
    assert fid.noise_scale == pytest.approx([1.0, 9.0, 3.0, 1.0, 1.0])
    X, is_cat = fid.augment(np.zeros((5, 2)), np.array([False, True]))
    assert X[:, -1] == pytest.approx(fid.column) and is_cat.tolist() == [False, True, False]


def test_before_any_trial_finishes_the_furthest_report_is_full() -> None:
    fid = fidelity_of(np.array([1.0, 3.0]), np.array([True, True]))
    assert fid is not None and fid.column == pytest.approx([math.log(2) / math.log(4), 1.0])


@pytest.mark.parametrize("scale", [None, np.array([1.0, 3.0, 1.0, 9.0, 2.0, 1.0, 1.0, 5.0])])
def test_marginal_likelihood_gradient_with_per_row_noise(scale: np.ndarray | None) -> None:
    rng = np.random.default_rng(1)
    X, is_cat = rng.random((8, 2)), np.array([False, False])
    y = np.sin(5 * X[:, 0]) + X[:, 1]
    priors, D = gm.Priors(), gm.sq_dists(X, X, is_cat)
    theta = priors.initial(is_cat) + np.array([0.2, -0.3, 0.4, 9.0])  # noise ~1e-2: it matters
    _, grad = gm.neg_log_posterior(theta, D, y, priors, is_cat, scale)
    eps = 1e-6
    numeric = [(gm.neg_log_posterior(theta + e, D, y, priors, is_cat, scale)[0]
                - gm.neg_log_posterior(theta - e, D, y, priors, is_cat, scale)[0]) / (2 * eps) for e in np.eye(4) * eps]
    assert grad == pytest.approx(numeric, rel=1e-4, abs=1e-4)


def _curve_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """1-D: at the full step f(x) = (x - 0.8)^2; after 1 of 27 steps a learning curve 1.0 higher."""
    x_full, x_early = np.array([0.05, 0.3, 0.55, 0.75, 0.9]), np.linspace(0.0, 1.0, 12)
    X = np.concatenate([x_full, x_early])[:, None]
    y = np.concatenate([(x_full - 0.8) ** 2, (x_early - 0.8) ** 2 + 1.0])
    steps = np.concatenate([np.full(5, 27.0), np.full(12, 1.0)])
    return X, y, steps, np.arange(17) >= 5


def test_the_model_at_full_fidelity_removes_the_learning_curve_offset() -> None:
    X, y, steps, stopped = _curve_data()
    fid = fidelity_of(steps, stopped)
    assert fid is not None
    Xa, is_cat = fid.augment(X, np.array([False]))
    theta = gm.fit_theta(Xa, y, is_cat, [gm.Priors().initial(is_cat)], gm.Priors(), noise_scale=fid.noise_scale)
    post = AtFullFidelity(gm.Posterior(Xa, y, theta, is_cat, fid.noise_scale), fid.column == 1.0)
    grid = np.linspace(0.0, 1.0, 21)[:, None]
    mean, _ = post.predict(grid)
    assert mean == pytest.approx((grid[:, 0] - 0.8) ** 2, abs=0.1)  # not 1.0 higher where only early reports are
    assert post.incumbent() == pytest.approx(y[:5].min())
    assert post.with_fantasies(np.array([[0.8]])).incumbent() <= post.incumbent()


def test_torch_twin_takes_the_same_per_row_noise() -> None:
    from hpwidgets.algorithms import _gp_torch as gt

    X, y, steps, stopped = _curve_data()
    fid = fidelity_of(steps, stopped)
    assert fid is not None
    Xa, is_cat = fid.augment(X, np.array([False]))
    start = [gm.Priors().initial(is_cat)]
    theta_np = gm.fit_theta(Xa, y, is_cat, start, gm.Priors(), noise_scale=fid.noise_scale)
    theta_t = gt.fit_theta(Xa, y, is_cat, start, gm.Priors(), noise_scale=fid.noise_scale)
    assert theta_t == pytest.approx(theta_np, abs=1e-3)
    a = AtFullFidelity(gm.Posterior(Xa, y, theta_np, is_cat, fid.noise_scale), fid.column == 1.0)
    b = AtFullFidelity(gt.Posterior(Xa, y, theta_np, is_cat, fid.noise_scale), fid.column == 1.0)
    Xc = np.array([[0.1], [0.5], [0.85]])
    (va, ga), (vb, gb) = a.log_ei_and_grad(Xc, a.incumbent()), b.log_ei_and_grad(Xc, b.incumbent())
    assert vb == pytest.approx(va, rel=1e-8) and gb == pytest.approx(ga, rel=1e-6, abs=1e-8)
    assert ga.shape == (3, 1)  # the fidelity coordinate is not searched


def _tell_curves(algo: NativeGP) -> None:
    """Fast starters near x = 0.2 whose early reports beat every finished value; finished trials
    show the full-step optimum at 0.8 (the same field as ``_curve_data``, early curves shifted)."""
    number = 0
    for x in (0.05, 0.2, 0.3, 0.55, 0.75, 0.9):
        value = (x - 0.8) ** 2
        curve = tuple(Report(s, {"loss": value + 0.3 / s}) for s in (1, 3, 9, 27))
        algo.tell(FrozenTrial(number, TrialState.COMPLETE, {"x": x}, value=value, reports=curve))
        number += 1
    for x in np.linspace(0.0, 1.0, 12):
        early = Report(1, {"loss": (x - 0.2) ** 2 - 0.5})
        algo.tell(FrozenTrial(number, TrialState.PRUNED, {"x": float(x)}, reports=(early,)))
        number += 1


def test_with_fidelity_a_gp_under_a_pruner_is_not_lured_by_early_reports() -> None:
    space = hs.SearchSpace({"x": hs.uniform(0, 1)})
    asks = {}
    for fidelity in (True, False):
        algo = NativeGP(n_startup_trials=2, fidelity=fidelity)
        algo.setup(space, seed=0, target="loss")
        _tell_curves(algo)
        asks[fidelity] = algo.ask()["x"]
    assert abs(asks[True] - 0.8) < 0.15  # the full-step optimum
    # The default fits each stop as a finished value: it averages the two fields and asks elsewhere.
    assert abs(asks[False] - 0.8) > 0.15
