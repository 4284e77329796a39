"""The panel's widgets with a capturing dummy comm: sliders, live chart messages, buttons, table.

No kernel and no browser: ipywidgets 8.1 opens comms through ``comm.create_comm``, which we point
at a comm that records every message it would send to the frontend.
"""

from __future__ import annotations

import json
import math
import re
import threading

import anywidget  # noqa: F401 - a dev dependency: missing means a broken install
import ipywidgets  # noqa: F401 - a dev dependency: missing means a broken install
import pytest
from ui_harness import SPACE, custom, frontend_says, make_panel, random_study

import hpwidgets as hw
from hpwidgets.events import TrialFinished
from hpwidgets.trial import FrozenTrial, TrialState
from hpwidgets.ui.livechart import LiveChart
from hpwidgets.ui.sliders import SpaceEditor
from hpwidgets.ui.summary import RunStats

# --- sliders ---------------------------------------------------------------------------------------

def test_sliders_built_from_a_space_return_the_same_space(sent):
    editor = SpaceEditor(SPACE)
    assert editor.space_from_widgets() == SPACE
    assert all(editor.space_from_widgets()[n] is SPACE[n] for n in SPACE)


def test_log_slider_moves_in_exponents_and_reads_out_real_units(sent):
    editor = SpaceEditor(SPACE)
    control = editor.controls["lr"]
    assert control.slider.min == pytest.approx(-4) and control.slider.max == pytest.approx(-1)
    control.slider.value = (-3.0, -2.0)
    assert editor.space_from_widgets()["lr"] == hw.loguniform(1e-3, 1e-2)
    assert control.readout.value == "0.001 … 0.01"


def test_moving_one_handle_keeps_the_other_bound_as_declared(sent):
    space = hw.SearchSpace({"width": hw.loguniform(16, 2048), "scale": hw.uniform(0, 1234567.89)})
    editor = SpaceEditor(space)
    width, scale = editor.controls["width"], editor.controls["scale"]
    width.slider.value = (math.log10(32), width.slider.value[1])  # only the low handle moves
    scale.slider.value = (scale.slider.value[0], 1000.0)  # only the high handle moves
    edited = editor.space_from_widgets()
    assert edited["width"] == hw.loguniform(32, 2048) and edited["scale"] == hw.uniform(0, 1000)
    width.slider.value = (math.log10(32), width.slider.max - 1e-9)  # a handle a hair from the end
    assert editor.space_from_widgets()["width"].high == 2048  # rounded (2.05e3), then kept within the range


def test_linear_slider_reads_out_without_padded_zeros(sent):
    control = SpaceEditor(hw.SearchSpace({"p": hw.uniform(0.0, 0.502), "n": hw.uniform(100, 1000)})).controls
    assert control["p"].readout.value == "0 … 0.502"
    assert control["n"].readout.value == "100 … 1000"
    control["p"].slider.value = (0.1, 0.25)
    assert control["p"].readout.value == "0.1 … 0.25"


def test_int_slider_respects_the_step_and_choice_toggles_pick_values(sent):
    editor = SpaceEditor(SPACE)
    assert editor.controls["units"].slider.step == 16
    editor.controls["units"].slider.value = (32, 128)
    editor.controls["bs"].buttons[2].value = False
    space = editor.space_from_widgets()
    assert space["units"] == hw.int(32, 128, step=16) and space["bs"] == hw.choice(16, 32)


def test_budget_is_shown_read_only(sent):
    editor = SpaceEditor(SPACE)
    assert editor.controls["epochs"].slider.disabled
    assert editor.space_from_widgets()["epochs"] is SPACE["epochs"]


