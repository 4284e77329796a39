"""Plotly figure dicts for the explainers (plain JSON-ready dicts; plotly is never imported).

Every user-supplied string (parameter names, choice values, the metric's name) goes through
``common.label``: plotly renders a little HTML in titles and labels, and escaped text stays text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..trial import TrialState
from .common import choice_label, label
from .gp import GPMap, GPSlice
from .hyperband import HyperbandView
from .pruning import PruningView
from .tpe import TPEDensity, TPESplit, ratio_label

Figure = dict[str, Any]
BLUE, ORANGE, RED, GREEN, GREY = "#1f77b4", "#ff7f0e", "#d62728", "#2ca02c", "#9e9e9e"


def _axis(scale: str, title: str, **extra: Any) -> dict[str, Any]:
    axis: dict[str, Any] = {"title": {"text": title}, **extra}
    if scale in ("log", "category"):
        axis["type"] = scale
    return axis


def _x(values: Sequence[Any], scale: str) -> list[Any]:
    return [choice_label(v) for v in values] if scale == "category" else list(values)


def _layout(title: str, height: int = 420, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title, "font": {"size": 14}}, "height": height, "autosize": True,
            "margin": {"l": 60, "r": 20, "t": 50, "b": 45}, "hovermode": "closest", "uirevision": "hpw-explain",
            "legend": {"orientation": "h", "y": -0.18}, **extra}


def message_figure(text: str, title: str = "") -> Figure:
    """An empty chart that says why it is empty (e.g. "waiting for the first trial")."""
    return {"data": [], "layout": _layout(label(title), height=240, xaxis={"visible": False},
                                          yaxis={"visible": False},
                                          annotations=[{"text": label(text), "showarrow": False, "font": {"size": 14},
                                                        "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}])}


def fitted_note(shown: int, total: int) -> str:
    """Beyond ``gp.FIT_LIMIT`` trials the GP sees (and the figure draws) a subset: say so."""
    return "" if shown >= total else f" · fitted on {shown} of {total} trials (best and latest)"


def gp_slice_figure(cut: GPSlice, value_label: str = "value") -> Figure:
    """Mean ± 2σ band and observations above, expected improvement below, the EI peak marked."""
    xs = _x(cut.xs, cut.scale)
    upper = [m + 2 * s for m, s in zip(cut.mean, cut.std, strict=True)]
    lower = [m - 2 * s for m, s in zip(cut.mean, cut.std, strict=True)]
    obs_x = _x([o[0] for o in cut.observed], cut.scale)
    data = [
        {"type": "scatter", "x": xs, "y": upper, "mode": "lines", "line": {"width": 0}, "hoverinfo": "skip",
         "showlegend": False},
        {"type": "scatter", "x": xs, "y": lower, "mode": "lines", "line": {"width": 0}, "fill": "tonexty",
         "fillcolor": "rgba(31,119,180,0.2)", "name": "mean ± 2σ", "hoverinfo": "skip"},
        {"type": "scatter", "x": xs, "y": list(cut.mean), "mode": "lines", "line": {"color": BLUE}, "name": "GP mean"},
        {"type": "scatter", "x": obs_x, "y": [o[1] for o in cut.observed], "mode": "markers", "name": "trials",
         "marker": {"color": "black", "size": 6}, "text": [f"#{o[2]}" for o in cut.observed],
         "hovertemplate": "%{text}: %{y:.4g}<extra></extra>"},
        {"type": "scatter", "x": xs, "y": list(cut.acquisition), "mode": "lines", "xaxis": "x2", "yaxis": "y2",
         "line": {"color": GREEN}, "name": "expected improvement", "fill": "tozeroy"},
        {"type": "scatter", "x": _x([cut.next_x], cut.scale), "y": [max(cut.acquisition, default=0.0)],
         "mode": "markers", "xaxis": "x2", "yaxis": "y2", "name": "EI peak (next suggestion here)",
         "marker": {"color": RED, "size": 12, "symbol": "star"}},
    ]
    name = label(cut.param)
    note = fitted_note(len(cut.observed), cut.total)
    layout = _layout(f"GP posterior along {name} (others at the best trial){note}", height=480,
                     xaxis=_axis(cut.scale, "", anchor="y", matches="x2", showticklabels=False),
                     yaxis={"domain": [0.4, 1.0], "title": {"text": label(value_label)}},
                     xaxis2=_axis(cut.scale, name, anchor="y2"),
                     yaxis2={"domain": [0.0, 0.3], "title": {"text": "EI"}, "rangemode": "tozero"})
    return {"data": data, "layout": layout}


def gp_map_figure(grid: GPMap, value_label: str = "value") -> Figure:
    """Heatmap of the posterior mean over two parameters, trials as dots, the EI peak as a star."""
    (xn, yn), (xs_scale, ys_scale) = grid.params, grid.scales
    data = [
        {"type": "heatmap", "x": _x(grid.xs, xs_scale), "y": _x(grid.ys, ys_scale), "z": [list(r) for r in grid.mean],
         "colorscale": "Viridis", "colorbar": {"title": {"text": label(value_label)}}, "name": "GP mean",
         "customdata": [list(r) for r in grid.std],
         "hovertemplate": "mean %{z:.4g} ± %{customdata:.2g}<extra></extra>"},
        {"type": "scatter", "mode": "markers", "name": "trials", "x": _x([o[0] for o in grid.observed], xs_scale),
         "y": _x([o[1] for o in grid.observed], ys_scale), "text": [f"#{o[3]}: {o[2]:.4g}" for o in grid.observed],
         "hovertemplate": "%{text}<extra></extra>", "marker": {"color": "white", "size": 7,
                                                               "line": {"color": "black", "width": 1}}},
        {"type": "scatter", "mode": "markers", "name": "EI peak", "x": _x([grid.next_xy[0]], xs_scale),
         "y": _x([grid.next_xy[1]], ys_scale), "marker": {"color": RED, "size": 14, "symbol": "star"}},
    ]
    note = fitted_note(len(grid.observed), grid.total)
    layout = _layout(f"GP mean over {label(xn)} × {label(yn)} (others at the best trial){note}", height=460,
                     xaxis=_axis(xs_scale, label(xn)), yaxis=_axis(ys_scale, label(yn)))
    return {"data": data, "layout": layout}


def _tpe_traces(d: TPEDensity, top: int, bottom: int, legend: bool) -> list[dict[str, Any]]:
    """l and g on the upper axes of one parameter's panel, l/g and its peak on the lower ones."""
    kind = "bar" if d.scale == "category" else "scatter"
    xs = _x(d.xs, d.scale)

    def curve(ys: Sequence[float], name: str, color: str, axis: int) -> dict[str, Any]:
        return {"type": kind, "x": xs, "y": list(ys), "name": name, "marker": {"color": color},
                "line": {"color": color}, "xaxis": f"x{axis}", "yaxis": f"y{axis}", "legendgroup": name,
                "showlegend": legend}

    peak = {"type": "scatter", "mode": "markers", "x": _x([d.next_x], d.scale), "y": [max(d.ratio)],
            "name": "largest ratio", "marker": {"color": RED, "size": 12, "symbol": "star"}, "xaxis": f"x{bottom}",
            "yaxis": f"y{bottom}", "legendgroup": "peak", "showlegend": legend}
    return [curve(d.good_pdf, "l(x): good", BLUE, top), curve(d.bad_pdf, "g(x): bad", ORANGE, top),
            curve(d.ratio, ratio_label(d.power), GREEN, bottom), *_rug(d, top, legend), peak]


