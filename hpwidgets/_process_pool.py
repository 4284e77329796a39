"""The worker processes of ``executor="processes"``, and which trial a dead one was running.

One process that dies (killed, or crashed in native code) breaks a ``ProcessPoolExecutor`` as a
whole: every run in flight gets ``BrokenProcessPool`` and the pool terminates its other
processes. So each run says which process took it, as it starts, through a pipe per pool: the
runner charges a death only to the run whose own process died, and sends the others again
without counting it against them.

The workers, and the manager process that serves the report queues and halt events, ignore
SIGINT from birth (it stays blocked while they are spawned): a terminal's Ctrl-C or Jupyter's
interrupt goes to the whole process group, and the study, not the signal, stops their trials
(through the halt event); a second Ctrl-C has the runner ``terminate`` them.
"""

from __future__ import annotations

import itertools
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from . import workers

EXIT_WAIT_S = 2.0  # how long a broken pool's processes get to end (it terminates them) before they are judged
_announcements: Any = None  # in a worker process: the write end of its pool's pipe


@contextmanager
def sigint_blocked() -> Iterator[None]:
    """Processes spawned meanwhile start with SIGINT blocked, so that a Ctrl-C while they start
    up (re-running the main script may import torch for seconds) waits for ``ignore_sigint``."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks; the initializer's SIG_IGN alone
        yield
        return
    from multiprocessing import resource_tracker
    resource_tracker.ensure_running()  # started inside, it would unblock SIGINT once it is up
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def ignore_sigint() -> None:
    """In a worker or manager process: ignore SIGINT, dropping one that came while it started."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def spawn_context() -> Any:
    """multiprocessing's "spawn" context (safe with CUDA), for the pool and the manager alike."""
    import multiprocessing
    main = sys.modules.get("__main__")
    if main is not None and not hasattr(main, "__spec__"):
        # IPython's user module stands in for __main__ without a __spec__, and spawn reads it.
        main.__spec__ = None
    return multiprocessing.get_context("spawn")


def start_manager() -> Any:
    """A started multiprocessing manager (in a spawned process) that ignores SIGINT."""
    from multiprocessing.managers import SyncManager
    manager = SyncManager(ctx=spawn_context())
    with sigint_blocked():
        manager.start(ignore_sigint)
    return manager


def drain_queue(reports: Any) -> list[Any]:
    """Everything waiting in a ``queue.Queue``-like queue (a manager's proxy), without blocking."""
    items = []
    while True:
        try:
            items.append(reports.get_nowait())
        except queue.Empty:
            return items


def wait_for_reports(reports: Any, timeout: float) -> list[Any]:
    """What waits in a manager's report queue, once something does or ``timeout`` seconds pass."""
    try:
        first = reports.get(timeout=timeout)
    except queue.Empty:
        return []
    return [first, *drain_queue(reports)]


def check_main_reimportable() -> None:
    """Spawned worker processes first run the main script again (CPython's spawn start method);
    a script read from stdin has no file to run, and every trial would fail in its worker."""
    from multiprocessing import process

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if getattr(main, "__spec__", None) is not None or path is None:
        return  # run as a module (-m), or no main file at all (Jupyter, -c): nothing to re-run
    full = path if os.path.isabs(path) or process.ORIGINAL_DIR is None else os.path.join(process.ORIGINAL_DIR, path)
    if not os.path.isfile(full):
        raise ValueError(f"executor='processes' starts worker processes that run the main script again, but it "
                         f"was not read from a file (__main__.__file__={path!r}); save it to a .py file and run "
                         f"that, or use executor='threads'")


def init_worker(threads: int | None, announcements: Any) -> None:
    """Process-pool initializer: ignore SIGINT, and keep the pipe each run announces itself on."""
    global _announcements
    ignore_sigint()
    _announcements = announcements
    workers.init_process(threads)


def announced(run: int, call: Callable[..., Any], *args: Any) -> Any:
    """In a worker process: say which process has ``run`` (one small pipe write, so atomic: no lock
    that a process killed mid-write could leave held), then do it."""
    _announcements.send((run, os.getpid()))
    return call(*args)


def _watch_every_process(executor: Any) -> None:
    """CPython (3.11 to 3.13) wakes a pool's manager thread *before* a submit spawns the process it
    adds, so the manager may wait without watching that process, and not see it die until some
    other run ends: meanwhile the runs beside it go on, to be broken later. One more wake-up, now
    that the process is in the pool, has it watch them all."""
    lock = getattr(executor, "_shutdown_lock", None)
    wakeup = getattr(executor, "_executor_manager_thread_wakeup", None)
    if lock is not None and wakeup is not None:
        with lock:  # as ``submit`` does: the manager closes the wake-up pipe under it
            wakeup.wakeup()


