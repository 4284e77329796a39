"""Drive one open notebook (JupyterLab or Notebook 7) through ``window.jupyterapp`` and the panel's DOM.

Both frontends share JupyterLab's notebook plugin, so the same commands (``notebook:run-cell``)
and the same widget tree (``shell.currentWidget`` is the NotebookPanel) work in each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
from browser_server import KERNEL
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

TRIAL_SLEEP_S = 0.25
# Many trials, so the search is surely still running while a slow machine draws the first
# points and the test drags a slider; the test presses Stop long before the end.
TRIALS = 200
STATE_MARK = "HPW-STATE"

# The panel's DOM, as hpwidgets/ui builds it (CSS classes added with add_class).
DASHBOARD = ".hpw-dashboard"
HISTORY_POINTS = ".hpw-chart-history .scatterlayer .trace .points path.point"
PROGRESS_LINE = ".hpw-progress-line"
STOP = "button.hpw-stop"
PRUNER = ".hpw-prune select"  # the ipywidgets Dropdown renders a <select>
EXPLAINER_PLOTS = ".hpw-explainer .hpw-explainer-figure .main-svg"  # plotly's SVG, once a figure is drawn
SPACE_HEADER = ".hpw-space-accordion .jupyter-widget-Collapse-header"
SLIDER_TRACK = ".hpw-dim-{name} .noUi-target"
SLIDER_UPPER = ".hpw-dim-{name} .noUi-handle-upper"
GREY = "rgb(200, 200, 200)"  # charts/figures.py GREY (#c8c8c8): a trial outside the edited space
CHARTS = ".hpw-charts"  # one per live chart view (ui/livechart.js)
# JS: per chart view, [chart name, box width, plotly's SVG width or null] of each shown chart.
_CHART_WIDTHS = """(sel) => Array.from(document.querySelectorAll(sel), (view) =>
    Array.from(view.querySelectorAll('.hpw-chart')).filter((d) => d.style.display !== 'none').map((d) => {
        const svg = d.querySelector('.main-svg');
        return [d.dataset.chart, d.clientWidth, svg ? Number(svg.getAttribute('width')) : null]; }))"""

# JS: the open notebook panel (the same expression works in both apps).
_PANEL = "window.jupyterapp.shell.currentWidget"


def tuning_notebook() -> nbformat.NotebookNode:
    """Cell 0 loads the extension, cell 1 tunes (background search), cell 2 reports the study as JSON,
    cell 3 shows its explainer, cell 4 shows its panel again."""
    tune = (f"%%hptune --algo random --prune median --trials {TRIALS} --seed 0 --maximize acc --name browser "
            f"--storage none -o study\n"
            f"x = hp.uniform(0, 1)\nimport time\ntime.sleep({TRIAL_SLEEP_S})  # time to watch points appear\n"
            f"acc = 1 - (x - 0.3) ** 2")
    report = ("import json\nstudy.wait(30)\n"
              f"print({STATE_MARK!r}, json.dumps({{'n': len(study.trials), 'running': study.running, "
              "'reason': study.finish_reason, 'x': study.space['x'].to_dict(), "
              "'last_x': study.trials[-1].params['x']}))")
    explain = "from hpwidgets import explain\nexplain.show(study)  # random search: the GP view; drawn once"
    cells = ["%load_ext hpwidgets", tune, report, explain, "%hptune show browser"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "hpwidgets browser test", "language": "python"}
    return nb


def write_notebook(root: Path, name: str) -> str:
    """Write the tuning notebook as ``root/name``; its path relative to the server root."""
    nbformat.write(tuning_notebook(), root / name)
    return name


class NotebookPage:
    """A Playwright page showing one notebook, with the few actions the browser tests need."""

    def __init__(self, page: Page, path: str) -> None:
        self.page, self.path = page, path

    # --- the notebook ---------------------------------------------------------------------------
    def open(self, url: str, timeout_s: float = 120) -> None:
        """Load the app and wait until the notebook's kernel is connected and idle."""
        self.page.goto(url, wait_until="domcontentloaded", timeout=timeout_s * 1000)
        self.wait_until(f"() => window.jupyterapp && {_PANEL} && {_PANEL}.sessionContext && "
                        f"{_PANEL}.context && {_PANEL}.context.path === {json.dumps(self.path)}",
                        None, timeout_s, f"{url} never showed the notebook {self.path} (window.jupyterapp "
                        "exposed? the server needs expose_app_in_browser)")
        self.wait_kernel_idle(timeout_s)

    def kernel_status(self) -> str:
        return str(self.page.evaluate(f"() => {_PANEL}.sessionContext.kernelDisplayStatus"))

    def wait_kernel_idle(self, timeout_s: float = 120, steady_s: float = 1.5) -> None:
        """Idle for ``steady_s`` in a row: right after start the status flaps idle -> connecting -> idle."""
        deadline, idle_since = time.monotonic() + timeout_s, None
        while time.monotonic() < deadline:
            now = time.monotonic()
            idle_since = (idle_since or now) if self.kernel_status() == "idle" else None
            if idle_since is not None and now - idle_since >= steady_s:
                return
            time.sleep(0.2)
        raise AssertionError(f"kernel not idle after {timeout_s:.0f}s (status {self.kernel_status()!r})")

    def run_cell(self, index: int, timeout_s: float = 60) -> None:
        """Run cell ``index`` as the Run button would, and wait for the kernel's reply (its count)."""
        self.page.evaluate(
            """async (index) => {
                const panel = window.jupyterapp.shell.currentWidget;
                panel.content.activeCellIndex = index;
                panel.content.deselectAll();
                await window.jupyterapp.commands.execute('notebook:run-cell');
            }""", index)
        self.wait_until(f"(i) => {_PANEL}.content.widgets[i].model.executionCount !== null", index,
                        timeout_s, f"cell {index} never finished")

    def outputs(self, index: int) -> list[dict[str, Any]]:
        return list(self.page.evaluate(f"(i) => {_PANEL}.content.widgets[i].model.outputs.toJSON()", index))

    def output_text(self, index: int) -> str:
        """Stream text, errors and plain-text results of cell ``index`` (for asserts and messages)."""
        parts = []
        for out in self.outputs(index):
            text = out.get("text") or out.get("data", {}).get("text/plain") or out.get("traceback") or ""
            parts.append("".join(text) if isinstance(text, list) else str(text))
        return "\n".join(parts)

    def describe(self) -> str:
        """Every cell's output and the panel's progress line: context for a failure message."""
        try:
            cells = self.page.evaluate(f"() => {_PANEL}.content.widgets.length")
        except PlaywrightError as error:  # no notebook on the page (yet): say so, keep the real failure
            return f"no notebook on the page ({error.message.splitlines()[0]})"
        text = [f"cell {i}: {self.output_text(i)[-1500:]!r}" for i in range(cells)]
        line = self.page.locator(PROGRESS_LINE)
        text.append(f"progress line: {line.first.inner_text() if line.count() else '(no panel)'}")
        text.append(f"history chart points: {self.point_count()}")
        return "\n".join(text)

    def study_state(self, cell: int, timeout_s: float = 60) -> dict[str, Any]:
        """Run the reporting cell and decode the JSON it prints after ``STATE_MARK``."""
        self.run_cell(cell, timeout_s)
        text = self.output_text(cell)
        assert STATE_MARK in text, f"the report cell printed no state:\n{self.describe()}"
        return dict(json.loads(text.split(STATE_MARK, 1)[1].strip().splitlines()[0]))

    # --- the hpwidgets panel --------------------------------------------------------------------
    def point_count(self) -> int:
        """Markers in the optimisation-history chart: one per complete trial."""
        return self.page.locator(HISTORY_POINTS).count()

    def wait_until(self, predicate_js: str, arg: Any, timeout_s: float, what: str) -> None:
        """Poll ``predicate_js(arg)`` in the page; on timeout fail saying ``what`` and what the notebook shows."""
        try:
            self.page.wait_for_function(predicate_js, arg=arg, timeout=timeout_s * 1000, polling=100)
        except PlaywrightTimeout as error:
            raise AssertionError(f"{what} (waited {timeout_s:.0f}s):\n{self.describe()}") from error

    def wait_points(self, at_least: int, timeout_s: float = 90) -> int:
        """Wait (in the page, no fixed sleep) until the history chart shows ``at_least`` markers."""
        self.wait_until("([sel, n]) => document.querySelectorAll(sel).length >= n", [HISTORY_POINTS, at_least],
                        timeout_s, f"the history chart never reached {at_least} points")
        return self.point_count()

    def grey_points(self) -> int:
        return int(self.page.evaluate(
            "([sel, grey]) => Array.from(document.querySelectorAll(sel)).filter(p => p.style.fill === grey).length",
            [HISTORY_POINTS, GREY]))

    def wait_grey_points(self, timeout_s: float = 30) -> int:
        """Trials outside an edited space turn grey once the kernel has applied the edit."""
        self.wait_until("([sel, grey]) => Array.from(document.querySelectorAll(sel)).some(p => p.style.fill === grey)",
                        [HISTORY_POINTS, GREY], timeout_s, "no point turned grey after the slider edit")
        return self.grey_points()

    def drag_upper_handle(self, name: str, fraction: float) -> float:
        """Drag the upper handle of dimension ``name``'s range slider to ``fraction`` of its track.

        The slider sits in the collapsed "Search space" accordion, so open it first. Returns the
        value the slider shows afterwards (its ``aria-valuenow``).
        """
        track, handle = self.page.locator(SLIDER_TRACK.format(name=name)), self.page.locator(
            SLIDER_UPPER.format(name=name))
        if not track.is_visible():
            self.page.locator(SPACE_HEADER).click()
        track.wait_for(state="visible")
        handle.scroll_into_view_if_needed()
        box, knob = track.bounding_box(), handle.bounding_box()
        assert box is not None and knob is not None, "the slider is not laid out"
        y = knob["y"] + knob["height"] / 2
        self.page.mouse.move(knob["x"] + knob["width"] / 2, y)
        self.page.mouse.down()
        self.page.mouse.move(box["x"] + box["width"] * fraction, y, steps=12)  # a drag, not a jump
        self.page.mouse.up()
        return float(handle.get_attribute("aria-valuenow") or "nan")

    def pruner_choice(self) -> tuple[str, bool]:
        """The pruner dropdown's shown value, and whether it is disabled."""
        select = self.page.locator(PRUNER)
        return select.input_value(), select.is_disabled()

    def wait_explainer(self, timeout_s: float = 60) -> int:
        """Wait until the explainer widget has drawn a figure; how many of its figures are drawn."""
        self.wait_until("(sel) => document.querySelectorAll(sel).length > 0", EXPLAINER_PLOTS, timeout_s,
                        "the explainer drew no figure")
        return int(self.page.evaluate(
            "(sel) => new Set(Array.from(document.querySelectorAll(sel), svg => "
            "svg.closest('.hpw-explainer-figure'))).size", EXPLAINER_PLOTS))

    def explainer_count(self) -> int:
        """Explainer widgets in the page (a cell ending in ``explain.show(...)`` must draw one)."""
        return int(self.page.evaluate("() => document.querySelectorAll('.hpw-explainer').length"))

    def press_stop(self, timeout_s: float = 30) -> None:
        """Click Stop and wait until the panel says the search ended as stopped."""
        self.page.locator(STOP).click()
        self.wait_until("(sel) => (document.querySelector(sel)?.innerText || '').includes('stopped')",
                        PROGRESS_LINE, timeout_s, "the panel never said 'stopped' after Stop")

    def screenshot(self, path: Path) -> None:
        """The viewport with the panel scrolled to its top (an element shot of a scrolled notebook tears)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        panel = self.page.locator(DASHBOARD)
        if panel.count():
            panel.first.evaluate("el => el.scrollIntoView({block: 'start'})")
        self.page.screenshot(path=str(path))


def wait_charts_fit(page: Page, views: int, timeout_s: float = 15) -> list[list[list[Any]]]:
    """Wait until ``views`` chart views are drawn and every shown chart's SVG fits its box; their widths.

    A plotly SVG wider than its box is clipped: its right part (later trials, the title's end) is hidden.
    """
    fits = (f"([sel, n]) => {{ const views = ({_CHART_WIDTHS})(sel); return views.length >= n && views.every("
            "(v) => v.length > 0 && v.every(([, box, svg]) => svg !== null && box > 0 && svg <= box + 1)); }")
    try:
        page.wait_for_function(fits, arg=[CHARTS, views], timeout=timeout_s * 1000, polling=100)
    except PlaywrightTimeout:
        widths = page.evaluate(_CHART_WIDTHS, CHARTS)
        raise AssertionError(f"after {timeout_s:.0f}s a chart's SVG is still wider than its box (or undrawn), "
                             f"per view [chart, box px, SVG px]: {widths}") from None
    return list(page.evaluate(_CHART_WIDTHS, CHARTS))


OpenNotebook = Callable[[str, str], NotebookPage]  # the conftest fixture: (app URL path, notebook name)
