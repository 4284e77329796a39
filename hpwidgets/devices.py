"""GPU discovery and device slots; torch is imported only when GPUs are asked for.

The slot logic is pure: ``SlotPool`` works on a list of device strings and never touches CUDA,
so it is tested with fake device lists. The few CUDA calls (discovery, peak memory, emptying
the cache) sit behind ``discover_gpus`` and ``GpuMemory``, which tests replace.

>>> pool = SlotPool({"cuda:0": 2, "cuda:1": 2})
>>> first, second = pool.acquire(), pool.acquire()
>>> sorted([first.device, second.device])   # spread over the GPUs before packing one
['cuda:0', 'cuda:1']
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import _locks
from ._warn import warn_at_user

GpuSpec = str | int | Sequence[int] | None
PerGpu = int | str
AUTO_MAX_PER_GPU = 8  # more concurrent trials than this rarely helps and multiplies CUDA contexts
AUTO_HEADROOM = 0.8   # leave a fifth of the free memory for fragmentation and the allocator's cache


@dataclass(frozen=True)
class GpuInfo:
    """One visible GPU: its torch index, name and memory in bytes."""

    index: int
    name: str = "GPU"
    total_memory: int = 0
    free_memory: int = 0

    @property
    def device(self) -> str:
        return f"cuda:{self.index}"


@dataclass(frozen=True)
class Slot:
    """A place for one running trial: slot ``index`` on ``device`` (never given to two trials)."""

    device: str
    index: int


def discover_gpus() -> list[GpuInfo]:
    """The CUDA GPUs torch sees; empty when torch is missing or has no CUDA."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    found = []
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        found.append(GpuInfo(index, torch.cuda.get_device_name(index), int(total), int(free)))
    return found


def select_gpus(gpus: GpuSpec, available: Sequence[GpuInfo]) -> list[GpuInfo]:
    """The GPUs ``gpus`` asks for among ``available``; [] means "run on the CPU".

    ``"auto"`` takes every visible GPU (none: the CPU). Explicit indices on a machine with no GPU
    fall back to the CPU with a warning, so one notebook runs anywhere; an index that does not
    exist on a machine that has GPUs is a mistake and raises.
    """
    if gpus is None or gpus == []:
        return []
    if gpus == "auto":
        return list(available)
    if isinstance(gpus, str) or isinstance(gpus, bool):
        raise ValueError(f"`gpus` must be 'auto', an index or a list of indices, but got gpus={gpus!r}")
    wanted = [gpus] if isinstance(gpus, int) else list(gpus)
    if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in wanted) or len(set(wanted)) < len(wanted):
        raise ValueError(f"`gpus` must hold distinct indices >= 0, but got gpus={gpus!r}")
    if not available:
        warn_at_user(f"gpus={gpus!r} was asked for but no CUDA GPU is visible; running on the CPU", RuntimeWarning)
        return []
    by_index = {g.index: g for g in available}
    missing = [i for i in wanted if i not in by_index]
    if missing:
        raise ValueError(f"gpus={gpus!r} asks for {[f'cuda:{i}' for i in missing]!r}, but only "
                         f"{[g.device for g in available]!r} are visible")
    return [by_index[i] for i in wanted]


def check_per_gpu(per_gpu: PerGpu) -> None:
    if per_gpu == "auto":
        return
    if isinstance(per_gpu, bool) or not isinstance(per_gpu, int) or per_gpu < 1:
        raise ValueError(f"`per_gpu` must be 'auto' or an int >= 1, but got per_gpu={per_gpu!r}")


