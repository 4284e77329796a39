"""Runners execute trials: inline, on threads, in worker processes, or on a Dask cluster.

A runner owns *slots* (``devices.SlotPool``): each slot is a place on a device ("cpu",
"cuda:0", ...). A job is given the device of the slot it runs on and the slot is free again
when the job returns, so no two running trials ever share a slot. ``execute`` runs one trial
for the study and feeds back what it learns: a CUDA out-of-memory drops that device's
concurrency by one, and ``per_gpu="auto"`` sizes a GPU from its first trial's peak memory.

Remote runners (processes, Dask) keep one local thread per slot that waits for the remote
result, so slots, back-pressure and the study's bookkeeping are the same as for threads; only
the study writes the store. A remote trial's reports reach the study as they are made, and a
prune or Stop goes back to it at its next report, through a queue and an event (a
multiprocessing manager's for processes, the scheduler's for Dask).
"""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from . import workers
from ._checks import count
from ._execute import may_report
from ._payload import PayloadFile, write_payload
from ._process_pool import (
    EXIT_WAIT_S,
    WorkerPool,
    check_main_reimportable,
    drain_queue,
    start_manager,
    wait_for_reports,
)
from ._study_loop import INTERRUPTED
from .devices import (
    AUTO_MAX_PER_GPU,
    GpuInfo,
    GpuSpec,
    PerGpu,
    Slot,
    SlotPool,
    auto_per_gpu,
    cpu_threads_per_trial,
    plan_slots,
)
from .trial import FrozenTrial, PruneHook, Trial, TrialState

Job = Callable[[str], None]
RELAY_INTERVAL_S = 0.05  # how often a remote trial's new reports are fetched (and Stop passed on)
log = logging.getLogger(__name__)
Executor = str | Any | None  # None | "threads" | "processes" | "dask://host:port" | distributed.Client


class Runner:
    """Runs jobs on device slots; ``submit`` blocks while every slot is busy."""

    def __init__(self, slots: Sequence[str] | Mapping[str, int] | SlotPool, *, autosize: bool = False,
                 threads: int | None = None) -> None:
        if isinstance(slots, SlotPool):
            self.pool = slots
        elif isinstance(slots, Mapping):
            self.pool = SlotPool(slots)
        elif not slots:
            raise ValueError("a runner needs at least one slot, but got none")
        else:
            self.pool = SlotPool.from_slots(slots)
        self.threads = threads  # torch threads per CPU trial (None: leave torch's default)
        self._to_measure = {d for d in self.pool.devices if d != "cpu"} if autosize else set()

    @property
    def slots(self) -> list[str]:
        """One device string per slot, as the capacity stands now."""
        return [d for d in self.pool.devices for _ in range(self.pool.capacity_of(d))]

    @property
    def capacity(self) -> int:
        return self.pool.capacity

    def submit(self, job: Job, slot: Slot | None = None) -> None:
        """Run ``job`` on ``slot`` (taken from ``pool`` by the caller), else on the next free slot (blocks)."""
        raise NotImplementedError

    def shutdown(self) -> None:
        """Wait for every submitted job to return (safe to call twice; the runner can be used again)."""

    def execute(self, call: Any, number: int, params: Mapping[str, Any], device: str, *, target: str | None,
                on_report: PruneHook | None = None, stopping: Callable[[], bool] | None = None) -> FrozenTrial:
        """Run one trial on ``device`` and adapt the slots to what happened."""
        measure = device in self._to_measure
        outcome = self._run(call, number, params, device, target=target, on_report=on_report,
                            stopping=stopping, measure=measure)
        self._learn(device, outcome)
        return outcome.trial

    def _run(self, call: Any, number: int, params: Mapping[str, Any], device: str, *, target: str | None,
             on_report: PruneHook | None, stopping: Callable[[], bool] | None, measure: bool) -> workers.Outcome:
        return workers.run_trial(call, number, params, device, target=target, on_report=on_report,
                                 stopping=stopping, measure=measure, threads=self.threads)

    def _learn(self, device: str, outcome: workers.Outcome) -> None:
        if device not in self.pool.devices:
            return
        if outcome.out_of_memory:
            self.pool.shrink(device)
            self._to_measure.discard(device)  # an OOM says enough about what fits
        elif (outcome.peak_bytes is not None and outcome.free_bytes is not None
              and outcome.trial.state is not TrialState.FAIL):  # it may have failed before allocating:
            # its peak would open the GPU to the most trials; the next trial is measured instead.
            self.pool.resize(device, auto_per_gpu(outcome.free_bytes, outcome.peak_bytes))
            self._to_measure.discard(device)


