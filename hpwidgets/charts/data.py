"""Chart data: plain NamedTuples computed from FrozenTrials (no plotly, no widgets).

Every chart is a fold over trials in the order given. ``ChartTracker.add(trial)`` returns what
one finished trial contributes (the increment a live chart extends its traces by), and
``chart_data`` is that same fold over a list, so a chart that streamed its trials one at a time
ends identical to one drawn from scratch in the same order.

Values: a COMPLETE trial's value; a PRUNED trial's value or, failing that, its last reported
target; FAIL trials have none and appear only in the learning curves (if they reported).
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ..space import Choice, SearchSpace, _plain
from ..trial import FrozenTrial, TrialState


class Point(NamedTuple):
    """One trial's marker: shared by the history, slice and rung charts."""

    number: int
    value: float
    state: str  # "COMPLETE" or "PRUNED"
    in_space: bool  # False: outside the current (edited) space, drawn greyed
    text: str  # hover text: number, state, value and every parameter


class BestPoint(NamedTuple):
    x: int  # the highest trial number seen so far, so the line only ever grows to the right
    y: float


class History(NamedTuple):
    points: tuple[Point, ...]
    best: tuple[BestPoint, ...]


class Axis(NamedTuple):
    """How one parameter is drawn: ``scale`` is "linear", "log" or "category"."""

    name: str
    scale: str
    categories: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None


class ParallelRow(NamedTuple):
    number: int
    coords: tuple[float, ...]  # per axis: the value, log10 of it, or the category index
    value: float
    in_space: bool


class Parallel(NamedTuple):
    axes: tuple[Axis, ...]
    rows: tuple[ParallelRow, ...]


class Slice(NamedTuple):
    axis: Axis
    xs: tuple[Any, ...]  # numbers, or category labels for choices
    points: tuple[Point, ...]


class Curve(NamedTuple):
    number: int
    steps: tuple[int, ...]
    values: tuple[float, ...]
    pruned: bool  # stopped early (or failed): drawn dimmed
    in_space: bool
    text: str


class RungPoint(NamedTuple):
    budget: int  # the budget the trial actually used (reports made, for a pruned one)
    point: Point


class Contribution(NamedTuple):
    """Everything one finished trial adds to the charts: the live increment."""

    number: int
    point: Point | None
    best: BestPoint | None
    row: ParallelRow | None
    slice_xs: tuple[tuple[str, Any], ...]  # (parameter, x) for each slice the point lands on
    curve: Curve | None
    rung: RungPoint | None


class ChartData(NamedTuple):
    history: History
    parallel: Parallel
    slices: tuple[Slice, ...]
    curves: tuple[Curve, ...]
    rungs: tuple[RungPoint, ...]
    budget_name: str | None
    budget_axis: Axis | None = None  # the budget's bounds: the rungs chart's ticks


def trial_value(trial: FrozenTrial, target: str | None = None) -> float | None:
    """The value a chart plots for a trial, or None (failed, or nothing reported)."""
    if trial.state is TrialState.COMPLETE:
        return trial.value
    if trial.state is TrialState.PRUNED:
        return trial.value if trial.value is not None else trial.last_reported(target)
    return None


