"""The conformance suite: every algorithm behind the ask/tell contract must pass all of it."""

from __future__ import annotations

import math
from typing import Any

import pytest

import hpwidgets as hw
from hpwidgets.algorithms import ALGORITHMS, Algorithm, make_algorithm
from hpwidgets.trial import FrozenTrial, Report, TrialState

PLAIN_TYPES = (int, float, str, bool, type(None))


def mixed_space() -> hw.SearchSpace:
    return hw.SearchSpace({
        "lr": hw.loguniform(1e-4, 1e-1),
        "momentum": hw.uniform(0.01, 0.99),
        "hidden": hw.int(32, 256, step=32),
        "units": hw.int(1, 1000, log=True),
        "trees": hw.quniform(10, 200, 1),
        "activation": hw.choice("relu", "tanh", 3, None),
        "epochs": hw.budget(1, 9),
    })


def synthetic_loss(params: dict[str, Any]) -> float:
    """A smooth function of every parameter, so model-based algorithms have something to fit."""
    return ((math.log10(params["lr"]) + 2.5) ** 2 + (params["momentum"] - 0.7) ** 2
            + (params["hidden"] - 128) ** 2 / 1e4 + math.log10(params["units"]) / 3
            + abs(params["trees"] - 50) / 100 + (0.0 if params["activation"] == "tanh" else 0.5))


def new(name: str, seed: int = 0, space: hw.SearchSpace | None = None, parallel: int = 1) -> Algorithm:
    algorithm = make_algorithm(name)
    algorithm.setup(space or mixed_space(), seed=seed, parallel=parallel)
    return algorithm


def complete(number: int, params: dict[str, Any], space: hw.SearchSpace) -> FrozenTrial:
    full = space.with_budget_at_max(params)
    return FrozenTrial(number, TrialState.COMPLETE, full, value=synthetic_loss(full))


def drive(algorithm: Algorithm, n: int) -> list[dict[str, Any]]:
    """Ask and tell ``n`` times, one trial at a time; returns every suggestion."""
    asked = []
    for number in range(n):
        params = algorithm.ask()
        asked.append(params)
        algorithm.tell(complete(number, params, algorithm.space))
    return asked


def assert_inside(space: hw.SearchSpace, params: dict[str, Any]) -> None:
    assert set(space.searched()) <= set(params) <= set(space), params
    for name, value in params.items():
        assert type(value) in PLAIN_TYPES, f"{name}={value!r} is a {type(value).__name__}"
        assert space[name].contains(value), f"{name}={value!r} is outside {space[name]!r}"