class InlineRunner(Runner):
    """One trial at a time in the calling thread, so Ctrl-C reaches the objective itself."""

    def __init__(self, device: str = "cpu") -> None:
        super().__init__([device])

    def submit(self, job: Job, slot: Slot | None = None) -> None:
        taken = slot if slot is not None else self.pool.acquire()
        try:
            job(taken.device)
        finally:
            self.pool.release(taken)


class ThreadRunner(Runner):
    """Parallel trials on threads: the default for notebook cells and unpicklable objectives."""

    def __init__(self, slots: Sequence[str] | Mapping[str, int] | SlotPool, *, autosize: bool = False,
                 threads: int | None = None) -> None:
        super().__init__(slots, autosize=autosize, threads=threads)
        # Threads start lazily, so room for every slot "auto" may open costs nothing up front.
        self._most = len(self.pool.devices) * AUTO_MAX_PER_GPU if autosize else self.pool.capacity
        self._threads: ThreadPoolExecutor | None = None  # made on first submit, again after a shutdown
        self._jobs: set[Future[None]] = set()  # submitted and not yet returned

    def submit(self, job: Job, slot: Slot | None = None) -> None:
        taken = slot if slot is not None else self.pool.acquire()  # blocks while every slot is busy
        if self._threads is None:
            self._threads = ThreadPoolExecutor(max_workers=max(self._most, self.pool.capacity),
                                               thread_name_prefix="hpwidgets-trial")

        def run() -> None:
            try:
                job(taken.device)
            finally:
                self.pool.release(taken)

        submitted = self._threads.submit(run)
        self._jobs.add(submitted)
        submitted.add_done_callback(self._jobs.discard)

    def shutdown(self) -> None:
        threads, self._threads = self._threads, None  # a later run (a reused runner) gets new threads
        if threads is not None:
            threads.shutdown(wait=True)


class Shown:
    """How many of one trial's reports the study has been given, across its attempts.

    A retried attempt (its worker died) runs the objective again and repeats the reports the
    dead one already sent; only the reports past those go out, so the study (charts, pruning)
    sees each position once, not twice.
    """

    def __init__(self) -> None:
        self.count = 0
        self._sent: dict[str, int] = {}  # attempt -> reports it has sent so far

    def is_new(self, attempt: str) -> bool:
        index = self._sent.get(attempt, 0)
        self._sent[attempt] = index + 1
        if index < self.count:
            return False
        self.count = index + 1
        return True


def relay_reports(future: Future[Any], drain: Callable[[], list[Any]], halt: Callable[[], None], proxy: Trial,
                  on_report: PruneHook | None, stopping: Callable[[], bool] | None, shown: Shown, *,
                  waits: bool = False) -> None:
    """While a remote trial runs, give the study each new report (``drain`` returns the (attempt,
    step, metrics) waiting: at once, or with ``waits`` as soon as one comes, within RELAY_INTERVAL_S,
    so each is judged as it arrives) and call ``halt`` once the study prunes the trial or stops.
    The attempt's end mark (step None, ``workers.remote_trial``) or the future's end ends the
    relaying; a broken channel ends it early."""
    halted = False
    # Waiting on an event, not on ``future.exception(timeout)``: each timeout raised there leaves a
    # traceback cycle holding a Dask future, whose task the cluster then keeps, and recomputes when
    # the worker holding it dies. The event also picks a short trial up at once, not at the next poll.
    ended = threading.Event()
    future.add_done_callback(lambda _future: ended.set())
    try:
        while True:
            done = future.done()  # read first: every report put before the end is drained below
            for attempt, step, metrics in drain():
                if step is None:  # the attempt has made its last report; its result is on its way
                    done = True
                elif (shown.is_new(attempt) and on_report is not None and on_report(proxy, step, metrics)
                      and not halted):
                    halt()
                    halted = True
            if done:
                return
            if stopping is not None and not halted and stopping():
                halt()
                halted = True
            if not waits:
                ended.wait(RELAY_INTERVAL_S)
    except (OSError, EOFError, RuntimeError) as error:  # the manager or scheduler went away
        log.warning("live reports of trial %s stopped (%s); the rest arrive when it ends", proxy.number, error)


