"""Trials: the live ``Trial`` user code reports to, and the immutable ``FrozenTrial`` record.

Algorithms, the store and the charts only ever see ``FrozenTrial``; user code only ever
sees ``Trial``. The study connects the two through the hooks passed to ``Trial``.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

Direction = bool | str | None  # True / a metric name for maximize= or minimize=


class TrialState(str, enum.Enum):
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    PRUNED = "PRUNED"
    FAIL = "FAIL"

    @property
    def finished(self) -> bool:
        return self is not TrialState.RUNNING


class TrialPruned(Exception):
    """Raised by ``Trial.report`` when the algorithm (or a Stop) ends the trial early."""


@dataclass(frozen=True)
class Report:
    """One ``trial.report(step, **metrics)`` call: a point on the learning curve."""

    step: int
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class FrozenTrial:
    number: int
    state: TrialState
    params: Mapping[str, Any]
    value: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    reports: tuple[Report, ...] = ()
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def last_reported(self, target: str | None) -> float | None:
        """The newest reported value of ``target`` (a pruned trial's stand-in value)."""
        for report in reversed(self.reports):
            value = target_value(report.metrics, target)
            if value is not None:
                return value
        return None

    def reported(self, target: str | None) -> list[tuple[int, float]]:
        """(step, value) of every report that carries ``target``: the learning curve."""
        return [(r.step, v) for r in self.reports if (v := target_value(r.metrics, target)) is not None]

    def budget_used(self, budget_name: str | None) -> float | None:
        """The resource this trial used: its budget parameter, or, stopped early, one unit per report
        up to it (a pruner judges per-epoch reports); None without a numeric budget."""
        allotted = self.params.get(budget_name) if budget_name else None
        if isinstance(allotted, bool) or not isinstance(allotted, (int, float)):
            return None
        if self.state is TrialState.PRUNED and self.reports:
            return min(len(self.reports), allotted)
        return allotted

    def evolve(self, **changes: Any) -> FrozenTrial:
        return replace(self, **changes)


def resolve_direction(maximize: Direction, minimize: Direction) -> tuple[bool, str | None]:
    """(maximize?, target metric) from the two keyword forms; both set is an error."""
    if maximize not in (None, False) and minimize not in (None, False):
        raise ValueError(f"give `maximize` or `minimize`, not both, but got maximize={maximize!r}, "
                         f"minimize={minimize!r}")
    for name, value in (("maximize", maximize), ("minimize", minimize)):
        if not (value is None or isinstance(value, bool) or (isinstance(value, str) and value.strip())):
            raise ValueError(f"`{name}` must be True or a metric name, but got {name}={value!r}")
    if isinstance(maximize, str):
        return True, maximize
    if isinstance(minimize, str):
        return False, minimize
    return maximize is True, None


def target_value(metrics: Mapping[str, float], target: str | None) -> float | None:
    """The target metric, or the only metric when no target is named."""
    if target is not None:
        return metrics.get(target)
    return next(iter(metrics.values())) if len(metrics) == 1 else None


def as_metric(name: str, value: Any) -> float:
    """A finite float from a user's metric, or ValueError naming the metric and the value."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        item = getattr(value, "item", None)  # 0-d torch / numpy arrays
        if callable(item) and getattr(value, "ndim", None) == 0:
            return as_metric(name, item())
        # A one-element batch (`loss.mean(0)`) is a shape to fix, not a value to guess from: name the fix.
        hint = "; a one-element array: return .item() of it" if callable(item) and _size(value) == 1 else ""
        raise ValueError(f"metric {name!r} must be a number, but got {value!r} ({type(value).__name__}){hint}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"metric {name!r} must be finite, but got {value!r}")
    return value


def _size(value: Any) -> int | None:
    size = getattr(value, "size", None)  # numpy: an int; torch: a method returning the shape
    size = getattr(value, "numel", lambda: None)() if callable(size) else size
    return size if isinstance(size, int) else None


PruneHook = Callable[["Trial", int, Mapping[str, float]], bool]


class Trial:
    """What an objective receives as its second argument.

    >>> def objective(params, trial):
    ...     for epoch in range(3):
    ...         trial.report(epoch, accuracy=0.5 + 0.1 * epoch)
    ...     return 0.7
    """

    def __init__(self, number: int, params: Mapping[str, Any], *, device: str = "cpu",
                 on_report: PruneHook | None = None, stopping: Callable[[], bool] | None = None) -> None:
        self.number = number
        self.params: Mapping[str, Any] = MappingProxyType(dict(params))
        self.device = device
        self.reports: list[Report] = []
        self._on_report = on_report
        self._stopping = stopping or (lambda: False)
        self._pruned = False
        self._checkpoint_dir: Path | None = None

    @property
    def checkpoint_dir(self) -> Path | None:
        """This config's checkpoint folder, created on first use: every trial of the same params
        (the budget aside) in a study shares it, so a config Hyperband promotes to a larger
        budget can load what its last trial saved and train only the new epochs. None for a
        trial made outside a study."""
        if self._checkpoint_dir is not None:
            self._checkpoint_dir.mkdir(parents=True, exist_ok=True)
        return self._checkpoint_dir

    @checkpoint_dir.setter
    def checkpoint_dir(self, folder: str | os.PathLike[str] | None) -> None:
        self._checkpoint_dir = None if folder is None else Path(folder)

    def report(self, step: int | None = None, **metrics: Any) -> None:
        """Record metrics at ``step``, the epochs (or other units) trained so far; by default the step
        after the last report, starting at 1, as the pruners' rungs (1, 3, 9, ...) count. Raises
        TrialPruned when told to stop."""
        if step is None:
            step = self.reports[-1].step + 1 if self.reports else 1
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise ValueError(f"`step` must be an integer, but got step={step!r}")
        if not metrics:
            raise ValueError("report() needs at least one metric, e.g. trial.report(epoch, accuracy=0.9)")
        clean = {name: as_metric(name, value) for name, value in metrics.items()}
        report = Report(int(step), MappingProxyType(clean))
        self.reports.append(report)
        if self._on_report is not None and self._on_report(self, report.step, report.metrics):
            self._pruned = True
        if self.should_stop():
            self._pruned = True
            raise TrialPruned(f"trial {self.number} stopped at step {report.step}")

    def should_stop(self) -> bool:
        """True when the algorithm pruned this trial or the study is stopping."""
        return self._pruned or self._stopping()

    @property
    def pruned(self) -> bool:
        return self._pruned

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, params={dict(self.params)!r}, device={self.device!r})"
