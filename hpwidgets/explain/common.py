"""What every explainer needs: scored trials, unit coordinates and a plotting grid per parameter.

Explainers look at the history the way the algorithms do: searched parameters only, each mapped
to the unit interval by its dimension's own ``to_unit`` (so a log dimension is log-scaled there),
and a *loss* that is always minimised (the value, negated when the study maximises).
"""

from __future__ import annotations

import ast
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..charts.data import trial_value
from ..space import Choice, Dimension, Int, SearchSpace
from ..trial import FrozenTrial

GRID_POINTS = 200  # points along a 1-D curve: smooth at chart size, cheap to send


class Scored(NamedTuple):
    """A trial the explainers can use: its number, searched params, loss and plotted value."""

    number: int
    params: Mapping[str, Any]
    loss: float  # minimised: -value when maximising
    value: float  # as the user sees it


def scored_trials(trials: Iterable[FrozenTrial], space: SearchSpace, maximize: bool = False,
                  target: str | None = None) -> list[Scored]:
    """Finished trials with a value and every searched parameter inside ``space``, by number."""
    searched = space.searched()
    out = []
    for trial in sorted(trials, key=lambda t: t.number):
        value = trial_value(trial, target) if trial.state.finished else None
        if value is None or not all(n in trial.params and d.contains(trial.params[n]) for n, d in searched.items()):
            continue
        out.append(Scored(trial.number, dict(trial.params), -value if maximize else value, value))
    return out


def incumbent(scored: Sequence[Scored]) -> Scored:
    """The best scored trial (lowest loss; the earliest one on ties)."""
    if not scored:
        raise ValueError("no trial with a value inside the space yet: nothing to explain")
    return min(scored, key=lambda s: (s.loss, s.number))


def unit_rows(dims: Mapping[str, Dimension], params: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Rows of unit coordinates, one column per dimension in ``dims`` order."""
    rows = [[dim.to_unit(p[name]) for name, dim in dims.items()] for p in params]
    return np.asarray(rows, dtype=float).reshape(len(params), len(dims))


def scale_of(dim: Dimension) -> str:
    """How a chart draws the dimension: "category", "log" or "linear"."""
    if isinstance(dim, Choice):
        return "category"
    return "log" if getattr(dim, "log", False) else "linear"


def dimension_grid(dim: Dimension, n: int = GRID_POINTS) -> tuple[list[Any], np.ndarray]:
    """Values to draw a curve through (every choice, every level of a small int grid, else ``n``
    evenly spaced unit points) and their unit coordinates. Only suggestible values appear."""
    if isinstance(dim, Choice):
        values: list[Any] = list(dim.values)
    elif isinstance(dim, Int) and (dim.high - dim.low) // dim.step + 1 <= n:
        values = list(range(dim.low, dim.high + 1, dim.step))
    else:
        values = list(dict.fromkeys(dim.from_unit(u) for u in np.linspace(0.0, 1.0, n)))
    return values, np.array([dim.to_unit(v) for v in values], dtype=float)


def label(value: Any) -> str:
    """A user-supplied name or value as plotly text: plotly reads a little HTML, so escape it."""
    return html.escape(str(value), quote=False)


def choice_label(value: Any) -> str:
    """A choice value as a category: its text, quoted where it would read as another value's
    (the string "None" beside None, "1" beside 1), so no two values share a category."""
    if isinstance(value, str):
        try:
            literal = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return label(value)
        if not isinstance(literal, str):
            return label(repr(value))
    return label(value)


def axis_values(dim: Dimension, values: Sequence[Any]) -> list[Any]:
    """Values as a chart axis takes them: category labels for choices, numbers otherwise."""
    return [choice_label(v) for v in values] if isinstance(dim, Choice) else list(values)
