"""Run one objective call and turn whatever happens into a FrozenTrial.

Every outcome has a state: a number (or the target in a dict of metrics) is COMPLETE,
``TrialPruned`` is PRUNED, and anything else (an exception, NaN, None, a string) is FAIL
with the reason and the traceback, so the search goes on.
"""

from __future__ import annotations

import inspect
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from .trial import FrozenTrial, PruneHook, Trial, TrialPruned, TrialState, as_metric

BoundObjective = Callable[[Mapping[str, Any], Trial], Any]


def _wants_trial(objective: Callable[..., Any]) -> bool:
    """True for ``objective(params, trial)``; False for ``objective(params)``."""
    try:
        signature = inspect.signature(objective)
    except (TypeError, ValueError):  # builtins without a signature: assume the simple form
        return False
    positional = [p for p in signature.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    has_varargs = any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values())
    return len(positional) >= 2 or has_varargs


class ParamsOnly:
    """``objective(params)`` called as ``objective(params, trial)``: it never sees the trial, so
    it never reports (remote runners then need no report channel)."""

    def __init__(self, objective: Callable[[Mapping[str, Any]], Any]) -> None:
        self.objective = objective

    def __call__(self, params: Mapping[str, Any], trial: Trial) -> Any:
        return self.objective(params)


def bind(objective: Callable[..., Any]) -> BoundObjective:
    """Inspect the signature once per study run, not once per trial."""
    if _wants_trial(objective):
        return objective
    return ParamsOnly(objective)


def may_report(call: BoundObjective) -> bool:
    return not isinstance(call, ParamsOnly)


def outcome(result: Any, target: str | None) -> tuple[float, dict[str, float]]:
    """(value, metrics) from an objective's return value; ValueError explains a bad one."""
    if isinstance(result, Mapping):
        metrics = {str(k): as_metric(str(k), v) for k, v in result.items()}
        if target is not None:
            if target not in metrics:
                raise ValueError(f"the objective returned the metrics {sorted(metrics)!r} but not the "
                                 f"target {target!r}")
            return metrics[target], metrics
        if not metrics:
            raise ValueError("the objective returned an empty dict; return a number or {metric: value}")
        if len(metrics) != 1:
            raise ValueError(f"the objective returned several metrics {sorted(metrics)!r}; name the one to "
                             f"optimise with maximize='name' or minimize='name'")
        return next(iter(metrics.values())), metrics
    if result is None:
        raise ValueError("the objective returned None; return a number or a dict of metrics")
    value = as_metric(target or "value", result)
    return value, ({target: value} if target else {})


def run(call: BoundObjective, number: int, params: Mapping[str, Any], device: str, *, target: str | None,
        on_report: PruneHook | None = None, stopping: Callable[[], bool] | None = None) -> FrozenTrial:
    trial = Trial(number, params, device=device, on_report=on_report, stopping=stopping)
    started = time.time()
    fields: dict[str, Any]
    try:
        value, metrics = outcome(call(trial.params, trial), target)
        fields = {"state": TrialState.COMPLETE, "value": value, "metrics": metrics}
        if trial.pruned:  # the objective caught TrialPruned itself and returned its value
            fields["state"] = TrialState.PRUNED
    except TrialPruned:
        fields = {"state": TrialState.PRUNED}
    except KeyboardInterrupt:
        fields = {"state": TrialState.FAIL, "error": "interrupted: KeyboardInterrupt (the study is stopped)"}
    except BaseException as error:  # SystemExit (argparse, sys.exit), CancelledError...: FAIL, never lost
        fields = {"state": TrialState.FAIL, "error": describe(error)}
    frozen = FrozenTrial(number=number, params=params, reports=tuple(trial.reports), started_at=started,
                         finished_at=time.time(), device=device, **fields)
    if frozen.state is TrialState.PRUNED and "value" not in fields:
        # A pruned trial stands for its newest reported target value.
        last = trial.reports[-1].metrics if trial.reports else {}
        frozen = frozen.evolve(value=frozen.last_reported(target), metrics=last)
    return frozen


def describe(error: BaseException) -> str:
    """Type, message and traceback; an exception whose ``str()`` raises still gets described."""
    try:
        text = str(error)
    except Exception:
        text = "<str() failed>"
    return f"{type(error).__name__}: {text}\n\n{traceback.format_exc()}"
