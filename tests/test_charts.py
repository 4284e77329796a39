"""Chart data and plotly figure dicts, checked against hand-made trials (no plotly, no browser)."""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest

import hpwidgets as hw
from hpwidgets.charts import (
    ChartTracker,
    FigureSet,
    build_figures,
    chart_data,
    history,
    history_svg,
    learning_curves,
    parallel,
    rungs,
    slices,
)
from hpwidgets.charts.figures import GREY
from hpwidgets.trial import FrozenTrial, Report, TrialState

SPACE = hw.SearchSpace({"lr": hw.loguniform(1e-4, 1e-1), "bs": hw.choice(16, 32, 64), "m": hw.uniform(0, 1),
                        "epochs": hw.budget(1, 9)})


def trial(number: int, value: float | None, state: TrialState = TrialState.COMPLETE, *, lr: float = 1e-3,
          bs: object = 32, m: float = 0.5, epochs: int = 9, reports: tuple[float, ...] = (),
          error: str | None = None) -> FrozenTrial:
    steps = tuple(Report(i, {"acc": v}) for i, v in enumerate(reports))
    return FrozenTrial(number, state, {"lr": lr, "bs": bs, "m": m, "epochs": epochs}, value=value,
                       reports=steps, error=error)


def sample_trials() -> list[FrozenTrial]:
    return [
        trial(0, 0.5, lr=1e-3, bs=16, m=0.1, reports=(0.3, 0.5)),
        trial(1, None, TrialState.PRUNED, lr=1e-2, bs=32, m=0.2, reports=(0.2, 0.25, 0.3)),
        trial(2, None, TrialState.FAIL, error="ValueError: boom"),
        trial(3, 0.7, lr=1e-4, bs=64, m=0.9, reports=(0.4, 0.6, 0.7)),
        trial(4, 0.6, lr=5e-2, bs=16, m=0.4),
    ]


# --- history -----------------------------------------------------------------------------------

def test_history_plots_each_valued_trial_and_a_best_so_far_line_for_maximize():
    h = history(sample_trials(), maximize=True, target="acc")
    assert [p.number for p in h.points] == [0, 1, 3, 4]  # the FAIL trial has no value
    assert [p.value for p in h.points] == [0.5, 0.3, 0.7, 0.6]  # pruned: its last reported value
    assert [(b.x, b.y) for b in h.best] == [(0, 0.5), (3, 0.7), (4, 0.7)]


def test_history_best_line_minimizes_and_ignores_pruned_values():
    h = history(sample_trials(), maximize=False, target="acc")
    assert [(b.x, b.y) for b in h.best] == [(0, 0.5), (3, 0.5), (4, 0.5)]  # pruned 0.3 is not a "best"


def test_best_line_only_moves_right_when_trials_finish_out_of_order():
    h = history([trial(5, 1.0), trial(3, 0.5), trial(4, 2.0)])
    assert [b.x for b in h.best] == [5, 5, 5] and [b.y for b in h.best] == [1.0, 0.5, 0.5]


def test_hover_text_shows_the_parameters_escaped():
    point = history([trial(0, 1.0, bs="<b>x</b>")]).points[0]
    assert "lr=0.001" in point.text and "m=0.5" in point.text and "value=1" in point.text
    assert "&lt;b&gt;x&lt;/b&gt;" in point.text and "<b>x" not in point.text


def test_trials_outside_the_current_space_are_flagged_and_greyed():
    edited = SPACE.replace(m=hw.uniform(0.3, 1.0))
    data = chart_data(sample_trials(), edited, True, "acc")
    assert {p.number: p.in_space for p in data.history.points} == {0: False, 1: False, 3: True, 4: True}
    figure = FigureSet(data, "acc", True).figures(data)["history"]
    assert figure["data"][0]["marker"]["color"][:2] == [GREY, GREY]
    assert GREY not in figure["data"][0]["marker"]["color"][2:]


