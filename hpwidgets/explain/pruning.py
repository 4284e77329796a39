"""The pruning explainer: each trial's learning curve, where it was stopped, and what stopping saved.

A pruner (``algorithms/pruners.py``) stops a trial from its reports. This view keeps each
finished trial's reported values by step, the rungs an ASHA pruner judged at (steps
``min_step * eta**k``: a trial went on only if it was among the best ``1/eta`` reported there so
far), how many trials reached each rung and how many were stopped before the next, and for the
median pruner the median of the finished trials' values at each step (the line to beat). The
saving: the steps trained in all against the steps the same trials would have trained had each
run to the end, as the longest complete trial did.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from ..trial import FrozenTrial, TrialState


class Curve(NamedTuple):
    number: int
    steps: tuple[int, ...]
    values: tuple[float, ...]  # the target as reported (not negated when maximising)
    state: TrialState


class RungCount(NamedTuple):
    step: int
    reached: int  # trials that reported at this step or later
    stopped: int  # stopped trials whose last report lies between this rung and the next


class PruningView(NamedTuple):
    pruner: str
    curves: tuple[Curve, ...]
    rungs: tuple[RungCount, ...]
    median: tuple[tuple[int, float], ...]  # (step, median of the finished trials there); median pruner only
    spent: int  # steps trained in all: each curve's last step
    full: int  # steps had every trial run as long as the longest complete one

    @property
    def stopped(self) -> int:
        return sum(1 for c in self.curves if c.state is TrialState.PRUNED)


def curves(trials: Iterable[FrozenTrial], target: str | None = None) -> tuple[Curve, ...]:
    """Finished trials that reported the target, with their (step, value) reports in order."""
    out = []
    for trial in sorted((t for t in trials if t.state.finished), key=lambda t: t.number):
        points = trial.reported(target)
        if points:
            out.append(Curve(trial.number, tuple(s for s, _ in points), tuple(v for _, v in points), trial.state))
    return tuple(out)


def rung_counts(the_curves: Sequence[Curve], rung_steps: Sequence[int]) -> tuple[RungCount, ...]:
    """Per rung: trials that got there, and stopped trials whose last report is before the next rung."""
    counts = []
    for i, step in enumerate(rung_steps):
        upper = rung_steps[i + 1] if i + 1 < len(rung_steps) else None
        reached = sum(1 for c in the_curves if c.steps[-1] >= step)
        stopped = sum(1 for c in the_curves if c.state is TrialState.PRUNED and c.steps[-1] >= step
                      and (upper is None or c.steps[-1] < upper))
        counts.append(RungCount(step, reached, stopped))
    return tuple(counts)


def median_line(the_curves: Sequence[Curve]) -> tuple[tuple[int, float], ...]:
    by_step: dict[int, list[float]] = {}
    for curve in the_curves:
        for step, value in zip(curve.steps, curve.values, strict=True):
            by_step.setdefault(step, []).append(value)
    return tuple((step, statistics.median(values)) for step, values in sorted(by_step.items()))


def pruning_view(trials: Iterable[FrozenTrial], target: str | None = None, pruner: str = "none",
                 rung_steps: Sequence[int] = ()) -> PruningView:
    """What a pruner did to a study's trials (``rung_steps``: ``ASHAPruner.rung_steps()``)."""
    found = curves(trials, target)
    if not found:
        raise ValueError("no finished trial has reported the target yet (trial.report / hp.report)")
    # a report's step is the epochs trained so far (trial.report), so a curve trained to its last step,
    # however sparsely it reported
    trained = [max(c.steps[-1], 0) for c in found]
    longest = max((t for t, c in zip(trained, found, strict=True) if c.state is TrialState.COMPLETE), default=0)
    spent = sum(trained)
    full = sum(max(t, longest) for t in trained)
    median = median_line(found) if pruner == "median" else ()
    return PruningView(pruner, found, rung_counts(found, rung_steps), median, spent, full)


def pruning_text(view: PruningView) -> str:
    """The view in one sentence: how many were stopped, where, and the steps saved."""
    where = "; ".join(f"rung {r.step}: {r.reached} reached, {r.stopped} stopped" for r in view.rungs)
    saving = f"{view.spent} steps trained instead of {view.full}" + (
        f" ({view.spent / view.full:.0%})" if view.full else "")
    return (f"pruning explainer ({view.pruner}): {len(view.curves)} trials, {view.stopped} stopped early"
            + (f" ({where})" if where else "") + f"; {saving} had every trial run to the end")