def format_value(value: Any) -> str:
    """Short readable form: 4 significant digits for floats, str() for the rest."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _escaped(value: Any) -> str:
    text = format_value(value)
    return text if isinstance(value, (int, float)) else html.escape(text)  # numbers need no escaping


def hover_text(trial: FrozenTrial, value: float | None) -> str:
    """Plotly hover text; names and non-numeric values are escaped (choices may be any string)."""
    head = f"#{trial.number} {trial.state.value}"
    if value is not None:
        head += f"<br>value={value:.6g}"
    params = (f"{html.escape(k)}={_escaped(v)}" for k, v in trial.params.items())
    return "<br>".join([head, *params])


def _axis(name: str, dim: Any) -> Axis:
    if isinstance(dim, Choice):
        return Axis(name, "category", tuple(ChoiceLabels(dim.values).labels))
    log = bool(getattr(dim, "log", False))
    return Axis(name, "log" if log else "linear", (), float(dim.low), float(dim.high))


def _free_label(value: Any, preferred: str, taken: set[str]) -> str:
    """``preferred`` unless another category has it; then str, repr, repr with the type, numbered."""
    for label in (preferred, str(value), repr(value), f"{value!r} ({type(value).__name__})"):
        if label not in taken:
            return label
    n = 2
    while f"{value!r} #{n}" in taken:
        n += 1
    return f"{value!r} #{n}"


class ChoiceLabels:
    """One choice axis: a category per value the space tells apart (by repr), each with its own label.

    A label is str(v) unless another value's str is the same; then repr(v), so None and "None" read
    ``None`` and ``'None'``. Indices and labels are fixed once given and only appended to: both are
    sent to live charts (coordinates, slice xs), so neither may come to mean another value later.
    """

    def __init__(self, values: Iterable[Any]) -> None:
        values = [_plain(v) for v in values]
        clashing = {s for s, n in Counter(map(str, values)).items() if n > 1}
        self.labels: list[str] = []
        self._taken: set[str] = set()
        self._index: dict[str, int] = {}
        for v in values:
            self._add(v, repr(v) if str(v) in clashing else str(v))

    def index(self, value: Any) -> int:
        """The value's category; a value outside the space is appended (after a slider edit)."""
        value = _plain(value)
        if repr(value) not in self._index:
            self._add(value, str(value))  # the same rule: repr when str is another category's label
        return self._index[repr(value)]

    def label(self, value: Any) -> str:
        return self.labels[self.index(value)]

    def _add(self, value: Any, preferred: str) -> None:
        label = _free_label(value, preferred, self._taken)
        self._index[repr(value)] = len(self.labels)
        self.labels.append(label)
        self._taken.add(label)


class ChartTracker:
    """Folds finished trials into chart contributions; keeps the best value so far.

    ``space`` is the *current* space: trials outside it are flagged ``in_space=False``.
    """

    def __init__(self, space: SearchSpace | None = None, maximize: bool = False, target: str | None = None) -> None:
        self.space, self.maximize, self.target = space, maximize, target
        self.best: float | None = None
        self.max_number = -1
        searched = space.searched() if space is not None else {}
        self.axes: tuple[Axis, ...] = tuple(_axis(n, d) for n, d in searched.items())
        # Category lists only ever grow, so an index (or slice label) sent to a chart never changes meaning.
        self._categories = {n: ChoiceLabels(d.values) for n, d in searched.items() if isinstance(d, Choice)}

    @property
    def budget_name(self) -> str | None:
        return self.space.budget_name if self.space is not None else None

    @property
    def budget_axis(self) -> Axis | None:
        name = self.budget_name
        return None if name is None or self.space is None else _axis(name, self.space[name])

    def category_axes(self) -> tuple[Axis, ...]:
        """The axes with every category seen so far (out-of-space values appended)."""
        return tuple(a._replace(categories=tuple(self._categories[a.name].labels)) if a.scale == "category" else a
                     for a in self.axes)

    def add(self, trial: FrozenTrial) -> Contribution:
        value = trial_value(trial, self.target)
        in_space = self.space is None or self.space.contains(trial.params)
        text = hover_text(trial, value)
        point = best = row = rung = None
        slice_xs: tuple[tuple[str, Any], ...] = ()
        if value is not None:
            point = Point(trial.number, value, trial.state.value, in_space, text)
            best = self._advance_best(trial, value)
            row = self._row(trial, value, in_space)
            slice_xs = self._slice_xs(trial)
            rung = self._rung(trial, point)
        return Contribution(trial.number, point, best, row, slice_xs, self._curve(trial, in_space), rung)

    def _advance_best(self, trial: FrozenTrial, value: float) -> BestPoint | None:
        self.max_number = max(self.max_number, trial.number)
        if trial.state is not TrialState.COMPLETE:  # partial values never count as the best
            return None
        if self.best is None or (value > self.best if self.maximize else value < self.best):
            self.best = value
        return BestPoint(self.max_number, self.best)

    def _coord(self, axis: Axis, raw: Any) -> float | None:
        if axis.scale == "category":
            return float(self._categories[axis.name].index(raw))
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            return None
        if axis.scale == "log":
            return math.log10(raw) if raw > 0 else None
        return float(raw)

    def _row(self, trial: FrozenTrial, value: float, in_space: bool) -> ParallelRow | None:
        coords = [self._coord(a, trial.params.get(a.name)) if a.name in trial.params else None for a in self.axes]
        if any(c is None for c in coords):
            return None
        return ParallelRow(trial.number, tuple(coords), value, in_space)  # type: ignore[arg-type]

    def _slice_xs(self, trial: FrozenTrial) -> tuple[tuple[str, Any], ...]:
        out = []
        for axis in self.axes:
            if axis.name in trial.params:
                raw = trial.params[axis.name]
                out.append((axis.name, self._categories[axis.name].label(raw) if axis.scale == "category" else raw))
        return tuple(out)

    def _curve(self, trial: FrozenTrial, in_space: bool) -> Curve | None:
        pairs = trial.reported(self.target)
        if not pairs:
            return None
        steps, values = zip(*pairs, strict=True)
        return Curve(trial.number, tuple(steps), tuple(values), trial.state is not TrialState.COMPLETE,
                     in_space, f"#{trial.number} {trial.state.value}")

    def _rung(self, trial: FrozenTrial, point: Point) -> RungPoint | None:
        name = self.budget_name
        allotted = trial.params.get(name) if name else None
        if not isinstance(allotted, int):
            return None
        return RungPoint(int(trial.budget_used(name) or allotted), point)