@pytest.mark.parametrize("edit", ["float_equal_bounds", "no_choice_left"])
def test_invalid_edits_are_refused_visibly_and_keep_the_last_valid_space(sent, edit):
    editor = SpaceEditor(SPACE)
    editor.controls["x"].slider.value = (2.0, 8.0)
    editor.controls["bs"].buttons[0].value = False
    editor.controls["bs"].buttons[1].value = False
    valid = editor.space_from_widgets()
    if edit == "float_equal_bounds":
        editor.controls["x"].slider.value = (5.0, 5.0)
    else:
        editor.controls["bs"].buttons[2].value = False
    assert editor.space_from_widgets() == valid
    assert valid["x"] == hw.uniform(2.0, 8.0) and valid["bs"] == hw.choice(64)
    assert editor.error and "keeping the last valid space" in editor.message.value
    editor.controls["x"].slider.value = (1.0, 9.0)
    for button in editor.controls["bs"].buttons:
        button.value = True
    assert editor.error is None and editor.message.value == ""


def test_slider_edits_change_where_the_study_suggests(sent, panels):
    study = random_study()
    panel = make_panel(panels, study)
    editor = panel._view.editor
    editor.controls["x"].slider.value = (2.0, 3.0)
    editor.controls["bs"].buttons[0].value = False
    assert study.space["x"] == hw.uniform(2.0, 3.0)
    study.optimize(lambda p: p["x"], trials=30, progress=False)
    assert all(2.0 <= t.params["x"] <= 3.0 and t.params["bs"] in (32, 64) for t in study.trials)


def test_editing_during_a_search_keeps_past_trials_and_greys_them(sent, panels):
    study = random_study()
    panel = make_panel(panels, study)
    study.optimize(lambda p: p["x"], trials=20, progress=False)
    panel._view.editor.controls["x"].slider.value = (0.0, 1.0)
    chart = panel._view.chart
    points = chart.state()["charts"]["history"]["data"][0]
    assert len(points["x"]) == 20 and "#c8c8c8" in points["marker"]["color"]
    study.add_trials(10)
    study.optimize(lambda p: p["x"], trials=30, progress=False)
    assert len(study.trials) == 30 and all(t.params["x"] <= 1.0 for t in study.trials[20:])


# --- live chart ------------------------------------------------------------------------------------

def trial(n: int) -> FrozenTrial:
    return FrozenTrial(n, TrialState.COMPLETE, {"lr": 1e-3, "x": 5.0, "units": 64, "bs": 32, "epochs": 27},
                       value=1.0 + (n % 5) / 10)


def test_live_chart_sends_only_the_new_points_per_trial(sent):
    chart = LiveChart(SPACE)
    with_js = [d for t, d in sent if "plotly_js" in d.get("state", {})]
    assert len(with_js) == 1 and len(with_js[0]["state"]["plotly_js"]) > 1_000_000  # plotly.js once, in the state
    for n in range(600):
        chart.push([trial(n)])
    messages = custom(sent)
    assert len(messages) == 600 and [m["seq"] for m in messages] == list(range(1, 601))
    history = next(op for op in messages[499]["ops"] if op["c"] == "history")
    assert history["d"]["x"] == [[499]]  # just the new trial
    sizes = [len(json.dumps(m)) for m in messages]
    assert sizes[599] <= sizes[9] * 1.05  # bytes per message do not grow with the study
    assert all("plotly_js" not in d.get("state", {}) for t, d in sent if t == "comm_msg")


def test_live_chart_labels_named_by_the_user_stay_text(sent):
    space = hw.SearchSpace({"<b>p</b>": hw.choice("<i>a</i>", "b"), "x": hw.uniform(0, 1)})
    chart = LiveChart(space, target="<u>acc</u>")
    chart.push([FrozenTrial(0, TrialState.COMPLETE, {"<b>p</b>": "<i>a</i>", "x": 0.5}, value=1.0)])
    snapshot = chart.snapshot
    assert "<b>p</b>" not in snapshot and "<u>acc</u>" not in snapshot
    assert "&lt;b&gt;p&lt;/b&gt;" in snapshot and "&lt;u&gt;acc&lt;/u&gt;" in snapshot


