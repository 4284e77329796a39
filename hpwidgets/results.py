"""A study's results: its finished trials, the best one, and tabular views (pandas only when asked for)."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    import pandas

    from .study import Study


def trial_row(trial: FrozenTrial) -> dict[str, Any]:
    """One flat row: Optuna-style ``params_<name>`` and ``metric_<name>`` columns."""
    row: dict[str, Any] = {"number": trial.number, "state": trial.state.value, "value": trial.value}
    row.update({f"params_{k}": v for k, v in trial.params.items()})
    row.update({f"metric_{k}": v for k, v in trial.metrics.items()})
    row.update({"duration_s": trial.duration, "device": trial.device, "error": first_line(trial.error)})
    return row


def first_line(error: str | None) -> str | None:
    """An error's first non-empty line (its ``Type: message``); None without one. An unsaved
    trial's note starts with a newline when the trial itself had no error."""
    return error.strip().splitlines()[0] if error and error.strip() else None


def best_or_none(study: Study) -> FrozenTrial | None:
    """The best trial, or None before any trial has completed (where ``best_trial`` raises)."""
    try:
        return study.best_trial
    except ValueError:
        return None


def first_failure(trials: Sequence[FrozenTrial]) -> str | None:
    """The failed trials in one clause, e.g. ``3 failed, the first (trial 0) with ZeroDivisionError:
    division by zero``; None when none failed. Terminal summaries add it: without it a study whose
    every trial failed says only that nothing completed."""
    failed = sorted((t for t in trials if t.state is TrialState.FAIL), key=lambda t: t.number)
    if not failed:
        return None
    first = failed[0]
    reason = first_line(first.error) or "no error recorded"
    return f"{len(failed)} failed, the first (trial {first.number}) with {reason}"


def failure_summary(study: Study) -> str | None:
    """``first_failure``'s clause, and whether ``max_failures`` (``--max-failures``) ended the study:
    the failure line that the magic's summary and ``hptune run`` both print."""
    clause = first_failure(study.trials)
    if clause and study.finish_reason == "max_failures":
        clause += f"; stopped at --max-failures {study.max_failures}"
    return clause


def outside_space_note(study: Study, trial: FrozenTrial) -> str:
    """`` (trial N, outside the current space)`` for a best trial from before the space changed
    (a resumed study, an edited slider), so a best value the space no longer allows is not a puzzle."""
    return "" if study.space.contains(trial.params) else f" (trial {trial.number}, outside the current space)"


def trials_dataframe(trials: Sequence[FrozenTrial]) -> pandas.DataFrame:
    import pandas as pd
    rows = [trial_row(t) for t in trials]
    columns = ["number", "state", "value"] if not rows else None
    return pd.DataFrame(rows, columns=columns)


class StudyResults:
    """The read-only side of ``Study``: what has finished and which trial is best (thread-safe)."""

    name: str
    maximize: bool
    _lock: threading.RLock  # Study's: entered directly, never through its Condition (see Study.__init__)
    _finished: dict[int, FrozenTrial]
    _running: dict[int, Mapping[str, Any]]

    @property
    def trials(self) -> list[FrozenTrial]:
        """Finished trials (COMPLETE, PRUNED, FAIL), ordered by number."""
        with self._lock:  # an RLock: safe to call while holding it
            return [self._finished[n] for n in sorted(self._finished)]

    @property
    def running_trials(self) -> dict[int, Mapping[str, Any]]:
        with self._lock:
            return dict(self._running)

    @property
    def best_trial(self) -> FrozenTrial:
        trials = self.trials
        complete = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
        if not complete:
            failures = first_failure(trials)
            raise ValueError(f"study {self.name!r} has no complete trial yet" + (f" ({failures})" if failures else ""))
        pick = max if self.maximize else min
        return pick(complete, key=lambda t: t.value)

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best_trial.params)

    @property
    def best_value(self) -> float:
        return self.best_trial.value  # type: ignore[return-value]

    @property
    def direction(self) -> str:
        return "maximize" if self.maximize else "minimize"

    def trials_dataframe(self) -> pandas.DataFrame:
        """One row per finished trial: number, state, value, params_*, metric_*, timing, error."""
        return trials_dataframe(self.trials)

    def report(self, path: str | os.PathLike[str] = "report.html", *, title: str | None = None) -> Path:
        """Write the self-contained HTML report (history, slices, curves, best config, table); returns its path."""
        from .report import write_report
        return write_report(self, path, title=title)
