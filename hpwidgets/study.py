"""Study: the ask -> run -> tell loop, its controls (pause/resume/stop/wait) and its results.

The driving loop (``_study_loop.TrialLoop``) runs in the calling thread (``optimize``) or a
background thread (``optimize(background=True)``, what the notebook uses so widget clicks keep
working). A finished trial is written to the store *before* its event is published and before
the algorithm is told, so nothing a chart or an algorithm has seen can be missing on disk.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import _execute
from ._checks import check_max_failures, check_run, checked_name, checked_seed, count
from ._study_loop import TrialLoop
from .algorithms import Algorithm, make_algorithm, stored_algorithm
from .algorithms.base import resumed_seed
from .algorithms.pruners import Pruner, make_pruner, warn_if_unheard
from .checkpoints import CheckpointFolders
from .devices import GpuSpec, PerGpu
from .events import EventBus, Subscriber
from .results import StudyResults
from .runner import Executor, Runner, make_runner
from .space import Dimension, SearchSpace
from .trial import Direction, FrozenTrial, TrialState, resolve_direction

if TYPE_CHECKING:
    from .store import Store

Objective = Callable[..., Any]
DEFAULT_ALGO = "tpe"


def default_name() -> str:
    return f"study-{_dt.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"


def _open_store(storage: str | os.PathLike | Store | None) -> Store | None:
    if storage is None:
        return None
    from .store import Store
    if not isinstance(storage, (str, os.PathLike, Store)):
        raise ValueError(f"`storage` must be a file path, a Store or None, but got storage={storage!r}")
    return storage if isinstance(storage, Store) else Store(storage)


class Study(TrialLoop, StudyResults):
    """A named search over a space, optionally persisted to SQLite and resumed by name.

    >>> import hpwidgets as hw
    >>> study = hw.Study(space={"x": hw.uniform(-2, 2)}, algo="random", seed=0, storage=None)
    >>> study.optimize(lambda p: p["x"] ** 2, trials=5, progress=False)
    >>> len(study.trials)
    5

    ``algo=None`` resumes a stored study with the algorithm it last ran (``tpe`` for a new one).
    ``max_failures`` ends a run once that many of *its own* trials have failed: failures of earlier
    runs, and trials a killed process left "interrupted", do not count.
    """

    def __init__(self, name: str | None = None, space: SearchSpace | Mapping[str, Dimension] | None = None,
                 algo: str | Algorithm | None = None, *, maximize: Direction = None, minimize: Direction = None,
                 seed: int | None = None, storage: str | os.PathLike | Store | None = None,
                 max_failures: int | None = None, pruner: str | Pruner | None = None) -> None:
        self.name = checked_name(name) or default_name()
        self.maximize, self.target = resolve_direction(maximize, minimize)
        self.seed = checked_seed(seed)
        check_max_failures(max_failures)
        self.max_failures = max_failures
        self.algorithm = make_algorithm(DEFAULT_ALGO if algo is None else algo)
        self.pruner = make_pruner(pruner, self.algorithm.name)  # checked before the store is touched
        self.store = _open_store(storage)  # fails here, before any trial, if unwritable
        self.checkpoints = CheckpointFolders.for_study(self, self.name, self.store)
        self._bus = EventBus()
        # `with self._lock`, never `with self._cond`: Condition.__enter__ is Python code, and a Ctrl-C
        # landing just after it took the lock would leave the lock held with no `with` to release it
        # (the trial threads then wait forever); the C lock's own __enter__ leaves no such gap.
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._finished: dict[int, FrozenTrial] = {}
        self._running: dict[int, Mapping[str, Any]] = {}
        self._stop, self._paused = threading.Event(), False
        self._paused_since, self._paused_before = 0.0, 0.0  # monotonic: when this pause began, the earlier ones
        self._thread: threading.Thread | None = None
        self._driver_error: BaseException | None = None
        self._storage_error: Exception | None = None
        self._total_reached = False  # the store already holds n_target rows (other processes wrote some)
        self._driving = False
        self._run_failures = 0
        self._claimed: dict[int, threading.Thread] = {}
        self._outcomes: dict[int, FrozenTrial] = {}
        self._publishing: set[int] = set()
        # Set while no background search runs (one per run). An Event, not Thread.is_alive(): in
        # Python 3.11 a Ctrl-C inside Thread.join() marks a thread still running as dead (gh-90882).
        self._done = threading.Event()
        self._done.set()
        self.n_target = 0
        self.finish_reason: str | None = None
        self.space = self._attach(space, keep_stored_algo=algo is None)
        self.n_target = len(self._finished)

    # --- set-up and resume ----------------------------------------------------------------
    def _attach(self, space: SearchSpace | Mapping[str, Dimension] | None, keep_stored_algo: bool) -> SearchSpace:
        record = self.store.get_study(self.name) if self.store else None
        if space is None and record is None:
            raise ValueError(f"study {self.name!r} is not in the storage, so a search space is needed")
        adopted = keep_stored_algo and record is not None and record.algo != self.algorithm.spec()
        if adopted:  # resumed with what it last ran, e.g. the panel's dropdown choice
            self.algorithm = stored_algorithm(record.algo, self.name)
        elif record is not None:
            self.algorithm.continue_from(record.algo)
        space = SearchSpace.coerce(space) if space is not None else record.space
        # Checked before the store is written: a refused pair (hyperband without a budget) must not
        # leave a study record, or a changed space, that no later load could open.
        try:
            make_pruner(self.pruner, self.algorithm.name)  # a stored hyperband refuses a pruner
            self.algorithm.setup(space, seed=self.seed, maximize=self.maximize, target=self.target)
        except ValueError as error:
            if not adopted:
                raise
            raise ValueError(f"{error} (study {self.name!r} last ran {self.algorithm.spec()!r}; name another "
                             f"algorithm to change it)") from None
        if self.pruner is not None:
            self.pruner.setup(space, maximize=self.maximize, target=self.target)
        if self.store is not None:
            direction = "maximize" if self.maximize else "minimize"
            record = self.store.open_study(self.name, direction=direction, target=self.target, space=space,
                                           algo=self.algorithm.spec())
            self._record = record
            # By the JSON form: choice(0, 1) == choice(False, True) as Python values, yet they differ.
            if (record.space.to_json(), record.algo) != (space.to_json(), self.algorithm.spec()):
                self.store.update_study(record.id, space=space, algo=self.algorithm.spec())
            self.store.mark_interrupted(record.id)
        stored = self.store.load_trials(self._record.id) if self.store else []
        if stored:  # a resume: a fresh stream, or the seed would redraw the stored trials' configs
            self.algorithm.setup(space, seed=resumed_seed(self.seed, len(stored)), maximize=self.maximize,
                                 target=self.target)
        for trial in stored:
            if trial.state.finished:
                self._finished[trial.number] = trial
                self._tell(trial)
        return space

    # --- controls (thread-safe) -------------------------------------------------------------
    @property
    def running(self) -> bool:
        """A run is on (False from StudyFinished on), or a trial of one still runs."""
        return self._driving or bool(self._running)

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def paused_seconds(self) -> float:
        """Seconds this study has spent paused, all pauses together (the panel's ETA leaves them out)."""
        with self._lock:
            now = time.monotonic() if self._paused else self._paused_since
            return self._paused_before + now - self._paused_since

    def pause(self) -> None:
        """Start no new trial until ``resume()``; running trials finish."""
        with self._lock:
            self._set_paused(True)

    def resume(self) -> None:
        with self._lock:
            self._set_paused(False)

    def _set_paused(self, paused: bool) -> None:
        """Lock held."""
        if paused and not self._paused:
            self._paused_since = time.monotonic()
        elif self._paused and not paused:
            self._paused_before += time.monotonic() - self._paused_since
        self._paused = paused
        self._cond.notify_all()

    def stop(self) -> None:
        """Start no new trial; running trials see ``should_stop()`` and their next report prunes them."""
        with self._lock:
            self._stop.set()
            self._cond.notify_all()

    def add_trials(self, n: int) -> None:
        """Raise the target by ``n`` (the panel's "+10 trials"); a running search picks it up."""
        n = count("n", n, 1)
        with self._lock:
            self.n_target += n
            self._cond.notify_all()

    def set_space(self, space: SearchSpace | Mapping[str, Dimension]) -> None:
        """Change the space for the next suggestions; past trials stay, the model refits in range."""
        space = SearchSpace.coerce(space)
        if set(space) != set(self.space):
            raise ValueError(f"an edited space must keep the names {list(self.space)!r}, but got {list(space)!r}")
        with self._lock:
            self.space = space
            self.algorithm.set_space(space)
            if self.pruner is not None:
                self.pruner.set_space(space)
        if self.store is not None:
            self.store.update_study(self._record.id, space=space)

    def set_algorithm(self, algo: str | Algorithm) -> None:
        """Swap the algorithm between runs (the panel's dropdown); it is told the whole history."""
        algorithm = make_algorithm(algo)
        make_pruner(self.pruner, algorithm.name)  # refuses hyperband beside a pruner
        self._refuse_while_running("changing the algorithm")
        with self._lock:
            algorithm.setup(self.space, seed=resumed_seed(self.seed, len(self.trials)), maximize=self.maximize,
                            target=self.target)
            for trial in self.trials:
                algorithm.tell(trial)
            self.algorithm = algorithm
        if self.store is not None:  # so that a later resume or load_study continues with it
            self.store.update_study(self._record.id, algo=algorithm.spec())

    def set_pruner(self, pruner: str | Pruner | None) -> None:
        """Swap the pruner between runs (the panel's dropdown; None or "none" for no pruning).
        A new pruner is told the whole history, so it judges the next trials against the stored reports."""
        made = make_pruner(pruner, self.algorithm.name)  # refuses a pruner beside hyperband
        self._refuse_while_running("changing the pruner")
        with self._lock:
            if made is not None:
                made.setup(self.space, maximize=self.maximize, target=self.target)
                for trial in self.trials:
                    made.tell(trial)
            self.pruner = made

    def clean_checkpoints(self, keep_best: bool = True) -> tuple[int, int]:
        """Remove this study's checkpoint folders, except the best trial's when ``keep_best``;
        returns (folders removed, bytes freed). A later run retrains a config whose folder is gone.
        When some folder stays, ``checkpoints.CleanError`` (an OSError) names it, after the rest went."""
        self._refuse_while_running("cleaning its checkpoints")  # a running trial may be writing one
        if self.store is not None:  # trials another process (or Study object) runs from the same file
            self.store.mark_interrupted(self._record.id)  # dead processes' rows are not running
            others = [t.number for t in self.store.load_trials(self._record.id) if t.state is TrialState.RUNNING]
            if others:
                raise RuntimeError(f"study {self.name!r} has trials {others} running elsewhere; "
                                   f"clean its checkpoints once they finish")
        keep: list[dict[str, Any]] = []
        if keep_best:
            with contextlib.suppress(ValueError):  # no complete trial: nothing is best
                keep = [self.best_params]
        return self.checkpoints.clean(keep, self.space.budget_name)

    def _refuse_while_running(self, what: str) -> None:
        if self.running:
            raise RuntimeError(f"study {self.name!r} is running; stop it before {what}")

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Receive TrialStarted / TrialReported / TrialFinished / StudyFinished events."""
        return self._bus.subscribe(callback)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a background search ends; True when it has, then raising the error that
        ended it, if any (once). Ctrl-C pauses the study."""
        try:
            finished = self._done.wait(timeout)
        except KeyboardInterrupt:
            self.pause()
            raise
        if finished and self._driver_error is not None:
            error, self._driver_error = self._driver_error, None
            raise error
        return finished

    # --- the loop ---------------------------------------------------------------------------
    def optimize(self, objective: Objective, trials: int = 20, *, parallel: int = 1, timeout: float | None = None,
                 background: bool = False, progress: bool = True, runner: Runner | None = None,
                 gpus: GpuSpec = None, per_gpu: PerGpu = 1, executor: Executor = None) -> None:
        """Run until ``trials`` trials in total have finished (resumed ones count), then return.

        ``objective(params)`` or ``objective(params, trial)`` returns a float or a dict of metrics.
        ``gpus`` ("auto", an index or a list) and ``per_gpu`` (int or "auto") give each trial a
        ``trial.device`` slot; ``executor`` is None/"threads", "processes" or a Dask cluster
        ("dask://host:port" or a ``distributed.Client``). See ``runner.make_runner``.
        """
        trials = check_run(objective, trials, timeout)
        if self.running:
            raise RuntimeError(f"study {self.name!r} is already running; stop() or wait() first")
        runner = runner or make_runner(parallel, gpus=gpus, per_gpu=per_gpu, executor=executor)
        self._runner = runner
        self.algorithm.parallel, self.algorithm.pruning = runner.capacity, self.pruner is not None
        if self.store is not None:  # the spec may follow `parallel`: Hyperband's "auto" records the mode it runs
            self.store.update_study(self._record.id, algo=self.algorithm.spec())
        self._reset_run(trials)
        detach = self._attach_progress(progress)
        deadline = None if timeout is None else time.monotonic() + timeout
        call = self.checkpoints.wrap(_execute.bind(objective), self.space.budget_name)
        warn_if_unheard(self.pruner, _execute.may_report(call))
        self._driving = True  # until just before StudyFinished: `_drive` always gets there
        if background:
            self._done = done = threading.Event()  # this run's: a run chained from StudyFinished gets its own
            self._thread = threading.Thread(target=self._drive, args=(call, runner, deadline, detach, done),
                                            name=f"hpwidgets-{self.name}", daemon=True)
            self._thread.start()
        else:
            self._drive(call, runner, deadline, detach)

    def _reset_run(self, trials: int) -> None:
        """A new run's state: nothing of an earlier run (its error, its failures) carries over."""
        with self._lock:
            self.n_target = max(trials, len(self._finished))
            self._stop.clear()
            self._set_paused(False)
            self._storage_error = self._driver_error = None
            self._total_reached = False
            self._run_failures = 0
            self._claimed.clear()
            self._outcomes.clear()
            self._publishing.clear()

    def _attach_progress(self, progress: bool) -> Callable[[], None]:
        if not progress:
            return lambda: None
        from .progress import ProgressBar
        return self.subscribe(ProgressBar(self))

    def __repr__(self) -> str:
        return (f"Study(name={self.name!r}, algo={self.algorithm.name!r}, direction={self.direction!r}, "
                f"trials={len(self._finished)}/{self.n_target})")
