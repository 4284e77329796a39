"""The driving loop of ``Study``: ask -> run -> tell, and how a run ends, even on Ctrl-C.

Ordering rules (each one a bug when broken):
- A finished trial is written to the store *before* its event is published and before the
  algorithm is told, so nothing a chart or an algorithm has seen can be missing on disk.
- A slot is reserved *before* the ask, which checks stop/pause under the study's lock, so no
  trial starts after ``stop()`` or ``pause()`` has returned.
- A run is "complete" only once the last trial's TrialFinished subscribers have returned, so
  ``add_trials`` from one of them extends the run, whatever ``parallel`` is; and the target is
  checked again once the runner has shut down, so ``add_trials`` meanwhile extends it too.
- Whatever ends the loop (Ctrl-C in a subscriber, the store, the algorithm, a second Ctrl-C
  while the runner shuts down), every trial still registered is booked through
  ``_record_finished``: its outcome if it had one, else FAIL "interrupted"; then the study ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import _execute, _locks
from .events import EventBus, StudyFinished, TrialFinished, TrialReported, TrialStarted
from .space import _plain
from .trial import FrozenTrial, Report, TrialState, target_value

if TYPE_CHECKING:
    from .algorithms import Algorithm
    from .algorithms.pruners import Pruner
    from .devices import Slot
    from .runner import Runner
    from .space import SearchSpace
    from .store import Store

INTERRUPTED = "interrupted"  # the error of a trial that a Ctrl-C (or a driver error) cut off


class TrialLoop:
    """``Study``'s loop; the attributes below are set up by ``Study.__init__`` and ``optimize``."""

    name: str
    store: Store | None
    _record: Any
    algorithm: Algorithm
    pruner: Pruner | None
    space: SearchSpace
    maximize: bool
    target: str | None
    max_failures: int | None
    n_target: int
    finish_reason: str | None
    _bus: EventBus
    _lock: threading.RLock  # entered with `with self._lock` (see Study.__init__); _cond waits on it
    _cond: threading.Condition
    _finished: dict[int, FrozenTrial]
    _running: dict[int, Mapping[str, Any]]
    _stop: threading.Event
    _paused: bool
    _runner: Runner
    _driving: bool  # from optimize() until just before StudyFinished
    _driver_error: BaseException | None
    _storage_error: Exception | None
    _total_reached: bool
    _run_failures: int  # FAIL trials of this optimize() run: what max_failures counts
    _claimed: dict[int, threading.Thread]  # running trial -> the thread that books its outcome
    _outcomes: dict[int, FrozenTrial]  # outcomes being booked: a Ctrl-C mid-way has the driver book them again
    _publishing: set[int]  # finished trials whose TrialFinished subscribers are still running

    def _drive(self, call: _execute.BoundObjective, runner: Runner, deadline: float | None,
               detach: Callable[[], None], done: threading.Event | None = None) -> None:
        """Run the loop to its end. ``done`` is a background run's: errors are kept for ``wait()``
        instead of raised, and ``done`` is set once StudyFinished's subscribers have returned."""
        reason, error_text = INTERRUPTED, None
        try:
            while True:
                reason = INTERRUPTED  # until this pass returns
                reason = self._run_once(call, runner, deadline)
                if not self._wants_more(reason, deadline):
                    break
            if self._storage_error is not None:  # the trials so far are saved; say why it stopped
                raise self._storage_error
        except BaseException as error:
            if isinstance(error, Exception):  # not Ctrl-C: say what broke (a sampler, the store...)
                error_text = f"{type(error).__name__}: {error}"
                reason = "error" if reason == INTERRUPTED else reason
            if done is None:
                raise
            self._driver_error = error
        finally:
            self.finish_reason = reason
            self._driving = False  # StudyFinished's subscribers see `running` False and may start a run
            try:
                self._bus.publish(StudyFinished(self.name, reason, len(self._finished), error_text))
            finally:
                detach()
                if done is not None:
                    done.set()

    def _run_once(self, call: _execute.BoundObjective, runner: Runner, deadline: float | None) -> str:
        """The loop to its end, then the runner settled: every trial returned or booked."""
        try:
            return self._loop(call, runner, deadline)
        except KeyboardInterrupt:
            self._stop.set()  # the running trials stop at their next report, as after stop()
            raise
        except Exception as error:  # a Ctrl-C that broke the standard library's lock bookkeeping
            if not isinstance(error.__context__, KeyboardInterrupt):  # (threading's Semaphore: a
                raise  # RuntimeError "release unlocked lock") is still the user's Ctrl-C
            self._stop.set()
            raise error.__context__ from None
        finally:
            self._settle(runner)

    def _wants_more(self, reason: str, deadline: float | None) -> bool:
        """Whether ``add_trials`` raised the target while a complete run settled (the runner's
        shutdown takes a while with processes or Dask): then the run goes on."""
        with self._lock:
            return reason == "complete" and self._end_reason(deadline) is None

    def _loop(self, call: _execute.BoundObjective, runner: Runner, deadline: float | None) -> str:
        while not isinstance(step := self._next_step(runner, deadline), str):
            number, params, slot = step
            runner.submit(lambda device, n=number, p=params: self._run_trial(call, n, p, device), slot)
        return step

    def _settle(self, runner: Runner) -> None:
        """Wait for the trials to return, booking those no trial thread will. A second Ctrl-C cuts
        the waiting short: the trials still on a thread then book themselves when they return."""
        try:
            runner.shutdown()
            while self._book_abandoned():  # a Ctrl-C while a thread started hides it from the runner
                with self._lock:
                    _locks.wait(self._cond, 0.1)
        finally:
            self._book_abandoned()

    def _book_abandoned(self) -> bool:
        """Book the registered trials that no trial job is running for (never started, or cut off
        in this thread): their outcome if known, else FAIL "interrupted". True while others run."""
        me, abandoned = threading.current_thread(), {}
        with self._lock:
            for number, params in self._running.items():
                if self._claimed.setdefault(number, me) is me:  # a job that starts late finds it taken
                    abandoned[number] = params
            others = len(self._running) > len(abandoned)
        for number, params in abandoned.items():
            self._record_finished(self._outcomes.get(number) or FrozenTrial(
                number=number, state=TrialState.FAIL, params=params, error=INTERRUPTED))
        return others

    def _next_step(self, runner: Runner, deadline: float | None) -> tuple[int, dict[str, Any], Slot] | str:
        """The next trial (number, params, the slot reserved for it), or why the loop ends."""
        slot: Slot | None = None
        try:
            while True:
                with self._lock:
                    reason = self._end_reason(deadline)
                    if reason is not None:
                        return reason
                    if not self._may_start(runner):
                        if slot is not None:  # paused, or the study is full: hold no slot meanwhile
                            runner.pool.release(slot)
                            slot = None
                        _locks.wait(self._cond, 0.1 if deadline is not None else 0.5)
                        continue
                    if slot is not None and (step := self._start_trial()) is not None:
                        taken, slot = slot, None  # the job releases it when it returns
                        return (*step, taken)
                    # else: other processes filled the study, or the store failed: checked above
                if slot is None:  # outside the lock: a finishing trial needs it to book its outcome
                    slot = _reserve(runner, 0.1)
        finally:
            if slot is not None:
                runner.pool.release(slot)

    def _end_reason(self, deadline: float | None) -> str | None:
        """Why the loop ends now, or None. Lock held."""
        if self._storage_error is not None:
            return "storage error"
        if self._stop.is_set():
            return "stopped"
        if deadline is not None and time.monotonic() >= deadline:
            return "timeout"
        if self.max_failures is not None and self._run_failures >= self.max_failures:
            return "max_failures"
        started = len(self._finished) + len(self._running)
        if (started >= self.n_target or self._total_reached) and not self._running and not self._publishing:
            return "complete"
        return None

    def _may_start(self, runner: Runner) -> bool:
        started = len(self._finished) + len(self._running)
        return (not self._paused and not self._total_reached and started < self.n_target
                and len(self._running) < runner.capacity)

    def _start_trial(self) -> tuple[int, dict[str, Any]] | None:
        """Ask, register the trial (store row first); None when the store refuses. Lock held."""
        params = self.space.with_budget_at_max({k: _plain(v) for k, v in self.algorithm.ask().items()})
        self.space.validate_params(params)
        if self.store is not None:
            try:  # `trials` counts every row of the study, whichever process wrote it
                number = self.store.start_trial(self._record.id, params, "cpu", limit=self.n_target)
            except Exception as error:  # disk full, file gone: stop with every finished trial saved
                number, self._storage_error = None, error
            except BaseException as interrupt:  # a Ctrl-C once the row was written: _settle books it
                if (written := getattr(interrupt, "trial_number", None)) is not None:
                    self._running[written] = params
                else:
                    self.algorithm.withdraw(params)  # no row: this ask will never run
                raise
            if number is None:  # no row, so the ask never runs: the study is full, or the store failed
                self.algorithm.withdraw(params)
                self._total_reached = self._storage_error is None
                return None
        else:
            number = max([*self._finished, *self._running], default=-1) + 1
        self._running[number] = params
        return number, params

    def _run_trial(self, call: _execute.BoundObjective, number: int, params: dict[str, Any], device: str) -> None:
        """The job a runner runs: the trial is claimed while this runs, so the driver's clean-up leaves
        it to this thread (not Thread.is_alive(): a Ctrl-C in Thread.join() falsifies it, gh-90882)."""
        with self._lock:
            if number not in self._running or number in self._claimed:
                return  # booked "interrupted" by the driver while this job waited for its thread
            self._claimed[number] = threading.current_thread()
        try:
            frozen = self._run_claimed(call, number, params, device)
        finally:
            self._claimed.pop(number, None)  # booked, or the driver books it from what is known
        if (frozen.error or "").startswith("interrupted: KeyboardInterrupt"):
            self._stop.set()
            raise KeyboardInterrupt

    def _run_claimed(self, call: _execute.BoundObjective, number: int, params: dict[str, Any],
                     device: str) -> FrozenTrial:
        frozen: FrozenTrial | None = None
        try:
            self._bus.publish(TrialStarted(self.name, number, params, device))
            try:
                frozen = self._runner.execute(call, number, params, device, target=self.target,
                                              on_report=self._on_report, stopping=self._stop.is_set)
            except Exception as error:  # a runner failure costs this trial, never a hung search
                frozen = FrozenTrial(number=number, state=TrialState.FAIL, params=params, device=device,
                                     error=f"runner failed: {_execute.describe(error)}")
        finally:  # a Ctrl-C in a subscriber or in the runner's own code still books the trial
            booked = frozen or FrozenTrial(number=number, state=TrialState.FAIL, params=params, device=device,
                                           error=INTERRUPTED)
            self._record_finished(booked)
        return booked

    def _on_report(self, trial: Any, step: int, metrics: Mapping[str, float]) -> bool:
        self._bus.publish(TrialReported(self.name, trial.number, step, metrics))
        value = target_value(metrics, self.target)
        if value is None:
            return False
        loss = -value if self.maximize else value
        with self._lock:  # the pruner first: it records every report, even one the algorithm stops
            by_pruner = self.pruner is not None and self.pruner.should_prune(trial.number, step, loss)
            stop = self.algorithm.should_prune(trial.number, step, loss) or by_pruner
            params = self._running.get(trial.number)
            if self.pruner is not None and not stop and params is not None:  # a survivor so far
                self.algorithm.observe(FrozenTrial(number=trial.number, state=TrialState.RUNNING, params=params,
                                                   reports=(Report(step, metrics),)))
            return stop

    def _tell(self, frozen: FrozenTrial) -> None:
        self.algorithm.tell(frozen)
        if self.pruner is not None:
            self.pruner.tell(frozen)

    def _record_finished(self, frozen: FrozenTrial) -> None:
        """Store, book and tell (one lock: the next ask knows it), then publish TrialFinished."""
        number = frozen.number
        self._outcomes[number] = frozen  # should a Ctrl-C cut the store write short, the driver books it again
        frozen, stored = self._store_finished(frozen)
        with self._lock:
            self._publishing.add(number)  # before the pop: the run is not complete until subscribers return
        try:
            with self._lock:
                self._finished[number] = frozen  # before the pop, so a trial is always in one of the two
                self._running.pop(number, None)
                self._outcomes.pop(number, None)
                self._claimed.pop(number, None)
                if frozen.state is TrialState.FAIL:
                    self._run_failures += 1
                if not stored:
                    self._stop.set()
                self._cond.notify_all()
                self._tell(frozen)
            self._bus.publish(TrialFinished(self.name, frozen))
        finally:
            with self._lock:
                self._publishing.discard(number)
                self._cond.notify_all()

    def _store_finished(self, frozen: FrozenTrial) -> tuple[FrozenTrial, bool]:
        """(the trial as booked, whether it is on disk); a failed write stops the study."""
        if self.store is None:
            return frozen, True
        try:
            self.store.finish_trial(self._record.id, frozen)
        except Exception as error:
            self._storage_error = error
            return frozen.evolve(error=(frozen.error or "") + f"\nnot saved: {error}"), False
        return frozen, True


def _reserve(runner: Runner, timeout: float) -> Slot | None:
    """A free slot of ``runner``, or None when none frees within ``timeout`` seconds. Taken before
    the ask, so that a trial never waits for a slot, during which a stop() could come."""
    try:
        return runner.pool.acquire(timeout)
    except TimeoutError:
        return None