def test_rendered_message_sets_the_event_and_resync_refreshes_the_snapshot(sent):
    chart = LiveChart(SPACE, trials=[trial(0)])
    assert not chart.rendered.is_set()
    frontend_says(chart, {"type": "rendered"})
    assert chart.rendered.is_set()
    chart.push([trial(1), trial(2)])
    frontend_says(chart, {"type": "resync", "have": 0})
    assert chart.state()["seq"] == 1 and len(chart.state()["charts"]["history"]["data"][0]["x"]) == 3


def test_the_final_snapshot_holds_every_trial_for_the_saved_notebook(sent, panels):
    study = random_study()
    panel = make_panel(panels, study)
    study.optimize(lambda p: p["x"], trials=25, progress=False)
    snapshot = panel._view.chart.state()
    assert snapshot["seq"] == 25 and len(snapshot["charts"]["history"]["data"][0]["x"]) == 25
    assert panel.rendered is panel._view.chart.rendered


def test_a_panel_attached_to_a_finished_study_shows_its_trials(sent, panels):
    study = random_study()
    study.optimize(lambda p: p["x"], trials=7, progress=False)
    panel = make_panel(panels, study)
    assert len(panel._view.chart.state()["charts"]["history"]["data"][0]["x"]) == 7
    assert "7/7 trials" in panel._view.controls.line.value


def test_the_progress_line_counts_pruned_trials(sent, panels):
    def curve(params, trial):
        for step in range(1, 10):
            trial.report(step, loss=params["x"] + 1 / step)
        return params["x"]
    study = hw.Study(space={"x": hw.uniform(0, 1)}, algo="random", seed=0, pruner="asha")
    panel = make_panel(panels, study)
    study.optimize(curve, trials=12, progress=False)
    panel.flush()
    pruned = sum(t.state is TrialState.PRUNED for t in study.trials)
    assert pruned >= 4 and f"12/12 trials · {pruned} pruned" in panel._view.controls.line.value


def _done(number: int) -> FrozenTrial:
    return FrozenTrial(number, TrialState.COMPLETE, {"x": 0.5}, value=0.5)


def test_an_error_that_ends_a_background_search_is_shown_on_the_panel(sent, panels):
    study = random_study()

    def failing_ask():
        raise RuntimeError("model fit exploded")

    study.algorithm.ask = failing_ask
    panel = make_panel(panels, study)
    study.optimize(lambda p: p["x"], trials=3, background=True, progress=False)
    with pytest.raises(RuntimeError):
        study.wait(5)
    assert "the search stopped: RuntimeError: model fit exploded" in panel._view.message.value
    assert panel._view.controls.line.value.startswith("error · 0/3 trials")


def test_the_eta_is_this_runs_pace_without_its_pauses():
    stats = RunStats()
    for n in range(4):  # 4 trials of 1 s, one at a time, each asked in 1 s: 2 s per trial
        stats.started(n, now=2.0 * n)
        stats.finished(_done(n))
    assert stats.eta(total=10, now=8.0) == pytest.approx(12.0)  # the asks between trials are pace too
    # Paused for an hour from t=8 (the study's paused_seconds grows to 3600): the pace is unchanged.
    stats.started(4, now=3608.0, paused=3600.0)
    assert stats.eta(total=10, now=3608.0, paused=3600.0) == pytest.approx(12.0)
    stats.finished(_done(4))
    assert stats.eta(total=10, now=3610.0, paused=3600.0) == pytest.approx(10.0)


def test_the_study_counts_its_paused_seconds():
    study = random_study()
    assert study.paused_seconds == 0.0
    study.pause()
    threading.Event().wait(0.05)
    study.resume()
    paused = study.paused_seconds
    assert 0.04 < paused < 1.0
    threading.Event().wait(0.02)
    assert study.paused_seconds == paused  # not paused now: it stays


