"""Slider resolution, choice toggle labels and log-scaled int controls (``ui/sliders.py``), and the
static face's capped history figure (``ui/views.py``)."""

from __future__ import annotations

import math

import ipywidgets as w
from ui_harness import make_panel, random_study

import hpwidgets as hw
from hpwidgets.charts.data import history
from hpwidgets.trial import FrozenTrial, TrialState
from hpwidgets.ui import Dashboard, views
from hpwidgets.ui.sliders import SpaceEditor

STATIC_DOTS = 1000  # views.STATIC_DOTS (named here so the test imports the committed views.py too)

# --- float sliders: rounded to their resolution, not to a few significant digits ---------------------

def test_untouched_readouts_show_the_declared_bounds_apart(sent):
    space = hw.SearchSpace({"offset": hw.uniform(100000, 100010), "beta2": hw.loguniform(0.99, 0.9999)})
    controls = SpaceEditor(space).controls
    assert controls["offset"].readout.value == "100000 … 100010"  # was "1e+05 … 1e+05"
    assert controls["beta2"].readout.value == "0.99 … 0.9999"  # was "0.99 … 1"


def test_moved_handles_search_the_range_the_handles_show(sent, panels):
    study = random_study({"offset": hw.uniform(100000, 100010)})
    control = make_panel(panels, study)._view.editor.controls["offset"]
    control.slider.value = (100004.2, 100005.8)
    assert study.space["offset"] == hw.uniform(100004.2, 100005.8)  # was uniform(100004, 100006)
    assert control.readout.value == "100004.2 … 100005.8"
    control.slider.value = (100004.2, 100004.4)  # narrow but valid: was refused as low == high
    assert study.space["offset"] == hw.uniform(100004.2, 100004.4)


def test_adjacent_positions_read_out_apart(sent):
    control = SpaceEditor(hw.SearchSpace({"year": hw.uniform(1000, 1001)})).controls["year"]
    step = control.slider.step
    readouts = set()
    for k in (250, 251):
        control.slider.value = (1000 + k * step, 1001.0)
        readouts.add(control.readout.value)
    assert len(readouts) == 2, readouts  # was "1000 … 1001" for both


def test_a_grid_handle_stays_on_its_grid_and_a_step_keeps_all_its_digits(sent):
    editor = SpaceEditor(hw.SearchSpace({"x": hw.quniform(0, 1, 0.25), "y": hw.uniform(0, 2.5)}))
    editor.controls["x"].slider.value = (0.25, 0.75)  # a rounding to one place made 0.2 … 0.8, refused
    editor.controls["y"].slider.value = (0.0125, 2.5)  # one step of 2.5 / 200
    space = editor.space_from_widgets()
    assert editor.error is None and space["x"] == hw.quniform(0.25, 0.75, 0.25) and space["y"].low == 0.0125
    assert editor.controls["x"].readout.value == "0.25 … 0.75"
    log_grid = SpaceEditor(hw.SearchSpace({"lr": hw.Float(0.001, 1.0, log=True, q=0.001)}))
    log_grid.controls["lr"].slider.value = (-2.0, 0.0)  # exponents: 0.01 … 1
    assert log_grid.error is None and log_grid.space_from_widgets()["lr"] == hw.Float(0.01, 1.0, log=True, q=0.001)


def test_a_log_handle_keeps_the_digits_its_position_resolves(sent):
    editor = SpaceEditor(hw.SearchSpace({"beta2": hw.loguniform(0.99, 0.9999)}))
    control = editor.controls["beta2"]
    control.slider.value = (math.log10(0.9955), math.log10(0.9985))
    assert editor.space_from_widgets()["beta2"] == hw.loguniform(0.9955, 0.9985)  # was 0.996 … 0.999
    assert control.readout.value == "0.9955 … 0.9985"


# --- choice toggles and log-scaled ints -----------------------------------------------------------

def test_choice_values_that_print_alike_get_toggles_labelled_apart(sent):
    editor = SpaceEditor(hw.SearchSpace({"act": hw.choice(None, "None", True, "True", 1, "1", "relu")}))
    labels = [button.description for button in editor.controls["act"].buttons]
    assert labels == ["None", "'None'", "True", "'True'", "1", "'1'", "relu"]  # was None, None, True...
    editor.controls["act"].buttons[1].value = False
    assert editor.space_from_widgets()["act"] == hw.choice(None, True, "True", 1, "1", "relu")


def test_a_log_int_slides_over_exponents_and_snaps_to_integers(sent):
    space = hw.SearchSpace({"units": hw.int(1, 4096, log=True), "epochs": hw.budget(1, 27)})
    editor = SpaceEditor(space)
    control = editor.controls["units"]
    assert isinstance(control.slider, w.FloatRangeSlider)
    assert control.slider.min == 0 and control.slider.max == math.log10(4096)  # was a linear 1..4096 slider
    assert control.readout.value == "1 … 4096" and editor.space_from_widgets() == space
    control.slider.value = (math.log10(8) + 0.001, control.slider.max)
    assert editor.space_from_widgets()["units"] == hw.int(8, 4096, log=True)  # the untouched high as declared
    assert control.readout.value == "8 … 4096"
    control.slider.value = (0.30, 0.31)  # both handles snap to 2: refused, the last valid space kept
    assert editor.error and editor.space_from_widgets()["units"] == hw.int(8, 4096, log=True)
    assert editor.controls["epochs"].slider.disabled  # the budget stays read-only


# --- the static face (ui/views.py) ----------------------------------------------------------------

def _trials(values: list[float]) -> list[FrozenTrial]:
    return [FrozenTrial(i, TrialState.COMPLETE, {"x": 0.5}, value=v) for i, v in enumerate(values)]


def test_the_static_history_draws_at_most_a_fixed_number_of_dots_and_the_whole_best_line():
    values = [1.0 / (1 + (i * 7919) % 5000) + (i % 3) for i in range(5000)]
    full = history(_trials(values))
    drawn = views.capped(full)
    assert len(drawn.points) == STATIC_DOTS == views.STATIC_DOTS
    numbers = {p.number for p in drawn.points}
    assert {0, 4999, values.index(min(values)), values.index(max(values))} <= numbers
    corners = [b for i, b in enumerate(full.best) if i == 0 or b.y != full.best[i - 1].y]
    assert {b.y for b in corners} == {b.y for b in drawn.best} and drawn.best[-1] == full.best[-1]
    assert {p.value for p in drawn.points} >= {b.y for b in full.best}  # every best-setting trial's dot
    assert views.capped(history(_trials(values[:50]))).points == history(_trials(values[:50])).points


def test_the_static_face_bundle_stays_small_and_says_when_it_draws_a_subset():
    study = hw.Study(space={"x": hw.uniform(0, 1)}, algo="random", seed=0, storage=None)
    study.optimize(lambda p: p["x"], trials=3000, progress=False)
    panel = Dashboard(study, mode="static")
    try:
        html = panel._view.bundle()["text/html"]
    finally:
        panel.close()
    assert html.count("<circle") == STATIC_DOTS  # was one per trial: 3000
    assert f"({STATIC_DOTS} of 3000 trials drawn)" in html and len(html) < 150_000
