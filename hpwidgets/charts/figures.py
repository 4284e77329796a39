"""Plotly figures as plain dicts (JSON-ready; plotly itself is never imported), and the
``Plotly.extendTraces`` operations that grow them by one trial.

An *op* is ``{"c": chart, "t": [trace indices], "d": {attribute path: [new values per trace]}}``,
which is exactly ``Plotly.extendTraces(chart_div, op["d"], op["t"])`` on the JS side. Ops are built
per batch of trials, so a batch costs one extendTraces call per chart and attribute set.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from ..space import SearchSpace
from ..trial import FrozenTrial
from .data import Axis, ChartData, Contribution, ParallelRow, Point, chart_data, format_value

COLORS = {"COMPLETE": "#1f77b4", "PRUNED": "#ff7f0e"}
GREY = "#c8c8c8"  # trials outside the current space
BEST = "#d62728"
WIDE_PARALLEL = 6  # parallel coordinates with more axes get the panel's full width and slanted labels
# One plotly.js config for every chart (live panel, explainers, report; ui/livechart.js repeats it):
# no logo, and only the buttons these charts use, so the mode bar leaves a half-width chart's title free.
PLOT_CONFIG = {"responsive": True, "displaylogo": False,
               "modeBarButtonsToRemove": ["select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d",
                                          "toggleSpikelines", "hoverClosestCartesian", "hoverCompareCartesian"]}
Figure = dict[str, Any]
Op = dict[str, Any]


def point_color(point: Point) -> str:
    return COLORS.get(point.state, COLORS["COMPLETE"]) if point.in_space else GREY


def _layout(title: str, xtitle: str, ytitle: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title, "font": {"size": 14}}, "height": 300, "autosize": True,
            "margin": {"l": 55, "r": 20, "t": 40, "b": 45}, "showlegend": False, "hovermode": "closest",
            "uirevision": "hpw",  # keep the user's zoom when the figure is redrawn
            "xaxis": {"title": {"text": xtitle}}, "yaxis": {"title": {"text": ytitle}}, **extra}


def _markers(points: Iterable[Point], xs: Iterable[Any], **extra: Any) -> dict[str, Any]:
    points = list(points)
    return {"type": "scatter", "mode": "markers", "x": list(xs), "y": [p.value for p in points],
            "customdata": [p.number for p in points],  # trial numbers: a click or hover knows its trial
            "text": [p.text for p in points], "hovertemplate": "%{text}<extra></extra>",
            "marker": {"color": [point_color(p) for p in points], "size": 7, "opacity": 0.85}, **extra}


def _axis_layout(axis: Axis) -> dict[str, Any]:
    if axis.scale == "category":
        return {"type": "category", "categoryorder": "array", "categoryarray": list(axis.categories)}
    if axis.scale != "log":
        return {}
    if axis.low and axis.high and axis.low > 0 and math.log10(axis.high / axis.low) >= 2:
        return {"type": "log", "dtick": 1, "exponentformat": "e"}  # decades: 2s and 5s crowd a third-width chart
    return {"type": "log"}


def _nice_values(low: float, high: float, mantissas: tuple[int, ...]) -> list[float]:
    """m × 10^k for each mantissa m, between ``low`` and ``high`` (ends included, up to rounding)."""
    exps = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    values = (float(f"{m}e{e}") for e in exps for m in mantissas)
    return sorted(v for v in values if low * (1 - 1e-9) <= v <= high * (1 + 1e-9))


def _budget_ticks(axis: Axis | None) -> dict[str, Any]:
    """Ticks at 1, 2, 3, 5, 10, 20, ... within the budget's bounds and at the bounds themselves:
    plotly's own log ticks label 0.9 as "9" left of a budget of 1."""
    if axis is None or axis.low is None or axis.high is None or axis.low <= 0:
        return {}
    low, high = axis.low, axis.high
    ticks = sorted({*_nice_values(low, high, (1, 2, 3, 5)), low, high})
    pad = 0.05 * max(math.log10(high / low), 1)
    return {"tickmode": "array", "tickvals": ticks, "ticktext": [format_value(v) for v in ticks],
            "range": [math.log10(low) - pad, math.log10(high) + pad]}


def _log_ticks(axis: Axis, coords: list[float]) -> dict[str, Any]:
    """A log10 axis spanning the space and the trials (``coords``, log10 values): ticks at the
    decades inside it, or at 1, 2, 5 × 10^k when it spans less than two of them. A tick outside
    the range was drawn past the axis' end, over the chart's title."""
    if axis.low is None or axis.high is None or axis.low <= 0:
        return {}
    finite = [c for c in coords if math.isfinite(c)]
    lo, hi = min([math.log10(axis.low), *finite]), max([math.log10(axis.high), *finite])
    ticks = [(float(e), f"1e{e}") for e in range(math.ceil(lo - 1e-9), math.floor(hi + 1e-9) + 1)]
    if len(ticks) < 2:
        ticks = [(math.log10(v), format_value(v)) for v in _nice_values(10**lo, 10**hi, (1, 2, 5))]
    return {"range": [lo, hi], "tickvals": [t for t, _ in ticks], "ticktext": [text for _, text in ticks]}