def test_a_new_run_measures_its_own_pace():
    stats = RunStats()
    stats.started(0, now=0.0)
    stats.finished(_done(0))  # a slow first run: 10 s
    stats.end_run()
    stats.started(1, now=7200.0)  # Start again two hours later: trials of 1 s now
    stats.finished(_done(1))
    assert stats.eta(total=5, now=7201.0) == pytest.approx(3.0) and not stats.running


def test_a_trial_seen_both_in_study_trials_and_as_an_event_counts_once(sent, panels):
    study = random_study()
    study.optimize(lambda p: p["x"], trials=3, progress=False)
    panel = make_panel(panels, study)
    panel._on_event(TrialFinished(study.name, study.trials[0]))  # raced the panel's construction
    panel.flush()
    assert panel._stats.done == 3 and panel._view.chart.n_trials == 3


# --- controls --------------------------------------------------------------------------------------

@pytest.fixture
def running():
    """A background study whose trials wait for a gate, so it stays running while we click."""
    gate = threading.Event()
    study = random_study()
    study.optimize(lambda p: gate.wait(5) and p["x"], trials=3, background=True, progress=False)
    yield study
    study.stop()
    gate.set()
    study.wait(10)


def test_pause_resume_stop_and_more_buttons_call_the_study(sent, panels, running):
    panel = make_panel(panels, running)
    buttons = panel._view.controls
    assert not buttons.pause.disabled and not buttons.stop.disabled
    buttons.pause.click()
    assert running.paused and buttons.pause.description == "Resume"
    buttons.pause.click()
    assert not running.paused and buttons.pause.description == "Pause"
    before = running.n_target
    buttons.more.click()
    assert running.n_target == before + 10
    buttons.stop.click()
    assert running._stop.is_set()


def test_start_calls_on_start_and_is_hidden_without_it(sent, panels):
    study = random_study()
    started = []
    panel = make_panel(panels, study, on_start=lambda: started.append(True))
    start = panel._view.controls.start
    assert start.layout.display == "" and not start.disabled
    start.click()
    assert started == [True] and start.disabled  # a search is live: no second Start
    bare = make_panel(panels, random_study())
    assert bare._view.controls.start.layout.display == "none" and bare._view.controls.pause.disabled


def test_after_a_complete_run_start_is_off_and_more_trials_runs_more(sent, panels):
    study = random_study()

    def start() -> None:  # as the magic's: "+10 trials" raised the target
        study.optimize(lambda p: p["x"], trials=max(3, study.n_target), background=True, progress=False)

    panel = make_panel(panels, study, on_start=start)
    controls = panel._view.controls
    controls.start.click()
    assert study.wait(5) and study.finish_reason == "complete"
    panel.flush()
    assert controls.start.disabled and not controls.more.disabled  # Start would run no trial
    controls.more.click()
    assert study.wait(5) and len(study.trials) == 13
    panel.flush()
    assert controls.start.disabled and "13/13 trials" in controls.line.value
    release = threading.Event()
    study.optimize(lambda p: release.wait(5) and p["x"], trials=15, background=True, progress=False)
    study.stop()
    release.set()
    assert study.wait(5)
    panel.flush()
    assert study.finish_reason == "stopped" and not controls.start.disabled  # Start continues a stopped run


def test_start_failure_is_shown_in_the_panel(sent, panels):
    def broken() -> None:
        raise RuntimeError("<no objective>")

    panel = make_panel(panels, random_study(), on_start=broken)
    panel._view.controls.start.click()
    assert "&lt;no objective&gt;" in panel._view.message.value and not panel._view.controls.start.disabled


def test_algorithm_dropdown_swaps_before_start_only(sent, panels):
    study = random_study()
    study.optimize(lambda p: p["x"], trials=3, progress=False)
    panel = make_panel(panels, study, on_start=lambda: None)
    dropdown = panel._view.controls.algo
    assert dropdown.value == "random" and not dropdown.disabled
    dropdown.value = "tpe"
    assert study.algorithm.name == "tpe" and len(study.algorithm.history) == 3  # told the past trials
    panel._view.controls.start.click()
    assert dropdown.disabled


