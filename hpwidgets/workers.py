"""What runs *inside* a worker (a thread, a process or a Dask task): one trial plus its device care.

Around the objective call this module sets torch's thread count for CPU trials, measures a
GPU trial's peak memory when the runner sizes ``per_gpu="auto"``, and turns a CUDA
out-of-memory error into a FAIL whose reason starts with "out of memory" (after emptying the
cache). Everything crossing a process boundary is plain data (``encode``/``decode``), because
``FrozenTrial`` holds read-only mappings that do not pickle.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import _execute
from ._payload import PayloadFile, payload_bytes
from .devices import GpuMemory, is_out_of_memory
from .trial import FrozenTrial, PruneHook, Report, TrialState

OOM_PREFIX = "out of memory"
log = logging.getLogger(__name__)
_memory = GpuMemory()  # replaced by tests that fake CUDA


@dataclass(frozen=True)
class Outcome:
    """A finished trial plus what the runner learns from it about the device."""

    trial: FrozenTrial
    peak_bytes: int | None = None   # set when the runner asked to measure
    free_bytes: int | None = None
    out_of_memory: bool = False


def _guard(call: _execute.BoundObjective, caught: list[BaseException]) -> _execute.BoundObjective:
    """Remember an OOM error on its way out, so the FAIL reason can say so."""
    def guarded(params: Mapping[str, Any], trial: Any) -> Any:
        try:
            return call(params, trial)
        except BaseException as error:
            if is_out_of_memory(error):
                caught.append(error)
            raise
    return guarded


def set_torch_threads(threads: int | None) -> None:
    """Per-thread in torch (OpenMP), so each parallel CPU trial gets its share of the cores, once
    torch is imported (by the user: never imported here for this alone)."""
    if threads is None or "torch" not in sys.modules:
        return
    try:
        import torch  # waits while another trial's thread is still importing it: a partial module has no API
        torch.set_num_threads(threads)
    except Exception as error:  # a thread count is no reason to lose a trial
        log.debug("torch.set_num_threads(%s) was skipped: %s", threads, error)


def run_trial(call: _execute.BoundObjective, number: int, params: Mapping[str, Any], device: str, *,
              target: str | None, on_report: PruneHook | None = None, stopping: Callable[[], bool] | None = None,
              measure: bool = False, threads: int | None = None) -> Outcome:
    """Run one trial on ``device``; never raises for the objective's errors (see ``_execute.run``)."""
    set_torch_threads(threads if device == "cpu" else None)
    if measure and _memory.applies(device):
        _memory.reset_peak(device)
    caught: list[BaseException] = []
    frozen = _execute.run(_guard(call, caught), number, params, device, target=target,
                          on_report=on_report, stopping=stopping)
    peak = free = None
    gpu = _memory.applies(device)  # asked again: the objective may have imported torch itself
    if caught:
        del caught[:]  # drop the error's frames (and their tensors) before emptying the cache
        frozen = frozen.evolve(error=f"{OOM_PREFIX} on {device}: {frozen.error}")
        if gpu:
            _memory.empty_cache(device)
        return Outcome(frozen, out_of_memory=True)
    if gpu and measure:
        peak = _memory.peak(device)
        _memory.empty_cache(device)
        free = _memory.free(device)
    return Outcome(frozen, peak, free)


def encode(outcome: Outcome) -> dict[str, Any]:
    """Plain data for the trip back from a process or a Dask worker."""
    t = outcome.trial
    return {"number": t.number, "state": t.state.value, "params": dict(t.params), "value": t.value,
            "metrics": dict(t.metrics), "reports": [(r.step, dict(r.metrics)) for r in t.reports],
            "error": t.error, "started_at": t.started_at, "finished_at": t.finished_at, "device": t.device,
            "peak_bytes": outcome.peak_bytes, "free_bytes": outcome.free_bytes,
            "out_of_memory": outcome.out_of_memory}


def decode(data: Mapping[str, Any]) -> Outcome:
    frozen = FrozenTrial(number=data["number"], state=TrialState(data["state"]), params=data["params"],
                         value=data["value"], metrics=data["metrics"],
                         reports=tuple(Report(step, metrics) for step, metrics in data["reports"]),
                         error=data["error"], started_at=data["started_at"], finished_at=data["finished_at"],
                         device=data["device"])
    return Outcome(frozen, data["peak_bytes"], data["free_bytes"], data["out_of_memory"])


def remote_device(device: str) -> str:
    """A Dask task's device: "cuda" means this worker's GPU when it has one, else the CPU."""
    if device != "cuda":
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"


def remote_trial(payload: bytes | PayloadFile, number: int, params: Mapping[str, Any], device: str, target: str | None,
                 measure: bool, threads: int | None, channel: tuple[Any, Any] | None = None) -> dict[str, Any]:
    """Entry point in a worker process: unpickle the objective, run the trial, send plain data back.

    ``channel``, when given, is (a queue, an event) shared with the study's process (a
    multiprocessing manager's, or Dask's): each report goes out at once (live charts, the
    algorithm's pruning), tagged with this attempt so a retry's repeats can be told apart, and
    a set event (pruned, or Stop) makes that report raise TrialPruned, as in a thread;
    ``should_stop()`` answers as of the last report. A last (attempt, None, None) says that no
    report follows, so the study's side need not poll for the end (``runner.relay_reports``).
    """
    call = loads(payload_bytes(payload))
    device = remote_device(device)
    on_report: PruneHook | None = None
    stopping: Callable[[], bool] | None = None
    if channel is not None:
        reports, halt = channel
        attempt = uuid.uuid4().hex
        halted = [False]  # read once per report: each read is a round trip to the study's side

        def on_report(_trial: Any, step: int, metrics: Mapping[str, float]) -> bool:
            reports.put((attempt, step, dict(metrics)))
            halted[0] = bool(halt.is_set())
            return halted[0]

        def stopping() -> bool:
            return halted[0]
    try:
        return encode(run_trial(call, number, params, device, target=target, on_report=on_report,
                                stopping=stopping, measure=measure, threads=threads))
    finally:
        if channel is not None:
            with contextlib.suppress(Exception):  # a lost channel must not cost the result
                channel[0].put((attempt, None, None))


def _cloudpickle() -> Any:
    try:
        import cloudpickle
    except ImportError:  # scikit-learn's joblib ships a copy
        from joblib.externals import cloudpickle
    return cloudpickle


def dumps(call: Any) -> bytes:
    """Pickle an objective by value (notebook functions and lambdas included)."""
    return _cloudpickle().dumps(call)


def loads(payload: bytes) -> Any:
    return _cloudpickle().loads(payload)


def init_process(threads: int | None) -> None:
    """Process-pool initializer: cap the math libraries' threads before torch is imported."""
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[name] = str(threads)
