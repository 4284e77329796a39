"""The live chart widget: plotly.js in an anywidget, grown per trial with ``Plotly.extendTraces``.

Bytes on the wire stay flat as a study grows: each finished trial sends only its new points (an
``inc`` custom message). The full figures travel in the ``snapshot`` trait, which is what a saved
notebook keeps (where the frontend saves widget state; JupyterLab's default does not), so it
reopens showing the charts. The snapshot is re-sent only at study end, on a
space edit, when a view asks (it missed messages), and otherwise *amortised*: no sooner than
``SNAPSHOT_EVERY_S`` and only once as many trials have been streamed since the last snapshot as it
held, so snapshots at most about double the traffic and never make it grow per trial.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ..charts.assets import plotly_js, plotly_safe, widget_esm
from ..charts.data import ChartTracker, Contribution, collect
from ..charts.figures import FigureSet
from ..space import SearchSpace
from ..trial import FrozenTrial

SNAPSHOT_EVERY_S = 5.0


def _pop_texts(traces: Iterable[dict[str, Any]]) -> dict[int, str]:
    """Move hover texts out of traces keyed by trial number (``customdata``) into one map.

    A trial's text would otherwise travel once per chart it is drawn in (history, every slice,
    rungs); the frontend puts it back from ``customdata`` before drawing.
    """
    texts: dict[int, str] = {}
    for trace in traces:
        if "customdata" in trace and "text" in trace:
            numbers, values = trace["customdata"], trace.pop("text")
            if numbers and isinstance(numbers[0], list):  # an op: one column per trace
                numbers, values = [n for c in numbers for n in c], [v for c in values for v in c]
            texts.update(zip(numbers, values, strict=True))
    return texts


class LiveChart(anywidget.AnyWidget):
    """Every chart of a study in one widget; ``push`` finished trials, ``set_space`` to regrey."""

    _esm = widget_esm(Path(__file__).with_name("livechart.js").read_text(encoding="utf-8"))
    plotly_js = traitlets.Unicode("").tag(sync=True)
    # JSON text, not a Dict trait: ipywidgets would walk every nested list of a Dict looking for
    # binary buffers, and the frontend parses it into fresh arrays for plotly to own anyway.
    snapshot = traitlets.Unicode("{}").tag(sync=True)

    def __init__(self, space: SearchSpace, *, maximize: bool = False, target: str | None = None,
                 trials: Iterable[FrozenTrial] = (), **kwargs: Any) -> None:
        self.rendered = threading.Event()  # set when a frontend reports its first draw
        self._lock = threading.RLock()
        self._space, self._maximize, self._target = space, maximize, target
        self._trials: list[FrozenTrial] = [t for t in trials if t.state.finished]
        self._contributions: list[Contribution] = []  # per trial, reused by snapshots while the space holds
        self._tracker = ChartTracker(space, maximize, target)
        self._seq = 0  # increments sent so far; a snapshot says which one it includes
        self._figures, state = self._rebuild()
        self._snapshot_trials, self._since_snapshot, self._snapshot_at = len(self._trials), 0, time.monotonic()
        kwargs.setdefault("_dom_classes", ("hpw-livechart",))  # in the open message, not one more update
        super().__init__(plotly_js=plotly_js(), snapshot=state, **kwargs)
        self.on_msg(self._on_frontend_msg)

    # --- Python -> frontend ---------------------------------------------------------------------
    def push(self, trials: Iterable[FrozenTrial]) -> None:
        """Send the new points of ``trials`` in one ``inc`` message (nothing when none finished)."""
        with self._lock:
            trials = [t for t in trials if t.state.finished]
            if not trials:
                return
            contributions = [self._tracker.add(t) for t in trials]
            self._trials += trials
            self._contributions += contributions
            self._seq += 1
            ops = self._figures.ops(contributions)
            self.send({"type": "inc", "seq": self._seq, "ops": ops, "texts": _pop_texts(op["d"] for op in ops)})
            self._since_snapshot += len(trials)
            # Amortised: a snapshot costs about as much as the increments of the trials it holds.
            due = self._since_snapshot >= self._snapshot_trials
            if due and time.monotonic() - self._snapshot_at >= SNAPSHOT_EVERY_S:
                self.sync_snapshot()

    def sync_snapshot(self) -> None:
        """Put the full figures into the ``snapshot`` trait (what a saved notebook keeps)."""
        with self._lock:
            self._figures, self.snapshot = self._rebuild()
            self._snapshot_trials, self._since_snapshot, self._snapshot_at = len(self._trials), 0, time.monotonic()

    def set_space(self, space: SearchSpace) -> None:
        """A slider edit: trials outside ``space`` turn grey, so every figure is redrawn once."""
        with self._lock:
            self._space = space
            self._tracker = ChartTracker(space, self._maximize, self._target)
            self._contributions = []
            self.sync_snapshot()

    @property
    def n_trials(self) -> int:
        return len(self._trials)

    def state(self) -> dict[str, Any]:
        """The snapshot as data: ``{"seq", "order", "charts": {name: plotly figure dict}}``."""
        return json.loads(self.snapshot)

    # --- internals ----------------------------------------------------------------------------
    def _rebuild(self) -> tuple[FigureSet, str]:
        missing = self._trials[len(self._contributions):]  # all of them after a new tracker
        self._contributions += [self._tracker.add(t) for t in missing]
        data = collect(self._tracker, self._contributions)
        figures = FigureSet(data, self._target or "value", self._maximize)
        charts = plotly_safe(figures.figures(data))  # user-named labels stay text
        texts = _pop_texts(trace for chart in charts.values() for trace in chart["data"])
        state = {"seq": self._seq, "order": figures.names, "charts": charts, "texts": texts}
        return figures, json.dumps(state, separators=(",", ":"), allow_nan=False)

    def _on_frontend_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "rendered":
            self.rendered.set()
        elif kind == "resync":
            self.sync_snapshot()
