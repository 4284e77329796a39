"""Scenarios 1-3: the objective raises, returns something that is not a finite number, or runs out of GPU memory.

Each ends with the failed trial FAIL on disk with its reason, every other trial saved, and the
search finished (or resumable) - through the Python API and through ``%%hptune``.
"""

from __future__ import annotations

import asyncio
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from faultkit import assert_saved, rows, states
from IPython.core.interactiveshell import InteractiveShell

import hpwidgets as hw
from hpwidgets import devices, workers
from hpwidgets.devices import GpuInfo
from hpwidgets.trial import TrialState

SPACE = {"x": hw.uniform(0, 1)}
HANG_S = 5.0  # an objective's exception must never hang the search; 8 trivial trials take milliseconds


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ failed")


def run_guarded(study: hw.Study, objective: Any, **kwargs: Any) -> BaseException | None:
    """``study.optimize`` on a daemon thread: a hang fails the test instead of freezing the suite."""
    outcome: dict[str, BaseException | None] = {}

    def target() -> None:
        try:
            study.optimize(objective, progress=False, **kwargs)
            outcome["error"] = None
        except BaseException as error:  # what escaped optimize is part of the answer
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_S)
    assert "error" in outcome, f"optimize hung for {HANG_S} s; running={study.running_trials}"
    return outcome["error"]


def every_other(error: BaseException) -> Any:
    """Trials 1, 3, 5, ... raise ``error``; the others return x."""
    def objective(params: dict, trial: hw.Trial) -> float:
        if trial.number % 2:
            raise error
        return params["x"]
    return objective


