"""The race: several studies on one problem, compared by the budget they spent, live.

Each study is a lane: its best value so far against the resource used so far (the budget
parameter summed over finished trials, e.g. epochs; one per trial when the space has none), and
its cost in trial seconds. A trial stopped early (a pruner, or Stop) used only part of its
budget: one unit per report it made, at most its budget, since a pruner judges per-epoch reports.
The race is judged at equal compute: each lane's best value within the budget every lane has
spent (a study that spent more is cut there); on a tie, the lane that got there with less.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ..charts.data import trial_value
from ..trial import FrozenTrial, TrialState
from .common import label
from .figures import BLUE, GREEN, GREY, ORANGE, RED, Figure, _layout
from .live import LiveFigures

if TYPE_CHECKING:
    from ..study import Study

COLORS = (BLUE, ORANGE, GREEN, RED, GREY)


class Lane(NamedTuple):
    name: str
    spent: tuple[float, ...]  # cumulative resource after each finished trial (by trial number)
    best: tuple[float | None, ...]  # best value so far after each
    trials: int
    budget: float  # resource used in all
    seconds: float  # trial time in all

    @property
    def best_value(self) -> float | None:
        return self.best[-1] if self.best else None

    def best_within(self, budget: float) -> float | None:
        """The best value of the trials that finished while at most ``budget`` was spent."""
        within = [best for spent, best in zip(self.spent, self.best, strict=True) if spent <= budget]
        return within[-1] if within else None

    def spent_to_reach(self, value: float) -> float:
        """The resource spent when the best value first became ``value``."""
        return next(spent for spent, best in zip(self.spent, self.best, strict=True) if best == value)


def lane(name: str, trials: Iterable[FrozenTrial], budget_name: str | None = None, maximize: bool = False,
         target: str | None = None) -> Lane:
    """One study's curve: resource spent vs best value so far (COMPLETE trials set the best)."""
    spent, best, used, seconds, current = [], [], 0.0, 0.0, None
    finished = sorted((t for t in trials if t.state.finished), key=lambda t: t.number)
    for trial in finished:
        amount = trial.budget_used(budget_name)  # stopped early: the reports it made
        used += 1 if amount is None else amount  # no budget dimension: one per trial
        seconds += trial.duration or 0.0
        value = trial_value(trial, target) if trial.state is TrialState.COMPLETE else None
        if value is not None and (current is None or (value > current if maximize else value < current)):
            current = value
        spent.append(used)
        best.append(current)
    return Lane(name, tuple(spent), tuple(best), len(finished), used, seconds)


def equal_budget(lanes: Sequence[Lane]) -> float | None:
    """The resource every lane with a result has spent: where the race is judged."""
    budgets = [lane.budget for lane in lanes if lane.best_value is not None]
    return min(budgets) if budgets else None


def winner(lanes: Sequence[Lane], maximize: bool = False) -> Lane | None:
    """The lane with the best value within the equal budget; the one that got there with less breaks a tie."""
    budget = equal_budget(lanes)
    scored = [(value, lane) for lane in lanes if budget is not None
              and (value := lane.best_within(budget)) is not None]
    if not scored:
        return None
    return min(scored, key=lambda pair: (-pair[0] if maximize else pair[0], pair[1].spent_to_reach(pair[0])))[1]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def summary(lanes: Sequence[Lane], maximize: bool = False, value_label: str = "value", unit: str = "trials") -> str:
    """Who won at equal compute, then one line per lane (the winner first): its best within that
    budget, its final best, its trials, the resource it spent and its trial seconds."""
    first, budget = winner(lanes, maximize), equal_budget(lanes)
    if first is None or budget is None:
        return "no study has a complete trial yet"
    rows = [f"{first.name} won with {value_label} {_fmt(first.best_within(budget))} within {budget:g} {unit}, "
            f"the budget every study spent"]
    for lane in sorted(lanes, key=lambda lane: lane is not first):
        rows.append(f"  {lane.name:<12} best {_fmt(lane.best_within(budget)):>8} within {budget:g}, "
                    f"{_fmt(lane.best_value):>8} in all  {lane.trials:>3} trials  {lane.budget:g} {unit}  "
                    f"{lane.seconds:.1f} s")
    return "\n".join(rows)