# --- parallel coordinates, slices, curves, rungs --------------------------------------------------

def test_parallel_coordinates_encode_log_and_choice_axes():
    par = parallel(sample_trials(), SPACE, True, "acc")
    assert [a.name for a in par.axes] == ["lr", "bs", "m"]  # the budget is not searched
    assert [a.scale for a in par.axes] == ["log", "category", "linear"]
    first = par.rows[0]
    assert first.coords == pytest.approx((-3.0, 0.0, 0.1)) and first.value == 0.5


def test_parallel_categories_grow_with_values_outside_the_space():
    narrowed = SPACE.replace(bs=hw.choice(16, 32))
    par = parallel([trial(0, 1.0, bs=64), trial(1, 1.0, bs=16)], narrowed)
    assert par.axes[1].categories == ("16", "32", "64")
    assert [r.coords[1] for r in par.rows] == [2.0, 0.0]


MIXED = (None, "None", True, "True", 1)  # distinct to the space (by repr), alike by str


def test_choice_values_alike_by_str_get_their_own_category_and_a_label_that_tells_them_apart():
    space = SPACE.replace(bs=hw.choice(*MIXED))
    trials = [trial(i, float(i), bs=v) for i, v in enumerate(MIXED)]
    labels = ("None", "'None'", "True", "'True'", "1")  # repr only where str is shared
    data = chart_data(trials, space)
    assert data.parallel.axes[1].categories == labels
    assert [r.coords[1] for r in data.parallel.rows] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert data.slices[1].xs == labels and data.slices[1].axis.categories == labels
    figures = build_figures(trials, space)
    assert figures["parallel"]["data"][0]["dimensions"][1]["ticktext"] == list(labels)
    assert figures["slices"]["layout"]["xaxis2"]["categoryarray"] == list(labels)


def test_a_value_appended_after_a_space_edit_gets_a_label_of_its_own_and_earlier_ones_keep_theirs():
    # The string "None" was drawn before the edit; labels already sent to a chart never change.
    before_edit = [trial(0, 1.0, bs="None"), trial(1, 2.0, bs=None), trial(2, 3.0, bs=32)]
    data = chart_data(before_edit, SPACE.replace(bs=hw.choice(None, 32)))
    assert data.parallel.axes[1].categories == ("None", "32", "'None'")
    assert [r.coords[1] for r in data.parallel.rows] == [2.0, 0.0, 1.0]
    assert data.slices[1].xs == ("'None'", "None", "32")
    # The other way round None's repr is taken too, so its type tells it apart.
    data = chart_data(before_edit, SPACE.replace(bs=hw.choice("None", 32)))
    assert data.parallel.axes[1].categories == ("None", "32", "None (NoneType)")
    assert [r.coords[1] for r in data.parallel.rows] == [0.0, 2.0, 1.0]
    assert data.slices[1].xs == ("None", "None (NoneType)", "32")


def test_streamed_categories_match_a_redraw_and_numpy_scalars_join_their_value():
    space = SPACE.replace(bs=hw.choice(None, 32))
    tracker = ChartTracker(space)
    added = [tracker.add(t) for t in (trial(0, 1.0, bs="None"), trial(1, 2.0, bs=np.int64(32)))]
    assert [c.row.coords[1] for c in added] == [2.0, 1.0]
    assert [dict(c.slice_xs)["bs"] for c in added] == ["'None'", "32"]
    assert tracker.category_axes()[1].categories == ("None", "32", "'None'")


def test_one_slice_per_searched_parameter():
    got = slices(sample_trials(), SPACE, True, "acc")
    assert [s.axis.name for s in got] == ["lr", "bs", "m"]
    assert got[1].xs == ("16", "32", "64", "16") and got[0].xs[0] == pytest.approx(1e-3)


