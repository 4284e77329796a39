"""The two faces of a Dashboard: live widgets, or a static figure and a progress line.

``WidgetView`` needs a widget frontend (JupyterLab, Notebook 7, VS Code, Colab). ``StaticView``
is for everything else (plain IPython, a script, ``HPWIDGETS_DASHBOARD=static``): a display
handle updated in place at most once a second whose richest form is HTML holding the progress
line and an SVG of the history (nbconvert keeps it, no JavaScript needed) and whose plain form
is the progress line alone (a terminal prints just that).
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..algorithms.pruners import pruner_name
from ..charts.data import History, chart_data
from ..charts.svg import history_svg
from ..trial import FrozenTrial
from .summary import table_html

if TYPE_CHECKING:
    from ..study import Study
    from .controls import ControlState
    from .panel import Dashboard

STATIC_EVERY_S = 1.0
STATIC_DOTS = 1000  # trial dots in the static face's SVG: past it each update's bytes would grow with the study
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def colab_metadata() -> dict[str, Any]:
    """Display metadata that makes Colab draw third-party widgets (anywidget's chart among them):
    its custom widget manager switched on and named per output, as anywidget does for its own
    widgets. Empty outside Colab (no ``google.colab.output`` imported), so nothing changes there."""
    output = sys.modules.get("google.colab.output")
    if output is None:
        return {}
    output.enable_custom_widget_manager()
    url = getattr(getattr(output, "_widgets", None), "_installed_url", None)
    return {WIDGET_MIME: {"colab": {"custom_widget_manager": {"url": url}}}} if url else {}


def widget_bundle(widget: Any, **kwargs: Any) -> Any:
    """A widget's MIME bundle, with Colab's metadata beside it where there is some."""
    data = widget._repr_mimebundle_(**kwargs)
    metadata = colab_metadata() if data else {}
    return (data, metadata) if metadata else data


def close_tree(widget: Any) -> None:
    """Close a widget and every widget below it (Box.close leaves its children open)."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    widget.close()


class WidgetView:
    """ipywidgets + the anywidget chart; the root is ``self.root`` (a VBox, CSS class ``hpw-dashboard``)."""

    def __init__(self, dash: Dashboard, edit: bool, trials: Sequence[FrozenTrial]) -> None:
        import ipywidgets as w

        from .controls import Controls
        from .livechart import LiveChart
        from .sliders import SpaceEditor

        study = dash.study
        self.editor = SpaceEditor(study.space)
        self.editor.on_change(dash._space_edited)
        self.controls = Controls(study.algorithm.name, pruner_name(study.pruner))
        self.controls.wire(dash._start, dash._toggle_pause, dash._stop, dash._more, dash._swap, dash._set_pruner)
        self.chart = LiveChart(study.space, maximize=study.maximize, target=study.target, trials=trials)
        self.table = w.HTML("")
        self.table.add_class("hpw-table-widget")
        self.message = w.HTML("")
        self.message.add_class("hpw-message")
        # Open: the sliders are half the point of the panel; the header folds them away.
        space = w.Accordion(children=[self.editor.widget], titles=("Search space",), selected_index=0)
        space.add_class("hpw-space-accordion")
        target = f" {study.target}" if study.target else ""
        title = w.HTML(f"<b>{html.escape(study.name)}</b> · {study.direction}{html.escape(target)}")
        title.add_class("hpw-title")
        if edit:
            title.value += " · <i>edit the search space, then press Start</i>"
        self.root = w.VBox([title, self.controls.widget, self.message, space, self.chart, self.table])
        self.root.add_class("hpw-dashboard")

    def update(self, finished: Sequence[FrozenTrial], ended: bool) -> None:
        if finished:
            self.chart.push(finished)
        if ended:
            self.chart.sync_snapshot()  # the saved notebook keeps the final figures

    def show_table(self, dash: Dashboard) -> None:
        self.table.value = table_html(dash._stats, list(dash.study.space))

    def show_progress(self, done: int, total: int, line: str, state: ControlState) -> None:
        self.controls.set_progress(done, total, html.escape(line))
        self.controls.refresh(state)

    def show_message(self, text: str) -> None:
        self.message.value = f'<span style="color:#c62828">{html.escape(text)}</span>' if text else ""

    def space_changed(self, space: Any) -> None:
        self.chart.set_space(space)

    def show_choices(self, study: Study) -> None:
        """The dropdowns back on what the study uses (after a refused choice)."""
        self.controls.choose(study.algorithm.name, pruner_name(study.pruner))

    def checkpoint(self) -> None:
        """Bring the saved-notebook state (the chart snapshot) up to date now."""
        self.chart.sync_snapshot()

    def close(self) -> None:
        close_tree(self.root)


def _stride(indices: Sequence[int], n: int) -> set[int]:
    """At most ``n`` of ``indices``, evenly spread."""
    return {indices[k * len(indices) // n] for k in range(n)} if len(indices) > n else set(indices)


def capped(history: History, dots: int = STATIC_DOTS) -> History:
    """``history`` as the static face draws it: the best-so-far line with only its corners (the same
    line), and at most ``dots`` trial dots: the first and last, the lowest and highest, the trials
    that set a new best (evenly spread when even they are too many), then an even stride of the rest."""
    best = tuple(b for i, b in enumerate(history.best)
                 if i in (0, len(history.best) - 1) or b.y != history.best[i - 1].y)
    points = history.points
    if len(points) <= dots:
        return History(points, best)
    values = [p.value for p in points]
    keep = {0, len(points) - 1, values.index(min(values)), values.index(max(values))}
    first_at: dict[float, int] = {}
    for i, value in enumerate(values):
        first_at.setdefault(value, i)
    setters = sorted({first_at[b.y] for b in best if b.y in first_at} - keep)
    keep |= _stride(setters, dots - len(keep))
    keep |= _stride([i for i in range(len(points)) if i not in keep], dots - len(keep))
    return History(tuple(points[i] for i in sorted(keep)), best)


class StaticView:
    """A display handle updated in place (throttled), or a ``\\r`` line outside IPython."""

    def __init__(self, dash: Dashboard) -> None:
        self._dash = dash
        self._handle: Any = None
        self._shown = False
        self._last = 0.0
        self._line = ""

    def bundle(self) -> dict[str, str]:
        study = self._dash.study
        history = chart_data(study.trials, study.space, study.maximize, study.target).history
        drawn = capped(history)
        title = "Optimization history"
        if len(drawn.points) < len(history.points):
            title += f" ({len(drawn.points)} of {len(history.points)} trials drawn)"
        svg = history_svg(drawn, title, value_label=study.target or "value")
        return {"text/plain": self._line,
                "text/html": f'<div class="hpw-static"><div class="hpw-progress-line">{html.escape(self._line)}'
                             f"</div>{svg}</div>"}

    def show(self) -> None:
        self._shown = True
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            get_ipython = None  # plain Python: the \r line below
        if get_ipython is not None and get_ipython() is not None:
            self._handle = display(self.bundle(), raw=True, display_id=True)
        else:
            self._write(final=False)

    def update(self, finished: Sequence[FrozenTrial], ended: bool) -> None:
        now = time.monotonic()
        if not self._shown or (not ended and now - self._last < STATIC_EVERY_S):
            return
        self._last = now
        if self._handle is not None:
            self._handle.update(self.bundle(), raw=True)
        else:
            self._write(final=ended)

    def _write(self, final: bool) -> None:
        sys.stdout.write("\r" + self._line + ("\n" if final else ""))
        sys.stdout.flush()

    def show_table(self, dash: Dashboard) -> None:
        """No table in the static face: the report (``hptune report``) has it."""

    def show_progress(self, done: int, total: int, line: str, state: ControlState) -> None:
        self._line = line

    def show_message(self, text: str) -> None:
        if text:
            sys.stderr.write(f"hpwidgets: {text}\n")

    def space_changed(self, space: Any) -> None:
        """Nothing to regrey until the next update."""

    def show_choices(self, study: Study) -> None:
        """No dropdowns in the static face."""

    def checkpoint(self) -> None:
        """The static face keeps no widget state."""

    def close(self) -> None:
        self._shown = False