# --- 1. the objective raises ------------------------------------------------------------------------
@pytest.mark.parametrize("parallel", [1, 2])
@pytest.mark.parametrize("error, reason", [
    (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero"),
    (UnprintableError(), "UnprintableError"),
    (SystemExit(2), "SystemExit"),  # argparse in training code, or sys.exit()
    (asyncio.CancelledError(), "CancelledError"),  # a BaseException since Python 3.8
], ids=["ZeroDivisionError", "unprintable", "SystemExit", "CancelledError"])
def test_a_raising_objective_fails_its_trials_and_the_search_finishes(db: Path, parallel: int, error: BaseException,
                                                                     reason: str) -> None:
    study = hw.Study("raises", SPACE, algo="random", seed=0, storage=db)
    escaped = run_guarded(study, every_other(error), trials=8, parallel=parallel)
    assert escaped is None, f"{escaped!r} escaped optimize instead of failing one trial"
    assert [t.number for t in study.trials] == list(range(8))
    assert states(study.trials) == [TrialState.COMPLETE, TrialState.FAIL] * 4
    assert all(t.error.startswith(reason) and "Traceback" in t.error for t in study.trials[1::2])
    assert study.finish_reason == "complete" and not study.running
    assert_saved(study, db)


def test_a_cell_that_raises_keeps_its_traceback_on_disk_and_the_search_goes_on(shell: InteractiveShell,
                                                                               db: Path) -> None:
    cell = "x = hp.uniform(0, 1)\nif hp.trial.number % 3 == 0:\n    x / 0\nx\n"
    shell.run_cell_magic("hptune", f"--algo random --seed 0 --trials 6 --name cell --storage {db} -o st", cell)
    study = shell.user_ns["st"]
    failed = [t for t in study.trials if t.state is TrialState.FAIL]
    assert [t.number for t in failed] == [0, 3] and len(study.trials) == 6
    assert all("ZeroDivisionError" in t.error and "line 4" in t.error for t in failed)  # the user's own line
    assert_saved(study, db)


# --- 2. bad return values -------------------------------------------------------------------------
def constant(value: Any) -> Any:
    return lambda params: value


@pytest.mark.parametrize("value, reason", [
    (math.nan, "must be finite, but got nan"),
    (math.inf, "must be finite, but got inf"),
    (-math.inf, "must be finite, but got -inf"),
    (np.float32("nan"), "must be finite, but got nan"),
    (None, "returned None"),
    ("0.5", "must be a number, but got '0.5' (str)"),
    (True, "must be a number, but got True (bool)"),
    ([0.5], "must be a number, but got [0.5] (list)"),
    ({"loss": math.nan}, "metric 'loss' must be finite"),
    ({}, "empty"),
], ids=["nan", "inf", "-inf", "np-nan", "None", "str", "bool", "list", "dict-nan", "empty-dict"])
def test_a_bad_return_value_fails_the_trial_with_its_reason_on_disk(db: Path, value: Any, reason: str) -> None:
    study = hw.Study("returns", SPACE, algo="random", seed=0, storage=db)
    study.optimize(constant(value), trials=3, progress=False)
    assert states(study.trials) == [TrialState.FAIL] * 3 and study.finish_reason == "complete"
    assert all(reason in t.error.splitlines()[0] for t in study.trials), study.trials[0].error.splitlines()[0]
    assert [row[1:3] for row in assert_saved(study, db)] == [("FAIL", None)] * 3


def test_bad_returns_stop_the_search_at_max_failures_with_everything_saved(db: Path) -> None:
    study = hw.Study("capped", SPACE, algo="random", seed=0, storage=db, max_failures=3)
    study.optimize(lambda p: None if p["x"] < 0.9 else p["x"], trials=50, progress=False)
    assert study.finish_reason == "max_failures" and len(study.trials) < 50
    assert sum(t.state is TrialState.FAIL for t in study.trials) == 3
    assert_saved(study, db)


# --- 3. CUDA out of memory ------------------------------------------------------------------------
class FakeMemory:
    """Stands for CUDA's allocator: records which devices had their cache emptied."""

    def __init__(self) -> None:
        self.emptied: list[str] = []

    def applies(self, device: str) -> bool:
        return device.startswith("cuda")

    def empty_cache(self, device: str) -> None:
        self.emptied.append(device)


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> FakeMemory:
    """One 8 GiB "GPU" with no CUDA behind it, the way the colleague's OOM tests fake one."""
    monkeypatch.setattr(devices, "discover_gpus", lambda: [GpuInfo(0, "Fake", 8 * 2**30, 8 * 2**30)])
    memory = FakeMemory()
    monkeypatch.setattr(workers, "_memory", memory)
    return memory


def test_cuda_oom_fails_the_trial_frees_a_slot_and_the_search_goes_on(db: Path, fake_gpu: FakeMemory) -> None:
    import torch

    def objective(params: dict, trial: hw.Trial) -> float:
        if trial.number in (1, 4):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return params["x"]

    study = hw.Study("oom", SPACE, algo="random", seed=0, storage=db)
    study.optimize(objective, trials=8, gpus=0, per_gpu=3, progress=False)
    failed = [t for t in study.trials if t.state is TrialState.FAIL]
    assert [t.number for t in failed] == [1, 4] and len(study.trials) == 8
    assert all(t.error.startswith("out of memory on cuda:0") and "Tried to allocate" in t.error for t in failed)
    assert fake_gpu.emptied == ["cuda:0", "cuda:0"]
    assert {t.device for t in study.trials} == {"cuda:0"}
    assert_saved(study, db)
    assert [row[0] for row in rows(db) if row[1] == "FAIL"] == [1, 4]


def test_cuda_oom_raised_in_a_cell_is_named_in_the_stored_reason(shell: InteractiveShell, db: Path) -> None:
    import torch  # noqa: F401 - a dev dependency: missing means a broken install
    cell = ("import torch\nx = hp.uniform(0, 1)\nif hp.trial.number == 1:\n"
            "    raise torch.cuda.OutOfMemoryError('CUDA out of memory')\nx\n")
    shell.run_cell_magic("hptune", f"--algo random --seed 0 --trials 3 --name oomcell --storage {db} -o st", cell)
    study = shell.user_ns["st"]
    assert states(study.trials) == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert study.trials[1].error.startswith("out of memory on cpu")
    assert_saved(study, db)
