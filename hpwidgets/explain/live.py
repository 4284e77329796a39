"""``Explainer``: an explainer that redraws itself after each finished trial of a study.

In a notebook kernel with anywidget it is a small widget (plotly.js from the plotly package, the
same page-wide copy the dashboard's live chart loads; no CDN) whose ``figures`` trait is replaced
per update. Its size is bounded by the grids, not the history, so bytes per update stay flat.
Elsewhere it is a display handle updated in place holding the plotly figures and a text summary;
in a plain Python script, where nothing can be updated in place, ``show()`` prints that summary.

A finished trial only marks the figures stale: a refresher thread of the explainer's own redraws
them, one refresh at a time, ``every_s`` seconds after the end of the last one, from the studies as
they are then. So however long a refresh takes, a trial's thread never waits on one. The end of a
search (StudyFinished, on the search's driver thread) refreshes at once, before ``optimize`` returns,
so a finished study's explainer shows every trial.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..charts.assets import widget_esm
from ..charts.figures import PLOT_CONFIG
from ..events import Event, StudyFinished, TrialFinished
from .study import check_params, explain_figures, explain_text, resolve_kind

if TYPE_CHECKING:
    from ..study import Study

PLOTLY_MIME = "application/vnd.plotly.v1+json"
log = logging.getLogger(__name__)

_ESM = r"""
const PLOT_CONFIG = @PLOT_CONFIG@;
function explainerPlotly(model) {  // loadPlotly and sharedPlotly: ui/plotly_loader.js, which comes first
  if (!sharedPlotly().started && !model.get("plotly_js")) {  // ask Python for the bundle only when no panel loaded it
    model.on("change:plotly_js", () => loadPlotly(model.get("plotly_js")));
    try {
      model.send({ type: "need_plotly" });
    } catch (err) {  // no kernel (a reopened notebook): a panel's chart may still load the bundle
      console.debug("hpwidgets: could not ask for plotly.js", err);
    }
  }
  return loadPlotly(model.get("plotly_js"));
}
async function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "hpw-explainer";
  el.appendChild(root);
  const Plotly = await explainerPlotly(model);
  const draw = () => {
    const figures = JSON.parse(model.get("figures") || "[]");
    while (root.children.length > figures.length) { Plotly.purge(root.lastChild); root.lastChild.remove(); }
    figures.forEach((fig, i) => {
      let div = root.children[i];
      if (!div) { div = document.createElement("div"); div.className = "hpw-explainer-figure"; root.appendChild(div); }
      Plotly.react(div, fig.data, fig.layout, PLOT_CONFIG);
    });
  };
  draw();
  model.on("change:figures", draw);
  return () => model.off("change:figures", draw);
}
export default { render };
""".replace("@PLOT_CONFIG@", json.dumps(PLOT_CONFIG))
_ESM = widget_esm(_ESM)


def _widget_class() -> Any:
    """The anywidget class, built on first use (anywidget is an optional dependency)."""
    global _WIDGET
    if _WIDGET is None:
        import anywidget
        import traitlets

        from ..charts.assets import plotly_js

        class ExplainerWidget(anywidget.AnyWidget):
            _esm = _ESM
            plotly_js = traitlets.Unicode("").tag(sync=True)
            figures = traitlets.Unicode("[]").tag(sync=True)

            def __init__(self, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self.on_msg(self._on_frontend_msg)

            def _on_frontend_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
                if isinstance(content, dict) and content.get("type") == "need_plotly":
                    self.plotly_js = plotly_js()

        _WIDGET = ExplainerWidget
    return _WIDGET


_WIDGET: Any = None


def _shell() -> Any:
    import sys
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def _cell_number() -> int | None:
    return getattr(_shell(), "execution_count", None)


def _in_kernel() -> bool:
    return getattr(_shell(), "kernel", None) is not None


class LiveFigures:
    """Figures recomputed from studies after their trials finish: the widget or display handle, the
    throttle and the subscriptions. Subclasses give ``figures()`` and ``text()``."""

    def __init__(self, studies: Sequence[Study], *, every_s: float = 1.0, mode: str = "auto") -> None:
        if mode not in ("auto", "widget", "static"):
            raise ValueError(f"`mode` must be 'auto', 'widget' or 'static', but got mode={mode!r}")
        self.every_s = every_s
        self.widget: Any = None
        if mode == "widget" or (mode == "auto" and _in_kernel()):
            try:
                self.widget = _widget_class()()
            except ImportError:  # no anywidget: the static face still explains
                self.widget = None
        self._handle: Any = None
        self._shown_in: int | None = None  # the cell (execution count) whose show() drew it
        self._lock = threading.Lock()  # one refresh at a time
        self._stale = threading.Condition()  # guards the three below; wakes a waiting refresher
        self._dirty = False  # a trial finished since the last refresh began
        self._closed = False
        self._refresher: threading.Thread | None = None
        self._last = 0.0  # when the last refresh ended
        self.refresh()
        self._unsubscribe = [study.subscribe(self._on_event) for study in studies]

    def figures(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError

    def refresh(self) -> None:
        """Recompute and redraw now, on the calling thread (StudyFinished calls it; so may tests)."""
        with self._lock:
            self._redraw()

    def _redraw(self) -> None:  # with self._lock held
        with self._stale:
            self._dirty = False  # trials that finish from here on need another refresh
            self._stale.notify_all()  # a waiting refresher has nothing left to do: it ends
        try:
            if self.widget is not None:
                self.widget.figures = json.dumps(self.figures(), separators=(",", ":"), allow_nan=False)
            elif self._handle is not None:
                self._handle.update(self._bundle(), raw=True)
        finally:
            self._last = time.monotonic()

    def show(self) -> None:
        """Display in the current output; later trials update it in place. Outside IPython (a
        plain script) it prints the text summary once: IPython's display would print the raw
        bundle there, plotly JSON and all."""
        if self.widget is None and _shell() is None:
            print(self.text())
            return
        from IPython.display import display
        self._shown_in = _cell_number()
        if self.widget is not None:
            display(self.widget)
        else:
            self._handle = display(self._bundle(), raw=True, display_id=True)

    def close(self) -> None:
        """Stop following the studies (and close the widget)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        with self._stale:
            self._closed = True
            self._stale.notify_all()
        if self.widget is not None:
            self.widget.close()

    def _bundle(self) -> dict[str, Any]:
        figures = self.figures()
        bundle: dict[str, Any] = {"text/plain": self.text()}
        if figures:
            bundle[PLOTLY_MIME] = figures[0]  # one mime entry per output: the main figure
        return bundle

    def _ipython_display_(self) -> None:
        # A cell ending in `hw.explain.show(study)` returns this object, which IPython would draw
        # again below the one show() drew: within that cell it is drawn once; later cells redraw it.
        if self._shown_in is not None and self._shown_in == _cell_number():
            return
        from IPython.display import display
        if self.widget is not None:
            display(self.widget)
        else:
            display(self._bundle(), raw=True)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        if self.widget is not None:
            return self.widget._repr_mimebundle_(**kwargs)
        return self._bundle()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, StudyFinished):
            self.refresh()
        elif isinstance(event, TrialFinished):
            self._mark_stale()

    def _mark_stale(self) -> None:
        """Note that the figures are out of date; start the refresher if none runs (trivial work:
        this runs on the trial's thread)."""
        with self._stale:
            self._dirty = True
            if self._refresher is None and not self._closed:
                self._refresher = threading.Thread(target=self._refresh_while_stale, daemon=True,
                                                   name="hpwidgets-explainer")
                self._refresher.start()

    def _refresh_while_stale(self) -> None:
        """The refresher: while trials have finished since the last refresh, wait until ``every_s``
        after its end, then refresh; it ends once the figures are current (or on close)."""
        while True:
            with self._stale:
                if not self._dirty or self._closed:
                    self._refresher = None  # under the condition: a trial marking it stale starts another
                    return
                wait = self._last + self.every_s - time.monotonic()
                if wait > 0:
                    self._stale.wait(wait)
                    continue
            with self._lock:  # another refresh may have run meanwhile (StudyFinished's): check again
                with self._stale:
                    due = self._dirty and not self._closed and time.monotonic() >= self._last + self.every_s
                try:
                    if due:
                        self._redraw()
                except Exception:  # as the event bus does for a subscriber: say so, keep following
                    log.exception("hpwidgets: the explainer's refresh failed")


