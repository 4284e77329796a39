"""Runners execute trials: inline (one at a time, in the driving thread) or on a thread pool.

A runner owns *slots*: each slot is a device string ("cpu", "cuda:0", ...). A job is given
the device of the slot it runs on, and the slot is free again when the job returns, so no
two running trials ever share a slot.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

Job = Callable[[str], None]


class Runner:
    """Runs jobs on a fixed list of device slots; ``submit`` blocks while every slot is busy."""

    def __init__(self, slots: Sequence[str]) -> None:
        if not slots:
            raise ValueError("a runner needs at least one slot, but got none")
        self.slots = list(slots)
        self._free: queue.SimpleQueue[str] = queue.SimpleQueue()
        for slot in self.slots:
            self._free.put(slot)

    @property
    def capacity(self) -> int:
        return len(self.slots)

    def submit(self, job: Job) -> None:
        raise NotImplementedError

    def shutdown(self) -> None:
        """Wait for every submitted job to return."""

    def _take_slot(self) -> str:
        return self._free.get()

    def _give_back(self, slot: str) -> None:
        self._free.put(slot)


class InlineRunner(Runner):
    """One trial at a time in the calling thread, so Ctrl-C reaches the objective itself."""

    def __init__(self, device: str = "cpu") -> None:
        super().__init__([device])

    def submit(self, job: Job) -> None:
        slot = self._take_slot()
        try:
            job(slot)
        finally:
            self._give_back(slot)


class ThreadRunner(Runner):
    """Parallel trials on threads: the default for notebook cells and unpicklable objectives."""

    def __init__(self, slots: Sequence[str]) -> None:
        super().__init__(slots)
        self._pool = ThreadPoolExecutor(max_workers=len(self.slots), thread_name_prefix="hpwidgets-trial")
        self._pending = threading.Semaphore(len(self.slots))

    def submit(self, job: Job) -> None:
        self._pending.acquire()  # back-pressure: never queue more jobs than slots
        slot = self._take_slot()

        def run() -> None:
            try:
                job(slot)
            finally:
                self._give_back(slot)
                self._pending.release()

        self._pool.submit(run)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


def make_runner(parallel: int, devices: Sequence[str] | None = None) -> Runner:
    """``parallel`` slots spread over ``devices`` (default: the CPU)."""
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise ValueError(f"`parallel >= 1` must hold, but got parallel={parallel!r}")
    devices = list(devices) if devices else ["cpu"]
    slots = [devices[i % len(devices)] for i in range(parallel)]
    return InlineRunner(slots[0]) if parallel == 1 else ThreadRunner(slots)
