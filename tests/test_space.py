from __future__ import annotations

import json

import pytest

import hpwidgets as hw
from hpwidgets.space import Choice, Float, Int, SearchSpace, dimension_from_dict


@pytest.mark.parametrize("make, message", [
    (lambda: hw.uniform(5, 1), "`low < high` must hold, but got low=5, high=1"),
    (lambda: hw.uniform(1, 1), "`low < high` must hold, but got low=1, high=1"),
    (lambda: hw.loguniform(0, 1), "`low > 0` must hold for a log scale, but got low=0"),
    (lambda: hw.loguniform(-1, 1), "`low > 0` must hold for a log scale, but got low=-1"),
    (lambda: hw.choice(), "`choice` needs at least one value, but got none"),
    (lambda: hw.choice([]), "`choice` needs at least one value, but got none"),
    (lambda: hw.int(0, 10, step=3), "`step` must divide `high - low`, but got step=3, high - low=10"),
    (lambda: hw.int(0, 10, step=0), "`step >= 1` must hold, but got step=0"),
    (lambda: hw.int(0.5, 10), "`low` must be an integer, but got low=0.5"),
    (lambda: hw.uniform("a", 1), "`low` must be a number, but got low='a'"),
    (lambda: hw.uniform(0, float("inf")), "`high` must be finite, but got high=inf"),
    (lambda: hw.quniform(0, 1, 0), "`q > 0` must hold, but got q=0"),
    (lambda: hw.choice(1, 1), "choice values must be distinct"),
    (lambda: hw.choice([1, 2], [3]), "choice values must be str, int, float, bool or None, but got [1, 2]"),
    (lambda: hw.budget(0, 27), "`low >= 1` must hold for a budget, but got low=0"),
])
def test_bad_dimensions_state_the_rule_and_the_values(make, message):
    with pytest.raises(ValueError) as error:
        make()
    assert message in str(error.value)


def test_bounds_are_in_value_space_and_log_maps_geometrically():
    lr = hw.loguniform(1e-4, 1e-1)
    assert lr.from_unit(0.0) == pytest.approx(1e-4)
    assert lr.from_unit(1.0) == pytest.approx(1e-1)
    assert lr.from_unit(0.5) == pytest.approx(10 ** -2.5)
    assert lr.to_unit(1e-2) == pytest.approx(2 / 3)


def test_int_steps_and_log_ints_land_on_the_grid():
    hidden = hw.int(32, 256, step=32)
    values = {hidden.from_unit(u / 100) for u in range(101)}
    assert values == set(range(32, 257, 32))
    units = hw.int(1, 1000, log=True)
    assert units.from_unit(0.0) == 1 and units.from_unit(1.0) == 1000
    assert all(isinstance(units.from_unit(u / 10), int) for u in range(11))


def test_quniform_rounds_clips_and_gives_ints_on_an_integer_grid():
    trees = hw.quniform(10, 200, 1)
    assert trees.snap(57.4) == 57 and isinstance(trees.snap(57.4), int)
    assert trees.snap(3) == 10 and trees.snap(999) == 200
    step = hw.quniform(0.0, 1.0, 0.25)
    assert step.snap(0.3) == 0.25 and isinstance(step.snap(0.3), float)


def test_a_float_dimension_with_int_bounds_yields_floats_and_keeps_its_text():
    lr, m = hw.loguniform(5, 1000), hw.uniform(0, 10)
    at_bounds = [lr.from_unit(0.0), lr.snap(2000), lr.snap(4), m.snap(-0.3), m.snap(11), m.from_unit(0.0)]
    assert at_bounds == [5, 1000, 5, 0, 10, 0]
    assert all(type(v) is float for v in [*at_bounds, m.default, hw.uniform(-1, 1).default]), at_bounds
    assert hw.quniform(0, 10, 2.5).snap(-1) == 0 and type(hw.quniform(0, 10, 2.5).snap(-1)) is float
    assert type(hw.quniform(10, 200, 1).snap(3)) is int  # an integral grid keeps its ints
    assert dimension_from_dict(json.loads(json.dumps(m.to_dict()))) == m == hw.uniform(0.0, 10.0)
    assert f"{m.low:g} … {m.high:g}" == "0 … 10"  # how sliders and charts show the bounds