class Explainer(LiveFigures):
    """Live explainer of ``study``: ``kind`` "auto" (the study's algorithm), "gp", "tpe", "hyperband"
    or "pruner" (learning curves, where the pruner stopped each trial, and the steps it saved).

    ``param`` is the parameter of the GP's 1-D cut and ``pair`` the two of its map (defaults: the first
    numeric parameter, the first two). ``show()`` displays it; it then follows the study by itself.

    >>> import hpwidgets as hw
    >>> study = hw.Study(space={"x": hw.uniform(0, 1)}, algo="random", seed=0, storage=None)
    >>> explainer = Explainer(study, "gp", mode="static")
    >>> study.optimize(lambda p: (p["x"] - 0.3) ** 2, trials=4, progress=False)
    >>> explainer.text().startswith("GP explainer (4 trials")
    True
    """

    def __init__(self, study: Study, kind: str = "auto", param: str | None = None,
                 pair: Sequence[str] | None = None, *, every_s: float = 1.0, mode: str = "auto") -> None:
        self.study, self.kind = study, resolve_kind(study, kind)
        check_params(study, param, pair)
        self.param, self.pair = param, pair
        super().__init__([study], every_s=every_s, mode=mode)

    def figures(self) -> list[dict[str, Any]]:
        """The explainer's plotly figure dicts for the study as it is now."""
        return explain_figures(self.study, self.kind, self.param, self.pair)

    def text(self) -> str:
        return explain_text(self.study, self.kind, self.param, self.pair)


def show(study: Study, kind: str = "auto", param: str | None = None, pair: Sequence[str] | None = None,
         **kwargs: Any) -> Explainer:
    """Display a live explainer for ``study`` and return it (see ``Explainer``)."""
    explainer = Explainer(study, kind, param, pair, **kwargs)
    explainer.show()
    return explainer