def auto_per_gpu(free_bytes: int, peak_bytes: int, *, limit: int = AUTO_MAX_PER_GPU) -> int:
    """How many trials like the measured one fit in the free memory (at least 1).

    >>> auto_per_gpu(free_bytes=10 * 2**30, peak_bytes=2**30)
    8
    >>> auto_per_gpu(free_bytes=3 * 2**30, peak_bytes=2**30)
    2
    """
    if peak_bytes <= 0:
        return limit
    return max(1, min(limit, int(free_bytes * AUTO_HEADROOM // peak_bytes)))


class SlotPool:
    """Thread-safe slots over devices, with a capacity per device that can shrink or grow.

    ``acquire`` picks the least-loaded device with a free slot (blocking while there is none);
    ``release`` frees a slot, retiring it if the device's capacity dropped below it meanwhile.
    """

    def __init__(self, capacity: Mapping[str, int]) -> None:
        if not capacity or any(int(k) < 1 for k in capacity.values()):
            raise ValueError(f"every device needs at least one slot, but got {dict(capacity)!r}")
        self._capacity = {device: int(k) for device, k in capacity.items()}
        self._busy: dict[str, set[int]] = {device: set() for device in capacity}
        self._lock = threading.RLock()  # `with self._lock`: a C __enter__, no gap for a Ctrl-C (Study's note)
        self._cond = threading.Condition(self._lock)

    @classmethod
    def from_slots(cls, slots: Sequence[str]) -> SlotPool:
        """A pool from a flat list of device strings ("cuda:0" twice = two slots on cuda:0)."""
        capacity: dict[str, int] = {}
        for device in slots:
            capacity[device] = capacity.get(device, 0) + 1
        return cls(capacity)

    @property
    def devices(self) -> list[str]:
        return list(self._capacity)

    @property
    def capacity(self) -> int:
        with self._lock:
            return sum(self._capacity.values())

    def capacity_of(self, device: str) -> int:
        with self._lock:
            return self._capacity[device]

    def busy(self) -> list[Slot]:
        with self._lock:
            return [Slot(d, i) for d, taken in self._busy.items() for i in sorted(taken)]

    def acquire(self, timeout: float | None = None) -> Slot:
        """The free slot on the least-loaded device; TimeoutError after ``timeout`` seconds."""
        with self._lock:
            if not _locks.wait_for(self._cond, self._has_free, timeout):  # Ctrl-C safe (_locks.py)
                raise TimeoutError(f"no free slot within {timeout} s; busy: {self.busy()!r}")
            device = min((d for d in self._capacity if len(self._busy[d]) < self._capacity[d]),
                         key=lambda d: len(self._busy[d]) / self._capacity[d])
            # First free index without building a set of all of them (--parallel may be huge).
            index = next(i for i in range(self._capacity[device]) if i not in self._busy[device])
            self._busy[device].add(index)
            return Slot(device, index)

    def _has_free(self) -> bool:
        return any(len(self._busy[d]) < k for d, k in self._capacity.items())

    def release(self, slot: Slot) -> None:
        with self._lock:
            if slot.index not in self._busy[slot.device]:
                raise ValueError(f"{slot!r} is not in use")
            self._busy[slot.device].discard(slot.index)
            self._cond.notify_all()

    def shrink(self, device: str) -> int:
        """One slot fewer on ``device`` (after an out-of-memory), never below one; the new capacity."""
        with self._lock:
            self._capacity[device] = max(1, self._capacity[device] - 1)
            return self._capacity[device]

    def resize(self, device: str, capacity: int) -> None:
        """Set ``device``'s capacity (``per_gpu="auto"`` after its first trial)."""
        with self._lock:
            self._capacity[device] = max(1, int(capacity))
            self._cond.notify_all()


def plan_slots(parallel: int, gpus: GpuSpec = None, per_gpu: PerGpu = 1,
               available: Sequence[GpuInfo] | None = None) -> tuple[dict[str, int], bool]:
    """(capacity per device, whether to size GPUs from the first trial's memory).

    With GPUs the slots are ``per_gpu`` per GPU and ``parallel`` is not used; on the CPU (no GPU
    asked for, or none visible) there are ``parallel`` slots on "cpu".
    """
    check_per_gpu(per_gpu)
    if gpus is not None and gpus != [] and available is None:
        available = discover_gpus()
    chosen = select_gpus(gpus, available or [])
    if not chosen:
        return {"cpu": parallel}, False
    start = 1 if per_gpu == "auto" else int(per_gpu)
    return {g.device: start for g in chosen}, per_gpu == "auto"


def cpu_threads_per_trial(parallel: int) -> int:
    """Torch threads for one of ``parallel`` CPU trials, so they do not oversubscribe the cores."""
    return max(1, (os.cpu_count() or 1) // max(1, parallel))


class GpuMemory:
    """The CUDA memory calls the runner makes around a trial; tests substitute a fake."""

    def applies(self, device: str) -> bool:
        return device.startswith("cuda") and "torch" in sys.modules

    def reset_peak(self, device: str) -> None:
        import torch
        torch.cuda.reset_peak_memory_stats(device)

    def peak(self, device: str) -> int:
        import torch
        return int(torch.cuda.max_memory_allocated(device))

    def free(self, device: str) -> int:
        import torch
        return int(torch.cuda.mem_get_info(device)[0])

    def empty_cache(self, device: str) -> None:
        import gc

        import torch
        gc.collect()  # the failed trial's frames may still hold tensors
        if torch.cuda.is_available():
            with torch.cuda.device(device):
                torch.cuda.empty_cache()


def is_out_of_memory(error: BaseException) -> bool:
    """torch's CUDA OOM error (or the RuntimeError older torch raised), without importing torch."""
    torch: Any = sys.modules.get("torch")
    oom_type = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None) if torch else None
    if oom_type is not None and isinstance(error, oom_type):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()