def tpe_figure(the_split: TPESplit, densities: Sequence[TPEDensity], value_label: str = "value") -> Figure:
    """One panel per parameter: l(x) and g(x) (good and bad densities), l/g below, its peak marked."""
    bound = "≥" if the_split.maximize else "≤"
    n = max(len(densities), 1)
    layout = _layout(f"TPE: {len(the_split.good)} good vs {len(the_split.bad)} bad trials "
                     f"(good: {label(value_label)} {bound} {the_split.threshold:.4g}; "
                     f"gamma={the_split.gamma:g}, {the_split.rule} rule)", height=100 + 280 * n)
    data: list[dict[str, Any]] = []
    for i, d in enumerate(densities):
        top, bottom, y1, h = 2 * i + 1, 2 * i + 2, 1 - i / n, 1 / n
        data += _tpe_traces(d, top, bottom, legend=i == 0)
        layout[f"xaxis{top}"] = _axis(d.scale, "", anchor=f"y{top}", matches=f"x{bottom}", showticklabels=False)
        layout[f"yaxis{top}"] = {"domain": [y1 - 0.55 * h, y1 - 0.08 * h], "anchor": f"x{top}",
                                 "title": {"text": "density"}}
        layout[f"xaxis{bottom}"] = _axis(d.scale, label(d.param), anchor=f"y{bottom}")
        layout[f"yaxis{bottom}"] = {"domain": [y1 - 0.85 * h, y1 - 0.6 * h], "anchor": f"x{bottom}",
                                    "title": {"text": "l/g"}}
    layout["title"].update(y=1 - 12 / layout["height"], yanchor="top")  # the legend goes between title and plots
    layout["legend"] = {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0}
    layout["margin"] = {"l": 60, "r": 20, "t": 90, "b": 40}
    return {"data": data, "layout": layout}