class WorkerPool:
    """A spawned ``ProcessPoolExecutor``, replaced once per break, that knows whom a break is due to."""

    def __init__(self, size: int, threads: int | None) -> None:
        self._size, self._threads = size, threads
        self._lock = threading.Lock()
        self._executor: Any = None
        self._pipe: tuple[Any, Any] | None = None  # (read end, write end) of the current pool's announcements
        self._generation = 0
        self._ids = itertools.count()
        self._runs: dict[int, tuple[int, int | None]] = {}  # run in flight -> (generation, pid once it started)
        self._blamed: dict[int, set[int] | None] = {}  # broken generation -> pids that died (None: any run's)
        self._terminated: set[int] = set()  # generations ended by ``terminate``
        self._ending = False  # ``terminate`` was called: no process starts until ``shutdown``

    def submit(self, call: Callable[..., Any], *args: Any) -> tuple[Future[Any], int]:
        """``call(*args)`` in a worker process, and the run's id for ``broke`` and ``done``."""
        with self._lock:
            run = next(self._ids)
            self._runs[run] = (self._generation, None)
            if self._ending:  # a trial thread still starting (spawn re-runs the main script) when it came
                self._terminated.add(self._generation)
                return _broken(f"run {run} refused: the worker processes are being terminated"), run
            executor = self._executor_now()
            self._read_announcements()  # keeps the pipe from filling up
        try:
            with sigint_blocked():  # the submit may spawn a worker process
                future = executor.submit(announced, run, call, *args)
        except BrokenProcessPool as error:  # it broke since: the caller handles it like a run's own break
            return _broken(str(error)), run
        _watch_every_process(executor)
        return future, run

    def broke(self, run: int) -> bool:
        """After ``run`` got ``BrokenProcessPool``: replace the pool (once per break) and tell whether
        the death is the run's own, or cannot be pinned on another run, so it counts against it."""
        with self._lock:
            generation = self._runs[run][0]
            if generation == self._generation and self._executor is not None:
                self._blamed[generation] = self._dead_pids()
                self._close(wait=False)
            blamed = self._blamed.get(generation)
            pid = self._runs[run][1]
        return blamed is None or pid in blamed

    def terminated(self, run: int) -> bool:
        """Whether ``run``'s pool was ended by ``terminate`` (asked after ``broke``, before ``done``)."""
        with self._lock:
            return self._runs[run][0] in self._terminated

    def terminate(self) -> None:
        """End the worker processes now (they ignore SIGINT); their runs get ``BrokenProcessPool``."""
        with self._lock:
            self._ending = True
            if self._executor is None:
                return
            self._terminated.add(self._generation)
            processes = list((getattr(self._executor, "_processes", None) or {}).values())
        for process in processes:
            process.terminate()

    def done(self, run: int | None) -> None:
        """``run`` is over (None: it was never submitted)."""
        with self._lock:
            self._runs.pop(run, None)

    def shutdown(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._close(wait=True)
            self._ending = False  # a runner used again starts processes again

    def _executor_now(self) -> Any:
        if self._executor is None:
            from concurrent.futures import ProcessPoolExecutor
            context = spawn_context()
            self._pipe = context.Pipe(duplex=False)
            self._executor = ProcessPoolExecutor(self._size, mp_context=context, initializer=init_worker,
                                                 initargs=(self._threads, self._pipe[1]))
        return self._executor

    def _read_announcements(self) -> None:
        reader = self._pipe[0] if self._pipe is not None else None
        while reader is not None and reader.poll():
            run, pid = reader.recv()
            if run in self._runs:  # a run already done may still be announced: nothing to keep
                self._runs[run] = (self._runs[run][0], pid)

    def _dead_pids(self) -> set[int] | None:
        """The broken pool's processes that died on their own rather than by the pool's SIGTERM,
        when each was running a run that announced itself; else None: every run is a suspect."""
        self._read_announcements()
        processes = dict(getattr(self._executor, "_processes", None) or {})  # pid -> Process
        deadline = time.monotonic() + EXIT_WAIT_S
        for process in processes.values():
            process.join(max(0.0, deadline - time.monotonic()))
        dead = {pid for pid, process in processes.items() if process.exitcode not in (None, -signal.SIGTERM)}
        running = {pid for generation, pid in self._runs.values() if generation == self._generation}
        return dead if dead and dead <= running else None

    def _close(self, *, wait: bool) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=not wait)
        for end in self._pipe or ():
            end.close()
        self._executor, self._pipe = None, None
        self._generation += 1


def _broken(why: str) -> Future[Any]:
    """A future that failed as a run in a broken pool fails."""
    future: Future[Any] = Future()
    future.set_exception(BrokenProcessPool(why))
    return future