def test_pruner_dropdown_sets_the_pruner_before_start_only(sent, panels):
    study = random_study({"x": hw.uniform(0, 1)})
    study.optimize(lambda p, trial: trial.report(1, loss=p["x"]) or p["x"], trials=3, progress=False)
    panel = make_panel(panels, study, on_start=lambda: None)
    dropdown = panel._view.controls.prune
    assert dropdown.value == "none" and list(dropdown.options) == ["none", "asha", "median"]
    dropdown.value = "median"
    assert isinstance(study.pruner, hw.MedianPruner) and study.pruner._finished == {0, 1, 2}  # told the past
    dropdown.value = "none"
    assert study.pruner is None
    panel._view.controls.start.click()
    assert dropdown.disabled


def test_a_pruner_chosen_in_the_panel_stops_trials_once_start_is_pressed(sent, panels):
    def curve(params: dict, trial: hw.Trial) -> float:
        for epoch in range(1, 10):
            trial.report(epoch, loss=(params["x"] - 0.3) ** 2 + 1 / epoch)
        return (params["x"] - 0.3) ** 2 + 1 / 9
    study = random_study({"x": hw.uniform(0, 1), "epochs": hw.budget(1, 9)})
    panel = make_panel(panels, study, on_start=lambda: study.optimize(curve, 20, background=True, progress=False))
    panel._view.controls.prune.value = "asha"
    panel._view.controls.start.click()
    study.wait(30)
    states = [t.state for t in study.trials]
    assert len(states) == 20 and states.count(hw.TrialState.PRUNED) >= 10
    assert "pruned" in panel._view.controls.line.value


def test_a_refused_choice_is_named_and_both_dropdowns_show_what_the_study_uses(sent, panels):
    study = random_study({"x": hw.uniform(0, 1), "epochs": hw.budget(1, 9)}, pruner="asha")
    panel = make_panel(panels, study, on_start=lambda: None)
    controls = panel._view.controls
    assert controls.prune.value == "asha"
    controls.algo.value = "hyperband"  # hyperband has its own rungs: refused beside a pruner
    assert "cannot use &#x27;hyperband&#x27;" in panel._view.message.value and "does not combine" in \
        panel._view.message.value
    assert study.algorithm.name == "random" and controls.algo.value == "random"
    controls.prune.value = "none"
    controls.algo.value = "hyperband"
    assert study.algorithm.name == "hyperband" and study.pruner is None
    controls.prune.value = "median"
    assert "cannot use pruner &#x27;median&#x27;" in panel._view.message.value
    assert study.pruner is None and controls.prune.value == "none"


# --- trial table, modes --------------------------------------------------------------------------

def test_trial_table_escapes_user_text_and_shows_failures(sent, panels):
    space = {"x": hw.uniform(0, 1), "tag": hw.choice("<script>alert(1)</script>", "ok")}
    study = random_study(space)
    panel = make_panel(panels, study)

    def objective(p: dict) -> float:
        if p["x"] < 0.5:
            raise ValueError("<script>bad()</script>")
        return p["x"]

    study.optimize(objective, trials=12, progress=False)
    table = panel._view.table.value
    assert "<script>" not in table and "&lt;script&gt;" in table
    assert "Failed (" in table and "<details><summary>traceback</summary>" in table


def test_the_live_chart_uses_the_plot_config_of_every_other_chart():
    from pathlib import Path

    from hpwidgets.charts.figures import PLOT_CONFIG
    js = (Path(hw.__file__).parent / "ui" / "livechart.js").read_text(encoding="utf-8")
    removed = re.search(r"modeBarButtonsToRemove: \[([^\]]*)\]", js)
    assert removed is not None and re.findall(r'"(\w+)"', removed.group(1)) == PLOT_CONFIG["modeBarButtonsToRemove"]
    assert "responsive: true, displaylogo: false" in js
