"""CUDA out-of-memory inside a trial: FAIL "out of memory", cache emptied, one slot fewer, search goes on."""

from __future__ import annotations

import time

import pytest
import torch

import hpwidgets as hw
from hpwidgets import devices, runner, workers
from hpwidgets.devices import GpuInfo, is_out_of_memory
from hpwidgets.trial import TrialState

SPACE = {"x": hw.uniform(0, 1)}
ONE_GPU = [GpuInfo(0, "Fake", 8 * 2**30, 8 * 2**30)]


class RecordingMemory:
    def __init__(self) -> None:
        self.emptied: list[str] = []

    def applies(self, device: str) -> bool:
        return device.startswith("cuda")

    def empty_cache(self, device: str) -> None:
        self.emptied.append(device)


@pytest.fixture
def memory(monkeypatch):
    monkeypatch.setattr(devices, "discover_gpus", lambda: list(ONE_GPU))
    fake = RecordingMemory()
    monkeypatch.setattr(workers, "_memory", fake)
    return fake


def oom(message: str = "CUDA out of memory. Tried to allocate 2.00 GiB") -> BaseException:
    return torch.cuda.OutOfMemoryError(message)  # constructible without a GPU


def test_torch_oom_and_the_older_runtime_error_are_recognised():
    assert is_out_of_memory(oom())
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"))
    assert not is_out_of_memory(RuntimeError("shape mismatch")) and not is_out_of_memory(MemoryError())


def test_an_oom_fails_its_trial_empties_the_cache_and_drops_one_slot(memory):
    def objective(params, trial):
        if trial.number == 0:
            time.sleep(0.05)
            raise oom()
        time.sleep(0.02)
        return params["x"]

    trial_runner = runner.make_runner(gpus=0, per_gpu=3)
    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.optimize(objective, trials=10, runner=trial_runner, progress=False)
    first = study.trials[0]
    assert first.state is TrialState.FAIL and first.error.startswith("out of memory on cuda:0: OutOfMemoryError")
    assert "Tried to allocate 2.00 GiB" in first.error and "Traceback" in first.error
    assert memory.emptied == ["cuda:0"]
    assert trial_runner.pool.capacity_of("cuda:0") == 2
    assert [t.state for t in study.trials[1:]] == [TrialState.COMPLETE] * 9
    assert trial_runner.pool.busy() == []  # no slot left hanging


def test_every_trial_out_of_memory_on_one_slot_still_finishes(memory):
    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.optimize(lambda p: (_ for _ in ()).throw(oom()), trials=4, gpus=[0], progress=False)
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 4
    assert all(t.error.startswith("out of memory") for t in study.trials)
    assert memory.emptied == ["cuda:0"] * 4


def test_an_oom_on_the_cpu_is_named_but_touches_no_cuda_cache(memory):
    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.optimize(lambda p: (_ for _ in ()).throw(oom("out of memory")), trials=2, progress=False)
    assert study.trials[0].error.startswith("out of memory on cpu")
    assert memory.emptied == []


def test_other_errors_keep_their_own_reason(memory):
    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.optimize(lambda p: 1 / 0, trials=2, gpus=0, progress=False)
    assert study.trials[0].error.startswith("ZeroDivisionError") and memory.emptied == []
