"""GP over real scikit-optimize: encoding, reproducibility, odd trials, liar, narrowed spaces."""

from __future__ import annotations

import math

import pytest
from helpers import (
    MIXED,
    QUADRATIC,
    assert_valid,
    complete,
    distance_after_direction_run,
    failed,
    mixed_loss,
    pruned,
    random_params,
    run,
)

import hpwidgets.space as hs
from hpwidgets.algorithms import make_algorithm
from hpwidgets.algorithms.gp import GP


def new(seed: int = 0, space: hs.SearchSpace = MIXED, **options) -> GP:
    algo = GP(**options)
    algo.setup(space, seed=seed)
    return algo


def test_registered_by_name():
    assert isinstance(make_algorithm("gp-skopt"), GP) and GP.name == "gp-skopt"


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="liar"):
        GP(liar="cl_median")
    with pytest.raises(ValueError, match="acq_func"):
        GP(acq_func="EIps")


def test_suggestions_are_plain_values_inside_every_dimension():
    # Random start-up and model phases both. Three seeds: which choices one model-led run asks depends on
    # the CPU's float rounding in scikit-learn's fit (seed 0 alone never asked 16 on an AMD EPYC).
    asked = [params for seed in range(3) for params in run(new(seed), mixed_loss, 20)]
    for params in asked:
        assert_valid(MIXED, params)
        assert params["width"] % 16 == 0
        assert params["qlog"] in (1.0, 1000.0) or params["qlog"] % 5 == 0
    assert {repr(p["act"]) for p in asked} == {"'relu'", "'tanh'", "None", "16"}


def test_log_dimensions_are_sampled_in_log_space():
    algo = new(seed=3)
    asked = [algo.ask() for _ in range(60)]  # no tells: all from the random start-up
    assert sum(p["lr"] < 1e-3 for p in asked) >= 10 and sum(p["lr"] > 1e-2 for p in asked) >= 10
    assert sum(p["units"] < 10 for p in asked) >= 10


def test_int_grid_end_points_are_reachable():
    algo = new(space=hs.SearchSpace({"k": hs.integer(0, 2), "s": hs.integer(10, 30, step=10)}))
    asked = [algo.ask() for _ in range(40)]
    assert {p["k"] for p in asked} == {0, 1, 2} and {p["s"] for p in asked} == {10, 20, 30}


def test_same_seed_same_sequence_and_other_seed_differs():
    first, again, other = (run(new(seed=s), mixed_loss, 14) for s in (5, 5, 6))
    assert first == again
    assert first != other


def test_fail_gets_the_worst_loss_and_pruned_its_last_report():
    algo = new()
    params = [algo.ask() for _ in range(4)]
    algo.tell(failed(0, params[0]))  # nothing to compare with yet: skipped
    algo.tell(complete(1, params[1], 2.0))
    algo.tell(pruned(2, params[2], last=0.5))
    algo.tell(failed(3, params[3]))
    assert algo._ys == [2.0, 0.5, 2.0]
    for number in range(4, 16):  # and the model phase copes with them
        trial = failed(number, algo.ask()) if number % 3 == 0 else complete(number, algo.ask(), 1.0 / number)
        algo.tell(trial)
    assert_valid(MIXED, algo.ask())


@pytest.mark.parametrize("scale", [1e160, -1e300])
def test_losses_past_1e150_are_told_at_that_magnitude(scale):
    algo = new(space=QUADRATIC, n_initial_points=3)
    run(algo, lambda p: scale * (1 + (p["x"] - 1) ** 2), 6)  # was: "Input contains NaN" from skopt
    assert [abs(y) for y in algo._ys] == [1e150] * 6 and all((y > 0) == (scale > 0) for y in algo._ys)
    assert_valid(QUADRATIC, algo.ask())


def test_a_loss_that_is_not_finite_is_told_as_the_worst_seen():
    algo = new(space=QUADRATIC)
    params = [algo.ask() for _ in range(6)]
    for number, value in enumerate([math.nan, 1.0, 2.0, math.nan, math.inf, -math.inf]):
        algo.tell(complete(number, params[number], value))  # the first has nothing to compare with
    assert algo._ys == [1.0, 2.0, 2.0, 2.0, 2.0]  # was NaN in skopt's fit ("Input y contains NaN")


def test_a_failing_point_is_not_suggested_again():
    algo = new(space=QUADRATIC, n_initial_points=3)
    run(algo, lambda p: (p["x"] - 1) ** 2, 8)
    crash = algo.ask()
    algo.tell(failed(8, crash))
    assert algo.ask() != crash


def test_history_it_never_asked_is_used():
    algo = new(seed=1)
    for number in range(12):
        params = random_params(MIXED, number)
        algo.tell(complete(number, MIXED.with_budget_at_max(params), mixed_loss(params)))
    assert len(algo._ys) == 12 and algo._opt is not None and algo._opt.models
    first = random_params(MIXED, 0)
    assert algo._xs[0][list(MIXED.searched()).index("width")] == (first["width"] - 16) // 16
    for _ in range(3):
        assert_valid(MIXED, algo.ask())


@pytest.mark.parametrize("maximize", [False, True])
def test_direction_pulls_suggestions_to_the_optimum(maximize):
    distance, expected_random = distance_after_direction_run(GP(), maximize, n=25, last=10)
    assert distance < 0.3 * expected_random


def test_parallel_asks_differ_through_the_liar():
    algo = new(space=QUADRATIC)
    run(algo, lambda p: (p["x"] - 1) ** 2, 15)
    pending = [algo.ask() for _ in range(4)]
    assert len({p["x"] for p in pending}) == 4
    assert len(algo._pending) == 4
    for number, params in enumerate(reversed(pending), start=15):  # told in any order
        algo.tell(complete(number, params, (params["x"] - 1) ** 2))
    assert algo._pending == []


def test_set_space_narrows_and_refits_on_in_space_history():
    algo = new(seed=2)
    asked = run(algo, mixed_loss, 15)
    narrowed = MIXED.replace(x=hs.uniform(0.0, 1.0), act=hs.choice("tanh", None))
    algo.set_space(narrowed)
    inside = [p for p in asked if narrowed.contains(MIXED.with_budget_at_max(p))]
    assert len(algo._ys) == len(inside) < 15
    for number in range(15, 25):
        params = algo.ask()
        assert_valid(narrowed, params)
        algo.tell(complete(number, params, mixed_loss(params)))
    assert len(algo._ys) == len(inside) + 10


def test_only_a_budget_or_a_single_choice():
    assert new(space=hs.SearchSpace({"epochs": hs.budget(1, 9)})).ask() == {}
    algo = new(space=hs.SearchSpace({"x": hs.uniform(0, 1), "c": hs.choice("only")}))
    asked = run(algo, lambda p: p["x"], 14)
    assert all(p["c"] == "only" for p in asked)
