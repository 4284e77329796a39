"""What a ``%%hptune`` cell sees while a trial runs: ``hp``, ``device`` and its own namespace.

Pure runtime, no IPython: the magic compiles the cell and hands it to ``CellObjective``.
"""

from __future__ import annotations

import contextvars
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .parse import DISTRIBUTIONS, PARAMS
from .trial import Trial

_CURRENT: contextvars.ContextVar[Trial | None] = contextvars.ContextVar("hpwidgets_trial", default=None)


class HP:
    """``hp`` in a tuned cell: the distributions and ``hp.report(step=..., **metrics)``.

    Outside a trial ``hp.uniform(0, 1)`` gives the dimension's default and ``hp.report`` does
    nothing, so the cell also runs as plain Python. The trial is found through a ContextVar
    of the thread running it: parallel trials never see each other's reports.
    """

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in DISTRIBUTIONS:
            raise AttributeError(f"hp has no {name!r}; it has {', '.join(dir(self))}")
        return lambda *args, **kwargs: DISTRIBUTIONS[name](*args, **kwargs).default

    def __dir__(self) -> list[str]:
        return [*DISTRIBUTIONS, "checkpoint_dir", "report", "should_stop", "trial"]

    @property
    def trial(self) -> Trial | None:
        return _CURRENT.get()

    @property
    def checkpoint_dir(self) -> Path | None:
        """The running trial's config folder (``Trial.checkpoint_dir``); None outside a trial."""
        trial = _CURRENT.get()
        return trial.checkpoint_dir if trial is not None else None

    def report(self, step: int | None = None, **metrics: Any) -> None:
        """A learning-curve point for the running trial; raises TrialPruned when it should stop."""
        trial = _CURRENT.get()
        if trial is not None:
            trial.report(step, **metrics)

    def should_stop(self) -> bool:
        trial = _CURRENT.get()
        return trial is not None and trial.should_stop()


hp = HP()


def _device(name: str) -> Any:
    """``torch.device`` when the user already imported torch (never import it for them)."""
    torch = sys.modules.get("torch")
    return torch.device(name) if torch is not None else name


class CellObjective:
    """Runs the compiled cell body once per trial in a shallow copy of the user's namespace."""

    def __init__(self, code: Any, namespace: dict[str, Any], key: str) -> None:
        self._code, self._namespace, self._key = code, namespace, key

    def __call__(self, params: dict[str, Any], trial: Trial) -> Any:
        namespace = dict(self._namespace)  # imports, data and functions visible; trial names stay here
        namespace.update({PARAMS: dict(params), "hp": hp, "device": _device(trial.device)})
        namespace.pop(self._key, None)  # the metric comes from this trial, never from the user's own `acc`
        token = _CURRENT.set(trial)
        try:
            exec(self._code, namespace)  # the user's own cell, run as they asked
        finally:
            _CURRENT.reset(token)
        if self._key not in namespace:
            raise NameError(f"the cell ended without setting `{self._key}`, the metric to optimise")
        return namespace[self._key]


# IPython's output history (_, __, ___, _3), input history (_i, _ii, _iii, _i3, _ih), _oh, _dh,
# _exit_code, and every dunder (__builtins__, __name__...).
_IPYTHON_NAME = re.compile(r"^(_+|_i{1,3}|_i?\d+|_ih|_oh|_dh|_exit_code|__\w+__)$")


def portable_namespace(namespace: dict[str, Any]) -> dict[str, Any]:
    """The part of a user namespace that can travel to worker processes or a Dask cluster.

    IPython's own entries (``In``, ``Out``, ``get_ipython``, ``_``, ``_i3``, ``__name__``...) and
    anything that cannot be pickled (open files, locks, live widgets, a DataLoader's iterator) stay
    behind; a trial needing one fails with NameError. The user's own ``_helper`` names travel.
    """
    import cloudpickle  # shipped with Dask; by-value pickling of notebook functions and classes

    portable = {}
    for name, value in namespace.items():
        if _IPYTHON_NAME.match(name) or name in ("In", "Out", "get_ipython", "exit", "quit"):
            continue
        try:
            cloudpickle.dumps(value)
        except Exception:  # objects refuse pickling in many ways (NotImplementedError, RuntimeError...)
            continue
        portable[name] = value
    return portable
