"""Tabular views of finished trials (pandas imported only when asked for)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .trial import FrozenTrial

if TYPE_CHECKING:
    import pandas


def trial_row(trial: FrozenTrial) -> dict[str, Any]:
    """One flat row: Optuna-style ``params_<name>`` and ``metric_<name>`` columns."""
    row: dict[str, Any] = {"number": trial.number, "state": trial.state.value, "value": trial.value}
    row.update({f"params_{k}": v for k, v in trial.params.items()})
    row.update({f"metric_{k}": v for k, v in trial.metrics.items()})
    row.update({"duration_s": trial.duration, "device": trial.device,
                "error": trial.error.splitlines()[0] if trial.error else None})
    return row


def trials_dataframe(trials: Sequence[FrozenTrial]) -> pandas.DataFrame:
    import pandas as pd
    rows = [trial_row(t) for t in trials]
    columns = ["number", "state", "value"] if not rows else None
    return pd.DataFrame(rows, columns=columns)