class FigureSet:
    """Builds the figures for chart data and the ops that extend them.

    The trace layout (which trace gets which points, whether the parallel-coordinates chart has
    an "in space" axis) is fixed when the figures are built, so later ops line up with it.
    """

    def __init__(self, data: ChartData, value_label: str = "value", maximize: bool = False) -> None:
        self.axes = data.parallel.axes
        self.space_axis = any(not r.in_space for r in data.parallel.rows)
        self.budget_name = data.budget_name
        self.budget_ticks = _budget_ticks(data.budget_axis)
        self.value_label, self.maximize = value_label, maximize

    @property
    def names(self) -> list[str]:
        return ["history", "parallel", "slices", "curves"] + (["rungs"] if self.budget_name else [])

    def figures(self, data: ChartData) -> dict[str, Figure]:
        build = {"history": self._history, "parallel": self._parallel, "slices": self._slices,
                 "curves": self._curves, "rungs": self._rungs}
        return {name: build[name](data) for name in self.names}

    # --- whole figures ----------------------------------------------------------------------
    def _history(self, data: ChartData) -> Figure:
        points, best = data.history.points, data.history.best
        trials = _markers(points, (p.number for p in points), name="trials")
        line = {"type": "scatter", "mode": "lines", "name": "best so far", "x": [b.x for b in best],
                "y": [b.y for b in best], "line": {"shape": "hv", "color": BEST, "width": 2},
                "hoverinfo": "skip"}
        return {"data": [trials, line], "layout": _layout("Optimization history", "trial", self.value_label)}

    def _dimension(self, axis: Axis, values: list[float]) -> dict[str, Any]:
        dim: dict[str, Any] = {"label": axis.name, "values": list(values)}
        if axis.scale == "category":
            dim.update(tickvals=list(range(len(axis.categories))), ticktext=list(axis.categories))
        elif axis.scale == "log":
            dim.update(label=f"{axis.name} (log10)", **_log_ticks(axis, values))
        return dim

    def _parallel(self, data: ChartData) -> Figure:
        rows = data.parallel.rows
        dims = [self._dimension(a, [r.coords[i] for r in rows]) for i, a in enumerate(self.axes)]
        if self.space_axis:
            dims.insert(0, {"label": "in space", "values": [int(r.in_space) for r in rows], "range": [0, 1],
                            "tickvals": [0, 1], "ticktext": ["out", "in"]})
        values = [r.value for r in rows]
        dims.append({"label": self.value_label, "values": list(values)})  # not shared with line.color
        trace = {"type": "parcoords", "dimensions": dims,
                 "line": {"color": values, "colorscale": "Viridis", "reversescale": not self.maximize,
                          "showscale": False}}  # the value axis is the scale; a colour bar covered its labels
        margin = {"l": 60, "r": 60, "t": 80, "b": 30}  # room for the title above the axis labels
        wide = len(dims) > WIDE_PARALLEL
        if wide:  # side by side, axis labels ran into each other and past the chart's edge
            trace["labelangle"], margin["t"] = -25, 110
        layout = _layout("Parallel coordinates", "", "", margin=margin)
        layout["meta"] = {"hpw_full_width": wide}  # read by ui/livechart.js: a row of its own
        return {"data": [trace], "layout": layout}

    def _slices(self, data: ChartData) -> Figure:
        n = max(len(data.slices), 1)
        cols = min(n, 3)
        rows = math.ceil(n / cols)
        layout = _layout("Slices", "", "", height=260 * rows, margin={"l": 55, "r": 20, "t": 40, "b": 10})
        traces = []
        for i, piece in enumerate(data.slices):
            suffix = "" if i == 0 else str(i + 1)
            row, col = divmod(i, cols)
            x0, y1 = col / cols, 1 - row / rows
            layout[f"xaxis{suffix}"] = {"domain": [x0 + 0.06, x0 + 1 / cols - 0.02], "anchor": f"y{suffix}",
                                        "title": {"text": piece.axis.name}, **_axis_layout(piece.axis)}
            layout[f"yaxis{suffix}"] = {"domain": [y1 - 1 / rows + 0.12, y1 - 0.02], "anchor": f"x{suffix}",
                                        "title": {"text": self.value_label if col == 0 else ""}}
            traces.append(_markers(piece.points, piece.xs, name=piece.axis.name, xaxis=f"x{suffix}",
                                   yaxis=f"y{suffix}"))
        return {"data": traces, "layout": layout}

    def _curves(self, data: ChartData) -> Figure:
        traces = []
        for dimmed in (False, True):
            xs: list[Any] = []
            ys: list[Any] = []
            texts: list[Any] = []
            for curve in data.curves:
                if (curve.pruned or not curve.in_space) == dimmed:
                    _append_curve(curve, xs, ys, texts)
            traces.append({"type": "scatter", "mode": "lines+markers", "x": xs, "y": ys, "text": texts,
                           "name": "pruned / failed / out of space" if dimmed else "complete",
                           "hovertemplate": "%{text}<br>step %{x}: %{y}<extra></extra>",
                           "line": {"color": GREY if dimmed else COLORS["COMPLETE"], "width": 1},
                           "marker": {"size": 3}, "opacity": 0.5 if dimmed else 0.8})
        return {"data": traces, "layout": _layout("Learning curves", "step", self.value_label)}

    def _rungs(self, data: ChartData) -> Figure:
        trace = _markers((r.point for r in data.rungs), (r.budget for r in data.rungs), name="trials")
        title = f"Hyperband rungs ({self.budget_name} used)"
        xaxis = {"type": "log", "title": {"text": str(self.budget_name)}, **self.budget_ticks}
        return {"data": [trace], "layout": _layout(title, str(self.budget_name), self.value_label, xaxis=xaxis)}

    # --- increments -------------------------------------------------------------------------
    def ops(self, contributions: Sequence[Contribution]) -> list[Op]:
        """The extendTraces ops adding a batch of trials (one op per chart and attribute set)."""
        points = [c.point for c in contributions if c.point is not None]
        best = [c.best for c in contributions if c.best is not None]
        rows = [c.row for c in contributions if c.row is not None]
        out: list[Op] = []
        if points:
            out.append(_marker_op("history", [0], [[p.number for p in points]], [points]))
        if best:
            out.append({"c": "history", "t": [1], "d": {"x": [[b.x for b in best]], "y": [[b.y for b in best]]}})
        if rows:
            out.append(self._rows_op(rows))
        if points:
            out += self._slice_ops(contributions)
        out += _curve_ops(contributions)
        rungs = [c.rung for c in contributions if c.rung is not None]
        if rungs and self.budget_name:
            out.append(_marker_op("rungs", [0], [[r.budget for r in rungs]], [[r.point for r in rungs]]))
        return out

    def _rows_op(self, rows: list[ParallelRow]) -> Op:
        columns = [[r.coords[i] for r in rows] for i in range(len(self.axes))]
        if self.space_axis:
            columns.insert(0, [int(r.in_space) for r in rows])
        columns.append([r.value for r in rows])
        d = {f"dimensions[{i}].values": [col] for i, col in enumerate(columns)}
        d["line.color"] = [[r.value for r in rows]]
        return {"c": "parallel", "t": [0], "d": d}

    def _slice_ops(self, contributions: Sequence[Contribution]) -> list[Op]:
        index = {a.name: i for i, a in enumerate(self.axes)}
        xs: list[list[Any]] = [[] for _ in self.axes]
        points: list[list[Point]] = [[] for _ in self.axes]
        for c in contributions:
            for name, x in c.slice_xs if c.point is not None else ():
                if name in index:
                    xs[index[name]].append(x)
                    points[index[name]].append(c.point)
        used = [i for i, column in enumerate(xs) if column]
        return [_marker_op("slices", used, [xs[i] for i in used], [points[i] for i in used])] if used else []