def replay_reports(outcome: workers.Outcome, params: Mapping[str, Any], on_report: PruneHook | None,
                   skip: int = 0) -> None:
    """Give a remote trial's reports (past the first ``skip``, already relayed live) to the
    study (events, Hyperband's rungs) once it is back."""
    if on_report is None:
        return
    proxy = Trial(outcome.trial.number, params, device=outcome.trial.device)
    for report in outcome.trial.reports[skip:]:
        on_report(proxy, report.step, report.metrics)  # too late to prune: the answer is ignored


def lost_trial(number: int, params: Mapping[str, Any], device: str, reason: str) -> workers.Outcome:
    """A FAIL for a trial whose worker died, so it is recorded once rather than lost."""
    return workers.Outcome(FrozenTrial(number=number, state=TrialState.FAIL, params=params, error=reason,
                                       device=device))


class ProcessRunner(ThreadRunner):
    """Trials in worker processes (spawned: safe with CUDA); objectives are pickled by value.

    A worker process that dies breaks the whole pool (``_process_pool.py``): the pool is rebuilt,
    the trial whose process died is retried once (a second death marks it FAIL), and the trials
    that were running beside it are sent again without that counting against them; once the
    study stops, a lost trial is FAIL "interrupted" instead. Workers ignore SIGINT: a Ctrl-C
    stops their trials through the study, and a second one terminates them (``shutdown``).
    """

    def __init__(self, slots: Sequence[str] | Mapping[str, int] | SlotPool, *, autosize: bool = False,
                 threads: int | None = None) -> None:
        super().__init__(slots, autosize=autosize, threads=threads)
        size = len(self.pool.devices) * AUTO_MAX_PER_GPU if autosize else self.pool.capacity
        self._processes = WorkerPool(size, self.threads)
        self._lock = threading.Lock()
        self._payloads: dict[int, tuple[Any, PayloadFile]] = {}
        self._folder: str | None = None  # holds the pickled objectives while the runner lives
        self._manager: Any = None  # serves each trial's report queue and halt event
        self._idle_channels: list[tuple[Any, Any]] = []

    def _channel(self) -> tuple[Any, Any]:
        """An idle (report queue, halt event) pair that a worker process can reach: reused, since
        making one costs a few ms of round trips to the manager, as much as a tiny trial."""
        with self._lock:
            if self._idle_channels:
                return self._idle_channels.pop()
            if self._manager is None:
                self._manager = start_manager()
            return self._manager.Queue(), self._manager.Event()

    def _give_back(self, channel: tuple[Any, Any]) -> None:
        reports, halt = channel
        halt.clear()
        drain_queue(reports)  # empty already unless a dead attempt left reports behind
        with self._lock:
            self._idle_channels.append(channel)

    def _payload(self, call: Any) -> PayloadFile:
        """The objective pickled into a file once (``_payload.py``); trials send its name."""
        with self._lock:
            if id(call) not in self._payloads:
                if self._folder is None:
                    self._folder = tempfile.mkdtemp(prefix="hpwidgets-objective-")
                payload = write_payload(workers.dumps(call), self._folder)
                self._payloads[id(call)] = (call, payload)  # keep `call` alive: ids are reused
            return self._payloads[id(call)][1]

    def _run(self, call: Any, number: int, params: Mapping[str, Any], device: str, *, target: str | None,
             on_report: PruneHook | None, stopping: Callable[[], bool] | None, measure: bool) -> workers.Outcome:
        payload = self._payload(call)
        live = may_report(call)  # an objective(params) never reports: no channel to set up
        shown = Shown()
        deaths = 0
        while deaths < 2:  # ends: each free resend follows a death charged to another trial (twice at most)
            channel = self._channel() if live else None
            run = None
            try:
                future, run = self._processes.submit(workers.remote_trial, payload, number, dict(params), device,
                                                     target, measure, self.threads, channel)
                if channel is not None:
                    relay_reports(future, functools.partial(wait_for_reports, channel[0], RELAY_INTERVAL_S),
                                  channel[1].set, Trial(number, params, device=device), on_report, stopping, shown,
                                  waits=True)
                outcome = workers.decode(future.result())
            except BrokenProcessPool:
                deaths += self._processes.broke(run)  # 0 when another trial's process died
                if self._processes.terminated(run) or (stopping is not None and stopping()):
                    return lost_trial(number, params, device, INTERRUPTED)  # the study is ending: no resend
                continue
            finally:
                self._processes.done(run)
                if channel is not None:
                    self._give_back(channel)
            replay_reports(outcome, params, on_report, skip=shown.count)
            return outcome
        return lost_trial(number, params, device, "worker died: the worker process running this trial ended "
                                                  "twice (killed, or crashed in native code)")

    def shutdown(self) -> None:
        try:
            super().shutdown()
        except KeyboardInterrupt:  # a second Ctrl-C: the workers ignore SIGINT, so end them now, lest the
            self._processes.terminate()  # user wait for trials that never report (each comes back "interrupted")
            if not wait(list(self._jobs), timeout=2 * EXIT_WAIT_S).not_done:  # booked before the Ctrl-C goes on
                self._close()
            raise
        self._close()

    def _close(self) -> None:
        """Stop the worker processes and the manager, and delete the pickled objectives."""
        self._processes.shutdown()
        with self._lock:
            if self._manager is not None:
                self._idle_channels.clear()
                self._manager.shutdown()
                self._manager = None
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None
                self._payloads.clear()