def _rug(d: TPEDensity, axis: int, legend: bool) -> list[dict[str, Any]]:
    """The good and bad trials as ticks along the bottom of the density panel (bars show choices' counts)."""
    if d.scale == "category":
        return []
    return [{"type": "scatter", "mode": "markers", "x": _x(xs, d.scale), "y": [0] * len(xs), "name": name,
             "marker": {"color": color, "symbol": "line-ns-open", "size": 12, "line": {"width": 2}},
             "xaxis": f"x{axis}", "yaxis": f"y{axis}", "legendgroup": name, "showlegend": legend, "hoverinfo": "skip"}
            for xs, name, color in ((d.good_x, "good trials", BLUE), (d.bad_x, "bad trials", ORANGE))]


def _cell_text(c: Any, budget_label: str) -> str:
    plan = f"{c.n} × {c.budget} {budget_label}"
    done = f"{c.evaluated} run" + (f", {c.running} running" if c.running else "")
    return f"{plan}<br>{done}<br>↑{c.promoted} ✕{c.stopped}"


def hyperband_figure(view: HyperbandView, budget_label: str = "budget") -> Figure:
    """Brackets × rungs as a grid (plan and outcome per cell), and the budget vs random search."""
    unit = label(budget_label)
    brackets = sorted({c.bracket for c in view.cells}, reverse=True)
    rungs = sorted({c.rung for c in view.cells})
    z = [[None] * len(rungs) for _ in brackets]
    text = [[""] * len(rungs) for _ in brackets]
    for c in view.cells:
        row, col = brackets.index(c.bracket), rungs.index(c.rung)
        z[row][col] = c.evaluated / c.n if c.n else 0.0
        text[row][col] = _cell_text(c, unit)
    ys = [f"bracket s={s}" for s in brackets]
    xs = [f"rung {i}" for i in rungs]
    data = [
        {"type": "heatmap", "x": xs, "y": ys, "z": z, "text": text, "texttemplate": "%{text}",
         "colorscale": [[0, "#f7fbff"], [1, "#6baed6"]], "zmin": 0, "zmax": 1, "showscale": False,
         "hovertemplate": "%{y}, %{x}<br>%{text}<extra></extra>", "xgap": 2, "ygap": 2},
        {"type": "bar", "x": ["Hyperband", "random search"], "y": [view.configs, view.random_configs],
         "xaxis": "x2", "yaxis": "y2", "marker": {"color": [BLUE, GREY]},
         "text": [f"{view.configs}", f"{view.random_configs:.1f}"], "textposition": "auto",
         "hovertemplate": "%{x}: %{y:.1f} configs<extra></extra>"},
    ]
    layout = _layout(f"Hyperband (eta={view.eta:g}, {unit} {view.min_budget}..{view.max_budget}): "
                     f"{view.spent} {unit} spent", height=120 + 90 * len(brackets), showlegend=False,
                     margin={"l": 100, "r": 20, "t": 80, "b": 30},
                     xaxis={"domain": [0.0, 0.68], "side": "top"},
                     yaxis={"autorange": "reversed"},
                     xaxis2={"domain": [0.78, 1.0], "anchor": "y2"},
                     yaxis2={"anchor": "x2", "title": {"text": f"configs for {view.spent} {unit}"}})
    return {"data": data, "layout": layout}