def test_learning_curves_flag_pruned_trials_and_skip_trials_without_reports():
    curves = learning_curves(sample_trials(), target="acc")
    assert [c.number for c in curves] == [0, 1, 3]
    assert [c.pruned for c in curves] == [False, True, False]
    assert curves[1].steps == (0, 1, 2) and curves[1].values == (0.2, 0.25, 0.3)


def test_learning_curves_need_the_target_when_reports_hold_several_metrics():
    t = FrozenTrial(0, TrialState.COMPLETE, {"x": 1}, value=1.0, reports=(Report(0, {"a": 1.0, "b": 2.0}),))
    assert learning_curves([t], target=None) == ()
    assert learning_curves([t], target="b")[0].values == (2.0,)


def test_rungs_show_the_budget_each_trial_used():
    got = rungs(sample_trials(), SPACE, target="acc")
    assert [(r.point.number, r.budget) for r in got] == [(0, 9), (1, 3), (3, 9), (4, 9)]
    assert rungs(sample_trials(), no_budget_space(), target="acc") == ()


def no_budget_space() -> hw.SearchSpace:
    return hw.SearchSpace({k: d for k, d in SPACE.items() if k != "epochs"})


# --- figures -----------------------------------------------------------------------------------

def test_figures_are_plain_json_with_one_chart_per_kind():
    figures = build_figures(sample_trials(), SPACE, True, "acc")
    assert list(figures) == ["history", "parallel", "slices", "curves", "rungs"]
    json.dumps(figures)  # plain dicts: static HTML and the report embed them as they are
    assert figures["parallel"]["data"][0]["type"] == "parcoords"
    assert figures["slices"]["layout"]["xaxis"]["type"] == "log"
    assert figures["slices"]["layout"]["xaxis2"]["type"] == "category"
    assert "rungs" not in build_figures(sample_trials(), no_budget_space())


def test_axes_are_labelled_for_a_small_chart():
    figures = build_figures(sample_trials(), SPACE, True, "acc")
    rungs_axis = figures["rungs"]["layout"]["xaxis"]
    assert rungs_axis["tickvals"] == [1, 2, 3, 5, 9] and rungs_axis["ticktext"] == ["1", "2", "3", "5", "9"]
    assert rungs_axis["range"][0] < 0 < math.log10(9) < rungs_axis["range"][1]  # budget 1 and 9 inside, no 0.9
    assert figures["slices"]["layout"]["xaxis"]["dtick"] == 1  # lr spans 3 decades: label the decades only
    narrow = hw.SearchSpace({"lr": hw.loguniform(0.5, 2.0)})
    assert "dtick" not in build_figures([], narrow)["slices"]["layout"]["xaxis"]  # no decade inside: plotly's
    assert figures["parallel"]["data"][0]["line"]["showscale"] is False  # its bar covered the value axis


def test_log_axes_of_parallel_coordinates_tick_only_inside_their_range():
    space = hw.SearchSpace({"width": hw.int(16, 1024, log=True), "lr": hw.loguniform(1e-4, 1e-1),
                            "n": hw.loguniform(20, 90)})
    rows = [FrozenTrial(0, TrialState.COMPLETE, {"width": 64, "lr": 1e-3, "n": 30}, value=1.0)]
    width, lr, n = build_figures(rows, space)["parallel"]["data"][0]["dimensions"][:3]
    assert width["range"] == [math.log10(16), math.log10(1024)] and width["ticktext"] == ["1e2", "1e3"]
    assert lr["tickvals"] == [-4, -3, -2, -1]
    assert n["ticktext"] == ["20", "50"]  # less than two decades inside: 1, 2, 5 x 10^k
    for dim in (width, lr, n):  # a tick past the axis' end was drawn over the chart's title
        assert all(dim["range"][0] - 1e-9 <= t <= dim["range"][1] + 1e-9 for t in dim["tickvals"])


