"""The one scenario both frontends must pass: live points, the pruner shown, a slider drag that reaches
Python, Stop, the panel shown again with charts that fit their boxes, the study's explainer drawn once,
and a re-run cell that stops its own search. Also the chart and explainer modules in a blank page."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from browser_notebook import TRIAL_SLEEP_S, TRIALS, NotebookPage, wait_charts_fit
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

# Proving that *no* point appears needs a window of time: several trial durations after the
# chart has caught up with the stopped study (it redraws at most every 0.1 s; ui/livechart.js).
STOP_GRACE_S = 4 * TRIAL_SLEEP_S
DRAG_TO = 0.5  # the upper handle of x goes to the middle of its track


def start_search(nb: NotebookPage) -> None:
    """Load the extension and run the %%hptune cell; the cell returns while trials run."""
    nb.run_cell(0)
    assert "Error" not in nb.output_text(0), f"%load_ext failed:\n{nb.describe()}"
    nb.run_cell(1)


def check_points_grow(nb: NotebookPage) -> None:
    first = nb.wait_points(1)
    later = nb.wait_points(first + 2)
    assert later > first, f"the chart did not grow: {first} then {later} points"
    problems = [word for word in ("Traceback", "panel failed") if word in nb.output_text(1)]
    assert not problems, f"the %%hptune cell reported {problems}:\n{nb.describe()}"
    choice = nb.pruner_choice()  # --prune median, locked while the search runs
    assert choice == ("median", True), f"the pruner dropdown shows {choice}, expected ('median', disabled)"


def drag_slider(nb: NotebookPage) -> float:
    """Narrow x to about [0, 0.5] by dragging; wait until the kernel applied it (grey points).

    With ``--seed 0`` the first trials include x > 0.5, so some points must turn grey.
    """
    shown = nb.drag_upper_handle("x", DRAG_TO)
    assert abs(shown - DRAG_TO) < 0.1, f"the dragged slider shows {shown}, expected about {DRAG_TO}"
    grey = nb.wait_grey_points()
    assert grey > 0, "no trial turned grey after narrowing the space"
    nb.wait_points(nb.point_count() + 2)  # at least one trial suggested from the edited space
    return shown


def check_stop(nb: NotebookPage) -> dict[str, Any]:
    """Stop: the panel says so, a later cell sees a stopped study, and the chart ends at its trial count.

    The "stopped" text may arrive a moment before the last trial's point (the panel sends text
    and chart updates separately), so the chart is compared with Python's count, not with itself.
    """
    nb.press_stop()
    state = nb.study_state(2)
    assert state["reason"] == "stopped" and state["running"] is False, f"study not stopped: {state}"
    assert state["n"] < TRIALS, f"Stop came too late to prove anything: {state}"
    nb.wait_points(state["n"], timeout_s=30)
    time.sleep(STOP_GRACE_S)
    points = nb.point_count()
    assert points == state["n"], f"the chart shows {points} points but Python has {state['n']} trials after Stop"
    return state


def check_space(state: dict[str, Any], shown: float) -> None:
    """The dragged range is the study's space in Python, and the last trial was drawn from it."""
    x = state["x"]
    assert x["low"] == 0 and abs(x["high"] - shown) < 0.02, f"x is {x} in Python; the slider shows 0 … {shown}"
    assert 0 <= state["last_x"] <= x["high"], f"the last trial ignored the edited space: {state}"


def check_shown_panel_fits(nb: NotebookPage) -> None:
    """`%hptune show` of the stopped study: a second panel whose first draw holds every chart, and each
    chart's SVG fits its box (the history chart, drawn while still alone in its row, kept the row's width)."""
    nb.run_cell(4)
    assert "Error" not in nb.output_text(4), f"%hptune show failed:\n{nb.describe()}"
    views = wait_charts_fit(nb.page, 2)
    names = {chart[0] for chart in views[-1]}
    assert {"history", "parallel"} <= names, f"the shown panel draws {names}: no two charts share a row"


def check_explainer(nb: NotebookPage) -> None:
    """The stopped study's explainer (an anywidget sharing the panel's plotly.js) draws its figures."""
    nb.run_cell(3)
    assert "Error" not in nb.output_text(3), f"the explainer cell failed:\n{nb.describe()}"
    drawn = nb.wait_explainer()
    assert drawn == 1, f"the GP explainer of a 1-D space draws one figure (its cut along x), but {drawn} were drawn"
    shown = nb.explainer_count()
    assert shown == 1, f"a cell ending in explain.show(study) drew {shown} explainers, not one"


