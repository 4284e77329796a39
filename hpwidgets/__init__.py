"""hpwidgets: hyperparameter tuning as a first-class citizen of Jupyter notebooks.

>>> import hpwidgets as hw
>>> space = {"x": hw.uniform(-5, 5), "n": hw.int(1, 10)}
>>> study = hw.tune(lambda p: (p["x"] - 1) ** 2 + p["n"], space, algo="random", trials=10,
...                 seed=0, storage=None, progress=False)
>>> study.best_params["n"] >= 1
True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .algorithms import ALGORITHMS, Algorithm, make_algorithm
from .algorithms.pruners import PRUNERS, ASHAPruner, MedianPruner, Pruner
from .events import StudyFinished, TrialFinished, TrialReported, TrialStarted
from .space import Budget, Choice, Dimension, Float, Int, SearchSpace, budget, choice, loguniform, quniform, uniform
from .space import integer as int
from .study import Direction, Study
from .trial import FrozenTrial, Trial, TrialPruned, TrialState

if TYPE_CHECKING:
    from .store import Store

__version__ = "0.1.0"


def tune(objective: Callable[..., Any], space: SearchSpace | Mapping[str, Dimension], *,
         algo: str | Algorithm | None = None, trials: int = 20, maximize: Direction = None,
         minimize: Direction = None, seed: int | None = None, name: str | None = None,
         storage: str | os.PathLike | Store | None = "hptune.db", parallel: int = 1,
         timeout: float | None = None, max_failures: int | None = None, background: bool = False,
         progress: bool = True, gpus: Any = None, per_gpu: int | str = 1, executor: Any = None,
         pruner: str | Pruner | None = None) -> Study:
    """Create (or resume, by ``name`` in ``storage``) a study and run it to ``trials`` trials.

    ``objective(params)`` or ``objective(params, trial)`` returns a float or a dict of metrics;
    ``maximize="accuracy"`` / ``minimize="loss"`` names the target metric, ``maximize=True``
    maximises a plain float. ``storage=None`` keeps the study in memory only. ``gpus``, ``per_gpu``
    and ``executor`` choose where trials run (see ``Study.optimize``). ``pruner="asha"`` stops
    trials early from what they ``trial.report`` (see ``hpwidgets.algorithms.pruners``).
    ``algo=None`` resumes a stored study with the algorithm it last ran, and starts a new one with "tpe".
    """
    study = Study(name, space, algo, maximize=maximize, minimize=minimize, seed=seed, storage=storage,
                  max_failures=max_failures, pruner=pruner)
    study.optimize(objective, trials, parallel=parallel, timeout=timeout, background=background,
                   progress=progress, gpus=gpus, per_gpu=per_gpu, executor=executor)
    return study


def load_study(name: str, storage: str | os.PathLike | Store = "hptune.db",
               algo: str | Algorithm | None = None, pruner: str | Pruner | None = None, *,
               read_only: bool = False) -> Study:
    """Open a stored study by name, with its stored space, direction and algorithm; ``pruner``
    (not stored: a choice per run) judges new trials against the stored trials' reports.

    An algorithm that cannot be rebuilt (the user's own class, object options) needs ``algo=``;
    ``read_only=True`` (a report, cleaning checkpoints) opens the study anyway, its algorithm
    standing in as the stored spec's text: such a study refuses to ``optimize`` without ``algo=``.
    """
    from .algorithms import readable_algorithm
    from .store import Store
    if not isinstance(storage, Store) and not os.path.exists(storage):  # a typo must not leave an empty file
        raise ValueError(f"no storage file {os.fspath(storage)!r}; load_study opens a store that exists")
    store = storage if isinstance(storage, Store) else Store(storage)
    record = store.get_study(name)
    if record is None:
        known = [s.name for s in store.list_studies()]
        raise ValueError(f"no study named {name!r} in {store.path}; it has {known!r}")
    direction = {"maximize": record.target or True} if record.direction == "maximize" else \
        {"minimize": record.target or True}
    if read_only and algo is None:
        algo = readable_algorithm(record.algo, name)  # None: a built-in one, rebuilt as for a resume
    return Study(name, record.space, algo, storage=store, pruner=pruner, **direction)  # algo None: the stored one


_LAZY_MODULES = ("data", "datasets", "devices", "explain")  # data helpers import torch / scikit-learn on use


def __getattr__(name: str) -> Any:
    """``hw.data`` and ``hw.datasets`` load on first use, so ``import hpwidgets`` stays light."""
    if name in _LAZY_MODULES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext hpwidgets``: imported lazily so ``import hpwidgets`` stays light."""
    from .magic import load_ipython_extension as load
    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext hpwidgets`` / ``%reload_ext``: remove the magic's hooks."""
    from .magic import unload_ipython_extension as unload
    unload(ipython)


__all__ = [
    "ALGORITHMS", "PRUNERS", "ASHAPruner", "Algorithm", "Budget", "Choice", "Dimension", "Float", "FrozenTrial",
    "Int", "MedianPruner", "Pruner", "SearchSpace", "Study", "StudyFinished", "Trial", "TrialFinished", "TrialPruned",
    "TrialReported", "TrialStarted", "TrialState", "budget", "choice", "data", "datasets", "explain", "int",
    "load_study", "loguniform", "make_algorithm", "quniform", "tune", "uniform",
]