def _joined(curves: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Many curves as one trace: points of each, a None between them (one legend entry, few bytes)."""
    xs: list[Any] = []
    ys: list[Any] = []
    for curve in curves:
        xs += [*curve.steps, None]
        ys += [*curve.values, None]
    return xs, ys


def pruning_figure(view: PruningView, value_label: str = "value") -> Figure:
    """Learning curves (trained to the end in blue, stopped in grey with a red ✕), the rungs and their counts."""
    done = [c for c in view.curves if c.state is not TrialState.PRUNED]
    stopped = [c for c in view.curves if c.state is TrialState.PRUNED]
    data: list[dict[str, Any]] = []
    for curves, name, color in ((stopped, "stopped early", GREY), (done, "trained to the end", BLUE)):
        xs, ys = _joined(curves)
        data.append({"type": "scatter", "mode": "lines", "x": xs, "y": ys, "name": name,
                     "line": {"color": color, "width": 1}, "hoverinfo": "skip"})
    data.append({"type": "scatter", "mode": "markers", "x": [c.steps[-1] for c in stopped],
                 "y": [c.values[-1] for c in stopped], "name": "where it stopped",
                 "marker": {"color": RED, "symbol": "x", "size": 7}, "text": [f"#{c.number}" for c in stopped],
                 "hovertemplate": "%{text} stopped at step %{x}: %{y:.4g}<extra></extra>"})
    if view.median:
        data.append({"type": "scatter", "mode": "lines", "x": [s for s, _ in view.median],
                     "y": [v for _, v in view.median], "name": "median of finished trials",
                     "line": {"color": ORANGE, "dash": "dash", "width": 2}})
    shapes = [{"type": "line", "xref": "x", "yref": "paper", "x0": r.step, "x1": r.step, "y0": 0, "y1": 1,
               "line": {"color": GREY, "dash": "dot", "width": 1}} for r in view.rungs]
    x_type = "log" if len(view.rungs) >= 2 else "linear"  # ASHA's rungs are geometric
    notes = [{"x": math.log10(r.step) if x_type == "log" else r.step,  # plotly places annotations in log10 units
              "y": 1, "xref": "x", "yref": "paper", "yanchor": "bottom", "showarrow": False,
              "text": f"rung {r.step}: {r.reached}→{r.reached - r.stopped}", "font": {"size": 11}} for r in view.rungs]
    title = (f"Pruning ({label(view.pruner)}): {view.stopped} of {len(view.curves)} trials stopped early, "
             f"{view.spent} of {view.full} steps trained")
    layout = _layout(title, height=420, shapes=shapes, annotations=notes, margin={"l": 60, "r": 20, "t": 80, "b": 45},
                     xaxis={"title": {"text": "step"}, "type": x_type}, yaxis={"title": {"text": label(value_label)}})
    return {"data": data, "layout": layout}