def test_int_bounds_that_one_float_cannot_tell_apart_are_refused():
    with pytest.raises(ValueError, match=r"^`low < high` must hold as floats, but got low=9007199254740992, "
                                         r"high=9007199254740993 \(the same float\)$"):
        hw.uniform(2**53, 2**53 + 1)


def test_choice_holds_values_not_indices():
    c = hw.choice(16, 32, "auto", None)
    assert c.from_unit(0.0) == 16 and c.from_unit(0.99) is None
    assert c.index("auto") == 2 and c.contains(32) and not c.contains(64)
    assert hw.choice([1, 2]).values == (1, 2)


def test_json_round_trip_keeps_every_dimension_and_value_type():
    space = SearchSpace({"lr": hw.loguniform(1e-4, 1e-1), "m": hw.uniform(0, 1), "h": hw.int(1, 9, step=2),
                         "u": hw.int(1, 100, log=True), "t": hw.quniform(10, 200, 5), "a": hw.choice("x", 2, 2.5, True),
                         "e": hw.budget(1, 27)})
    again = SearchSpace.from_json(space.to_json())
    assert again == space
    assert [type(v) for v in again["a"].values] == [str, int, float, bool]
    assert json.loads(space.to_json())["lr"] == {"type": "float", "low": 1e-4, "high": 1e-1, "log": True, "q": None}


def test_equal_spaces_hash_alike():
    a = SearchSpace({"x": hw.uniform(0, 1), "c": hw.choice(0, 1)})
    b = SearchSpace({"c": hw.choice(False, True), "x": hw.uniform(0.0, 1.0)})
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1


def test_a_hand_written_spec_with_a_string_flag_or_string_values_is_refused():
    with pytest.raises(ValueError, match=r"^`log` must be true or false, but got log='false'$"):
        dimension_from_dict({"type": "float", "low": 1e-4, "high": 1e-1, "log": "false"})
    with pytest.raises(ValueError, match=r"^`values` must be a list, but got values='abc'$"):
        dimension_from_dict({"type": "choice", "values": "abc"})
    assert dimension_from_dict({"type": "int", "low": 1, "high": 9}) == hw.int(1, 9)  # log defaults to false


def test_unknown_names_and_types_are_refused_clearly():
    space = SearchSpace({"x": hw.uniform(0, 1)})
    with pytest.raises(ValueError, match=r"unknown parameter names \['y'\]; the space has \['x'\]"):
        space.validate_params({"x": 0.5, "y": 1})
    with pytest.raises(ValueError, match="unknown dimension type 'normal'"):
        dimension_from_dict({"type": "normal"})
    with pytest.raises(ValueError, match="must be a dimension such as"):
        SearchSpace({"x": (0, 1)})
    with pytest.raises(ValueError, match="at most one budget"):
        SearchSpace({"a": hw.budget(1, 3), "b": hw.budget(1, 9)})
    with pytest.raises(ValueError, match="unknown parameter names"):
        space.replace(z=hw.uniform(0, 1))


def test_budget_is_fixed_at_its_maximum_for_ordinary_algorithms():
    space = SearchSpace({"x": hw.uniform(0, 1), "epochs": hw.budget(1, 27)})
    assert list(space.searched()) == ["x"]
    assert space.with_budget_at_max({"x": 0.1}) == {"x": 0.1, "epochs": 27}


def test_contains_flags_trials_outside_an_edited_space():
    space = SearchSpace({"x": hw.uniform(0, 1), "c": hw.choice("a", "b")})
    assert space.contains({"x": 0.5, "c": "a"})
    assert not space.replace(x=hw.uniform(0.6, 1)).contains({"x": 0.5, "c": "a"})
    assert isinstance(space["x"], Float) and isinstance(hw.int(1, 2), Int) and isinstance(space["c"], Choice)