def race_figure(lanes: Sequence[Lane], value_label: str = "value", unit: str = "trials") -> Figure:
    """Best so far vs resource spent, one line per study; trial seconds per study beside it."""
    data: list[dict[str, Any]] = []
    for i, lane in enumerate(lanes):
        color = COLORS[i % len(COLORS)]
        data.append({"type": "scatter", "mode": "lines+markers", "name": label(lane.name), "x": list(lane.spent),
                     "y": list(lane.best), "line": {"shape": "hv", "color": color}, "marker": {"size": 4},
                     "legendgroup": label(lane.name)})
    data.append({"type": "bar", "x": [label(lane.name) for lane in lanes], "y": [lane.seconds for lane in lanes],
                 "marker": {"color": [COLORS[i % len(COLORS)] for i in range(len(lanes))]}, "xaxis": "x2",
                 "yaxis": "y2", "showlegend": False, "hovertemplate": "%{x}: %{y:.1f} s<extra></extra>"})
    budget = equal_budget(lanes)
    shapes = [] if budget is None else [{"type": "line", "xref": "x", "yref": "paper", "x0": budget, "x1": budget,
                                         "y0": 0, "y1": 1, "line": {"color": GREY, "dash": "dot", "width": 1}}]
    layout = _layout(f"The race: best {label(value_label)} so far vs {label(unit)} spent", height=420, shapes=shapes,
                     xaxis={"domain": [0.0, 0.68], "title": {"text": label(unit)}},
                     yaxis={"title": {"text": f"best {label(value_label)}"}},
                     xaxis2={"domain": [0.78, 1.0], "anchor": "y2"},
                     yaxis2={"anchor": "x2", "title": {"text": "trial seconds"}})
    return {"data": data, "layout": layout}


def check_one_problem(studies: Sequence[Study]) -> None:
    """Lanes are compared value for value and budget for budget: a maximised accuracy beside a
    minimised loss, or epochs beside trials, would crown a wrong winner."""
    first = studies[0]
    for study in studies[1:]:
        for what, theirs, ours in (("direction", study.direction, first.direction),
                                   ("target", study.target, first.target),
                                   ("budget dimension", study.space.budget_name, first.space.budget_name)):
            if theirs != ours:
                raise ValueError(f"a race compares studies of one problem, but study {study.name!r} has "
                                 f"{what} {theirs!r} where study {first.name!r} has {ours!r}")


class Race(LiveFigures):
    """A live race between studies on the same problem (same direction and target).

    >>> import hpwidgets as hw
    >>> studies = [hw.Study(a, {"x": hw.uniform(0, 1)}, a, seed=0, storage=None) for a in ("random", "tpe")]
    >>> for s in studies:
    ...     s.optimize(lambda p: p["x"], trials=3, progress=False)
    >>> Race(studies, mode="static").winner().name in ("random", "tpe")
    True
    """

    def __init__(self, studies: Sequence[Study], *, every_s: float = 1.0, mode: str = "auto") -> None:
        if not studies:
            raise ValueError("a race needs at least one study")
        check_one_problem(studies)
        self.studies = list(studies)
        first = self.studies[0]
        self.maximize, self.target = first.maximize, first.target
        self.budget_name = first.space.budget_name
        super().__init__(self.studies, every_s=every_s, mode=mode)

    def lanes(self) -> list[Lane]:
        return [lane(s.name, s.trials, self.budget_name, self.maximize, self.target) for s in self.studies]

    def winner(self) -> Lane | None:
        return winner(self.lanes(), self.maximize)

    def equal_budget(self) -> float | None:
        """The resource every study has spent so far: where ``winner`` judges them."""
        return equal_budget(self.lanes())

    def figures(self) -> list[dict[str, Any]]:
        return [race_figure(self.lanes(), self.target or "value", self.budget_name or "trials")]

    def text(self) -> str:
        return summary(self.lanes(), self.maximize, self.target or "value", self.budget_name or "trials")


def race(studies: Sequence[Study], **kwargs: Any) -> Race:
    """Display a live race between ``studies`` and return it (see ``Race``)."""
    view = Race(studies, **kwargs)
    view.show()
    return view