def _marker_op(chart: str, traces: list[int], xs: list[list[Any]], points: list[list[Point]]) -> Op:
    return {"c": chart, "t": traces, "d": {"x": xs, "y": [[p.value for p in column] for column in points],
                                           "customdata": [[p.number for p in column] for column in points],
                                           "text": [[p.text for p in column] for column in points],
                                           "marker.color": [[point_color(p) for p in column] for column in points]}}


def _curve_ops(contributions: Sequence[Contribution]) -> list[Op]:
    out = []
    for trace, dimmed in ((0, False), (1, True)):
        xs: list[Any] = []
        ys: list[Any] = []
        texts: list[Any] = []
        for c in contributions:
            if c.curve is not None and (c.curve.pruned or not c.curve.in_space) == dimmed:
                _append_curve(c.curve, xs, ys, texts)
        if xs:
            out.append({"c": "curves", "t": [trace], "d": {"x": [xs], "y": [ys], "text": [texts]}})
    return out


def _append_curve(curve: Any, xs: list[Any], ys: list[Any], texts: list[Any]) -> None:
    """One curve onto a shared trace; a trailing None breaks the line before the next trial's."""
    xs += [*curve.steps, None]
    ys += [*curve.values, None]
    texts += [curve.text] * len(curve.steps) + [None]


def build_figures(trials: Iterable[FrozenTrial], space: SearchSpace | None = None, maximize: bool = False,
                  target: str | None = None) -> dict[str, Figure]:
    """Every chart for a list of trials as plotly figure dicts (for static HTML and the report).

    >>> import hpwidgets as hw
    >>> from hpwidgets.trial import FrozenTrial, TrialState
    >>> t = FrozenTrial(0, TrialState.COMPLETE, {"x": 0.5}, value=1.0)
    >>> sorted(build_figures([t], hw.SearchSpace({"x": hw.uniform(0, 1)})))
    ['curves', 'history', 'parallel', 'slices']
    """
    data = chart_data(trials, SearchSpace.coerce(space) if space is not None else None, maximize, target)
    return FigureSet(data, target or "value", maximize).figures(data)