@pytest.fixture(scope="module", params=ALGORITHMS)
def driven(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    """Each algorithm driven 30 trials once per module (the model-based ones are not free)."""
    return request.param, drive(new(request.param), 30)


def test_suggestions_respect_bounds_steps_choices_and_types(driven):
    _, asked = driven
    for params in asked:
        assert_inside(mixed_space(), params)
    assert all(params["hidden"] % 32 == 0 for params in asked)
    assert all(isinstance(params["trees"], int) for params in asked)


def test_suggestions_are_keyed_by_name_and_choices_are_values(driven):
    _, asked = driven
    assert all(isinstance(p["activation"], (str, int, type(None))) for p in asked)
    seen = {repr(p["activation"]) for p in asked}
    assert seen <= {"'relu'", "'tanh'", "3", "None"} and len(seen) >= 2


@pytest.mark.parametrize("name", ALGORITHMS)
def test_log_dimensions_are_explored_on_a_log_scale(name):
    algorithm = new(name, seed=1)
    lrs = [algorithm.ask()["lr"] for _ in range(20)]  # no tells: every ask is exploratory
    # Uniform on [1e-4, 1e-1] would put ~1% below 1e-3; log-uniform puts a third there.
    assert sum(lr < 1e-3 for lr in lrs) >= 3, lrs
    assert sum(lr > 1e-2 for lr in lrs) >= 3, lrs


@pytest.mark.parametrize("name", ALGORITHMS)
def test_same_seed_gives_the_same_sequence(name):
    assert drive(new(name, seed=7), 15) == drive(new(name, seed=7), 15)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_failed_and_pruned_trials_are_tolerated(name):
    algorithm = new(name)
    space = algorithm.space
    for number in range(14):
        params = space.with_budget_at_max(algorithm.ask())
        if number % 3 == 0:
            trial = FrozenTrial(number, TrialState.FAIL, params, error="ValueError: boom")
        elif number % 3 == 1:
            reports = (Report(0, {"value": 3.0}), Report(1, {"value": 2.0}))
            trial = FrozenTrial(number, TrialState.PRUNED, params, value=2.0, reports=reports)
        else:
            trial = complete(number, params, space)
        algorithm.tell(trial)
    assert_inside(space, algorithm.ask())


@pytest.mark.parametrize("name", ALGORITHMS)
def test_history_it_never_asked_for_is_accepted(name):
    """Resume: trials from storage are told before the first ask."""
    space = mixed_space()
    source = new("random", seed=3, space=space)
    algorithm = new(name, seed=4, space=space)
    for number in range(12):
        algorithm.tell(complete(number, source.ask(), space))
    for _ in range(3):
        assert_inside(space, algorithm.ask())


@pytest.mark.parametrize("name", ALGORITHMS)
def test_several_asks_before_tells_stay_valid(name):
    """Parallel trials ask before earlier suggestions are told."""
    algorithm = new(name, parallel=4)
    drive(algorithm, 12)
    pending = [algorithm.ask() for _ in range(4)]
    for params in pending:
        assert_inside(algorithm.space, params)
    for number, params in enumerate(pending, start=12):
        algorithm.tell(complete(number, params, algorithm.space))


@pytest.mark.parametrize("name", ALGORITHMS)
def test_running_trials_observed_under_a_pruner_are_superseded_by_their_tell(name):
    algorithm = new(name, parallel=4)
    algorithm.pruning = True
    drive(algorithm, 12)
    pending = [algorithm.space.with_budget_at_max(algorithm.ask()) for _ in range(4)]
    for number, params in enumerate(pending, start=12):
        algorithm.observe(FrozenTrial(number, TrialState.RUNNING, params, reports=(Report(1, {"value": 0.1}),)))
    assert_inside(algorithm.space, algorithm.ask())
    for number, params in enumerate(pending, start=12):
        algorithm.tell(complete(number, params, algorithm.space))
    assert getattr(algorithm, "_running", {}) == {}  # nothing kept for trials already told
    assert_inside(algorithm.space, algorithm.ask())


def pending_asks(algorithm: Algorithm) -> list[Any]:
    """What an algorithm still holds for asks not yet told (Hyperband: schedule slots)."""
    held = getattr(algorithm, "_pending", [])
    return [slot for slots in held.values() for slot in slots] if isinstance(held, dict) else list(held)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_a_withdrawn_ask_is_forgotten(name):
    """An ask the study could not run (the store was full) leaves nothing behind."""
    algorithm = new(name, parallel=2)
    drive(algorithm, 12)
    kept, dropped = algorithm.ask(), algorithm.ask()
    algorithm.withdraw(dropped)
    algorithm.withdraw({"lr": 1.0})  # never asked: nothing to forget
    algorithm.tell(complete(12, kept, algorithm.space))
    assert pending_asks(algorithm) == []
    assert_inside(algorithm.space, algorithm.ask())


@pytest.mark.parametrize("name", ALGORITHMS)
def test_a_narrowed_space_is_respected(name):
    algorithm = new(name)
    drive(algorithm, 12)
    narrowed = algorithm.space.replace(lr=hw.loguniform(1e-3, 1e-2), activation=hw.choice("tanh", None))
    algorithm.set_space(narrowed)
    for _ in range(5):
        params = algorithm.ask()
        assert_inside(narrowed, params)
        algorithm.tell(complete(99, params, narrowed))


@pytest.mark.parametrize("name", ALGORITHMS)
@pytest.mark.filterwarnings("ignore:The objective has been evaluated at point:UserWarning")  # skopt: 6 points
def test_a_space_of_choices_alone_is_searched(name):
    """No continuous dimension at all: skopt's GP then fits a Hamming kernel, which has no
    gradients for L-BFGS (gp-skopt refused every ask here until it fell back to sampling)."""
    space = hw.SearchSpace({"act": hw.choice("relu", "tanh", None), "width": hw.choice(64, 128),
                            "epochs": hw.budget(1, 9)})
    algorithm = new(name, space=space)
    seen = set()
    for number in range(14):
        params = algorithm.ask()
        assert_inside(space, params)
        seen.add((params["act"], params["width"]))
        full = space.with_budget_at_max(params)
        loss = full["width"] / 64 + (0.0 if full["act"] == "tanh" else 1.0)
        algorithm.tell(FrozenTrial(number, TrialState.COMPLETE, full, value=loss))
    assert len(seen) >= 3, seen


@pytest.mark.parametrize("name", ALGORITHMS)
def test_a_space_of_the_budget_alone_is_refused_by_name_or_asked_at_full_budget(name):
    """Nothing to search: the model-based samplers and hyperband refuse it at setup, by name (tpe
    and gp crashed in numpy on an empty encoding); the others ask the empty config every time."""
    space = hw.SearchSpace({"epochs": hw.budget(1, 9)})
    if name in ("tpe", "gp", "hyperband"):
        with pytest.raises(ValueError, match=f"^{name} needs at least one searched dimension besides the budget"):
            new(name, space=space)
        return
    algorithm = new(name, space=space)
    for number in range(3):
        params = algorithm.ask()
        assert_inside(space, params)
        full = space.with_budget_at_max(params)
        assert full == {"epochs": 9}
        algorithm.tell(FrozenTrial(number, TrialState.COMPLETE, full, value=1.0))


@pytest.mark.parametrize("name", ALGORITHMS)
def test_a_float_dimension_with_int_bounds_gets_floats(name):
    """``hw.uniform(0, 10)`` is real: a suggestion clipped to a bound was the int bound itself
    (with gp, half the trials of a run on ``loguniform(5, 1000)`` saw the int 5)."""
    space = hw.SearchSpace({"lr": hw.loguniform(5, 1000), "m": hw.uniform(0, 10), "epochs": hw.budget(1, 9)})
    algorithm = new(name, space=space)
    for number in range(20):
        params = algorithm.ask()
        assert type(params["lr"]) is float and type(params["m"]) is float, params
        full = space.with_budget_at_max(params)  # best at both lower bounds: models push onto them
        algorithm.tell(FrozenTrial(number, TrialState.COMPLETE, full, value=math.log(full["lr"]) + full["m"]))


@pytest.mark.parametrize("name", ALGORITHMS)
def test_an_edit_that_removes_and_adds_dimensions_while_an_ask_is_pending(name):
    """The pending ask has a value for the removed ``y`` and none for the added ``c``; it was a
    KeyError at once (tpe, gp), or in the liar once the model was ready (gp-skopt)."""
    space = hw.SearchSpace({"x": hw.uniform(0, 1), "y": hw.uniform(0, 1), "epochs": hw.budget(1, 9)})
    algorithm = new(name, space=space, parallel=2)
    drive_on(algorithm, space, range(4))
    running = space.with_budget_at_max(algorithm.ask())
    edited = hw.SearchSpace({"x": hw.uniform(0, 1), "c": hw.choice(None, "a"), "epochs": hw.budget(1, 9)})
    algorithm.set_space(edited)
    drive_on(algorithm, edited, range(4, 16))  # gp-skopt's model starts after 10 in-space trials
    algorithm.tell(FrozenTrial(16, TrialState.COMPLETE, running, value=running["x"]))
    assert_inside(edited, algorithm.ask())


def drive_on(algorithm: Algorithm, space: hw.SearchSpace, numbers: range) -> None:
    for number in numbers:
        params = algorithm.ask()
        assert_inside(space, params)
        full = space.with_budget_at_max(params)
        algorithm.tell(FrozenTrial(number, TrialState.COMPLETE, full, value=full["x"]))


@pytest.mark.parametrize("name", ALGORITHMS)
def test_losses_that_are_not_finite_are_tolerated(name):
    """NaN and +-inf, told through ask/tell (a study never passes them): gp's Yeo-Johnson and
    gp-skopt's fit refused every later ask."""
    algorithm = new(name)
    space = algorithm.space
    diverged = [math.nan, math.inf, -math.inf]
    for number in range(18):  # past gp's 15 start-up points
        params = space.with_budget_at_max(algorithm.ask())
        assert_inside(space, params)
        value = diverged[number % 3] if number % 4 == 1 else synthetic_loss(params)
        algorithm.tell(FrozenTrial(number, TrialState.COMPLETE, params, value=value))
    assert_inside(space, algorithm.ask())


# The checks above that also take an Algorithm object (make_algorithm passes one through and
# each check's setup() resets it): algorithm tests run them on non-default options.
OBJECT_CHECKS = [
    test_log_dimensions_are_explored_on_a_log_scale,
    test_same_seed_gives_the_same_sequence,
    test_failed_and_pruned_trials_are_tolerated,
    test_history_it_never_asked_for_is_accepted,
    test_several_asks_before_tells_stay_valid,
    test_a_narrowed_space_is_respected,
    test_a_withdrawn_ask_is_forgotten,
    test_a_space_of_choices_alone_is_searched,
]