def check_rerun(nb: NotebookPage) -> None:
    """Re-running the %%hptune cell (the frontend sends its cell id) stops the search it started."""
    nb.run_cell(1)  # the stopped study 'browser' again: a search to be replaced
    nb.wait_points(1)
    nb.run_cell(1)
    text = nb.output_text(1)
    assert "hpwidgets: stopped this cell's previous search 'browser' after" in text, \
        f"re-running the cell did not stop its search:\n{nb.describe()}"


def check_live_panel(nb: NotebookPage, screenshot: Path) -> None:
    start_search(nb)
    check_points_grow(nb)
    shown = drag_slider(nb)
    state = check_stop(nb)
    nb.screenshot(screenshot)  # the stopped panel: grey out-of-range points, the opened slider
    check_space(state, shown)
    check_shown_panel_fits(nb)
    check_explainer(nb)
    check_rerun(nb)


# JS: an explainer, then (without a kernel) a panel's chart drawn into a detached element and attached
# afterwards, as a notebook reopened from saved widget state mounts them. Fake anywidget models; with
# `kernel`, the explainer's request for plotly.js is answered as Python answers it. What the widgets sent.
_MOUNT_WIDGETS = """async ({livechart, explainer, plotly, snapshot, figures, kernel}) => {
    const load = async (src) => (await import(URL.createObjectURL(new Blob([src], {type: 'text/javascript'})))).default;
    const sent = [];
    const fakeModel = (state) => {
        const handlers = {};
        const emit = (event) => (handlers[event] || []).forEach((fn) => fn());
        return {get: (key) => state[key], on: (event, fn) => (handlers[event] = handlers[event] || []).push(fn),
                off: (event, fn) => (handlers[event] = (handlers[event] || []).filter((h) => h !== fn)),
                send: (msg) => {
                    sent.push(msg.type);
                    if (!kernel || msg.type !== 'need_plotly') return;
                    setTimeout(() => { state.plotly_js = plotly; emit('change:plotly_js'); });
                }};
    };
    const above = document.body.appendChild(document.createElement('div'));
    (await load(explainer)).render({model: fakeModel({plotly_js: '', figures}), el: above});  // waits for plotly.js
    if (!kernel) {
        const el = document.createElement('div');
        await (await load(livechart)).render({model: fakeModel({plotly_js: plotly, snapshot}), el});
        document.getElementById('row').appendChild(el);
    }
    return sent;
}"""


def blank_page_widgets() -> dict[str, Any]:
    """The two anywidget modules, plotly.js, and a finished 1-D study's chart snapshot and GP figures."""
    import hpwidgets as hw
    from hpwidgets.explain.live import _ESM, Explainer
    from hpwidgets.ui.livechart import LiveChart

    study = hw.Study(space={"x": hw.uniform(0, 1)}, algo="random", seed=4, storage=None)
    study.optimize(lambda params: (params["x"] - 0.3) ** 2, trials=12, progress=False)
    chart = LiveChart(study.space, trials=study.trials)
    figures = json.dumps(Explainer(study, "gp", mode="static").figures())
    return {"livechart": LiveChart._esm, "explainer": _ESM, "plotly": chart.plotly_js, "snapshot": chart.snapshot,
            "figures": figures}


def check_widgets_in_blank_page(page: Page, kernel: bool) -> None:
    """With a kernel, an explainer draws from the plotly.js it asks for. Without one (a reopened notebook),
    an explainer above a panel draws once the panel's chart loads plotly.js, and that chart, drawn before
    it was attached, fits its 1000 px row once attached."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_content('<body style="margin:0"><div id="row" style="width:1000px"></div></body>')
    sent = page.evaluate(_MOUNT_WIDGETS, {**blank_page_widgets(), "kernel": kernel})
    assert "need_plotly" in sent, f"the explainer, alone with no plotly.js, did not ask for it: it sent {sent}"
    try:
        page.wait_for_function("() => document.querySelector('.hpw-explainer .main-svg')", timeout=15_000)
    except PlaywrightTimeout:
        raise AssertionError(f"the explainer never drew (kernel={kernel}; sent {sent}; errors {errors})") from None
    if not kernel:
        views = wait_charts_fit(page, 1)
        assert {"history", "parallel"} <= {chart[0] for chart in views[0]}, f"charts drawn: {views}"