def _is_dask(executor: Executor) -> bool:
    if isinstance(executor, str):
        return executor.startswith(("dask://", "tcp://", "tls://", "inproc://"))
    return hasattr(executor, "submit") and hasattr(executor, "scheduler_info")


def make_runner(parallel: int = 1, devices: Sequence[str] | None = None, *, gpus: GpuSpec = None,
                per_gpu: PerGpu = 1, executor: Executor = None,
                available: Sequence[GpuInfo] | None = None) -> Runner:
    """A runner for ``parallel`` CPU trials, or ``per_gpu`` trials on each of ``gpus``.

    ``gpus``: None (CPU), "auto" (every visible GPU; the CPU when there is none), an index or a
    list of indices. ``per_gpu``: an int, or "auto" (from free memory and the first trial's peak).
    ``executor``: None or "threads", "processes" (picklable objectives), or a Dask cluster as
    "dask://host:port" or a ``distributed.Client``. ``available`` replaces GPU discovery (tests).
    """
    parallel = count("parallel", parallel, 1)
    if _is_dask(executor):
        from .dask_runner import DaskRunner
        return DaskRunner(executor, parallel=parallel, gpus=gpus, per_gpu=per_gpu)
    if executor not in (None, "threads", "processes", "thread", "process"):  # the cell's and CLI's words too
        raise ValueError(f"`executor` must be None, 'threads', 'processes', 'dask://host:port' or a "
                         f"distributed.Client, but got executor={executor!r}")
    if devices:
        capacity: dict[str, int] = {}
        for i in range(parallel):
            capacity[devices[i % len(devices)]] = capacity.get(devices[i % len(devices)], 0) + 1
        autosize = False
    else:
        capacity, autosize = plan_slots(parallel, gpus, per_gpu, available)
    threads = cpu_threads_per_trial(capacity["cpu"]) if capacity.get("cpu", 1) > 1 else None
    if executor in ("processes", "process"):
        check_main_reimportable()
        return ProcessRunner(capacity, autosize=autosize, threads=threads)
    if sum(capacity.values()) == 1 and not autosize:
        return InlineRunner(next(iter(capacity)))
    return ThreadRunner(capacity, autosize=autosize, threads=threads)