def test_parallel_coordinates_with_many_axes_take_the_full_width_with_slanted_labels():
    few = build_figures(sample_trials(), SPACE, True, "acc")["parallel"]
    assert few["layout"]["meta"] == {"hpw_full_width": False} and "labelangle" not in few["data"][0]
    wide = hw.SearchSpace({f"p{i}": hw.uniform(0, 1) for i in range(7)})  # 7 axes and the value's
    rows = [FrozenTrial(0, TrialState.COMPLETE, {f"p{i}": 0.5 for i in range(7)}, value=1.0)]
    many = build_figures(rows, wide)["parallel"]
    assert many["layout"]["meta"] == {"hpw_full_width": True} and many["data"][0]["labelangle"] == -25


def test_charts_never_import_plotly():
    code = "import hpwidgets.charts as c, sys; c.build_figures([]); print('plotly' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=".")
    assert out.stdout.strip() == "False"


def _extend(figures: dict, op: dict) -> None:
    """What ``Plotly.extendTraces(div, op.d, op.t)`` does to a figure, in Python."""
    for i, index in enumerate(op["t"]):
        for path, columns in op["d"].items():
            node = figures[op["c"]]["data"][index]
            keys = re.sub(r"\[(\d+)\]", r".\1", path).split(".")
            for key in keys[:-1]:
                node = node[int(key)] if key.isdigit() else node[key]
            node[keys[-1]].extend(columns[i])


@pytest.mark.parametrize("edited", [False, True])
def test_increments_rebuild_exactly_the_figures_drawn_from_scratch(edited):
    space = SPACE.replace(m=hw.uniform(0.3, 1.0)) if edited else SPACE
    trials = sample_trials()
    first = [trials[0]]  # a first trial outside the edited space fixes the "in space" axis
    tracker = ChartTracker(space, True, "acc")
    data = chart_data([], space, True, "acc")
    seeded = chart_data(first, space, True, "acc")
    figure_set = FigureSet(seeded if edited else data, "acc", True)
    figures = copy.deepcopy(figure_set.figures(data))
    for batch in (trials[:2], trials[2:3], trials[3:]):  # as the panel batches fast trials
        for op in figure_set.ops([tracker.add(t) for t in batch]):
            _extend(figures, op)
    full = chart_data(trials, space, True, "acc")
    expected = FigureSet(full, "acc", True).figures(full)
    assert json.dumps(figures, sort_keys=True) == json.dumps(expected, sort_keys=True)


def test_one_trials_increment_does_not_grow_with_the_history():
    tracker = ChartTracker(SPACE, True, "acc")
    figure_set = FigureSet(chart_data([], SPACE, True, "acc"), "acc", True)
    sizes = []
    for n in range(1000):
        ops = figure_set.ops([tracker.add(trial(n, 0.5 + (n % 7) / 100, reports=(0.1, 0.2, 0.3)))])
        sizes.append(len(json.dumps(ops)))
    assert sizes[999] <= sizes[9] * 1.05
    history_op = figure_set.ops([tracker.add(trial(1000, 0.4))])[0]
    assert history_op["c"] == "history" and history_op["d"]["x"] == [[1000]]  # only the new point


def test_history_svg_draws_every_point_and_escapes_the_title():
    svg = history_svg(history(sample_trials(), True, "acc"), title="<acc>", value_label="<b>acc</b>")
    assert svg.count("<circle") == 4 and "<polyline" in svg and "&lt;acc&gt;" in svg
    assert 'transform="rotate(-90' in svg and ">&lt;b&gt;acc&lt;/b&gt;</text>" in svg  # the y axis, as text
    assert "no trials yet" in history_svg(history([]))


def test_non_finite_or_missing_coordinates_drop_the_parallel_row_only():
    t = FrozenTrial(0, TrialState.COMPLETE, {"lr": 1e-3, "bs": 16}, value=1.0)
    data = chart_data([t], SPACE)
    assert data.parallel.rows == () and len(data.history.points) == 1
    assert not math.isnan(data.history.points[0].value)