def chart_data(trials: Iterable[FrozenTrial], space: SearchSpace | None = None, maximize: bool = False,
               target: str | None = None) -> ChartData:
    """All chart data at once: the fold of ``ChartTracker.add`` over ``trials`` in their order."""
    tracker = ChartTracker(space, maximize, target)
    return collect(tracker, (tracker.add(t) for t in trials if t.state.finished))


def collect(tracker: ChartTracker, contributions: Iterable[Contribution]) -> ChartData:
    """Assemble contributions (already folded by ``tracker``) into per-chart data."""
    points, best, rows, curves, rungs = [], [], [], [], []
    slice_points: dict[str, list[tuple[Any, Point]]] = {a.name: [] for a in tracker.axes}
    for c in contributions:
        if c.point is not None:
            points.append(c.point)
            for name, x in c.slice_xs:
                slice_points[name].append((x, c.point))
        best += [c.best] if c.best else []
        rows += [c.row] if c.row else []
        curves += [c.curve] if c.curve else []
        rungs += [c.rung] if c.rung else []
    axes = tracker.category_axes()
    slices = tuple(Slice(a, tuple(x for x, _ in slice_points[a.name]), tuple(p for _, p in slice_points[a.name]))
                   for a in axes)
    return ChartData(History(tuple(points), tuple(best)), Parallel(axes, tuple(rows)), slices, tuple(curves),
                     tuple(rungs), tracker.budget_name, tracker.budget_axis)


# --- one chart at a time (thin views over the fold, for callers that need a single chart) -----------

def history(trials: Iterable[FrozenTrial], maximize: bool = False, target: str | None = None,
            space: SearchSpace | None = None) -> History:
    """Value per trial number and the best-so-far line (COMPLETE trials only set the best)."""
    return chart_data(trials, space, maximize, target).history


def parallel(trials: Iterable[FrozenTrial], space: SearchSpace, maximize: bool = False,
             target: str | None = None) -> Parallel:
    """One row per trial with a value: log dims as log10, choices as category indices."""
    return chart_data(trials, space, maximize, target).parallel


def slices(trials: Iterable[FrozenTrial], space: SearchSpace, maximize: bool = False,
           target: str | None = None) -> tuple[Slice, ...]:
    """One scatter (parameter value vs trial value) per searched parameter."""
    return chart_data(trials, space, maximize, target).slices


def learning_curves(trials: Iterable[FrozenTrial], target: str | None = None,
                    space: SearchSpace | None = None) -> tuple[Curve, ...]:
    """The target metric per reported step, one curve per trial; pruned/failed ones flagged."""
    return chart_data(trials, space, False, target).curves


def rungs(trials: Iterable[FrozenTrial], space: SearchSpace, target: str | None = None) -> tuple[RungPoint, ...]:
    """Budget used vs value per trial (Hyperband's rungs); empty when the space has no budget."""
    return chart_data(trials, space, False, target).rungs


def summary_params(params: Mapping[str, Any]) -> str:
    """``lr=0.001, batch_size=64``: a trial's parameters on one line (not escaped)."""
    return ", ".join(f"{k}={format_value(v)}" for k, v in params.items())
