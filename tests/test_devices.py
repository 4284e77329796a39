"""Device slots without CUDA: fake GPU lists, the pure slot pool, and thread/process workers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter

import numpy as np
import pytest
from live_reports import RETRIED, STEPS, dies_once_after_3_reports, reported, reports_until_stopped, stop_at_step_5

import hpwidgets as hw
from hpwidgets import devices, runner, workers
from hpwidgets._payload import payload_bytes, write_payload
from hpwidgets.devices import GpuInfo, Slot, SlotPool, auto_per_gpu, plan_slots, select_gpus
from hpwidgets.events import TrialFinished, TrialReported
from hpwidgets.trial import TrialState

SPACE = {"x": hw.uniform(0, 1)}
TWO_GPUS = [GpuInfo(0, "Fake A", 16 * 2**30, 15 * 2**30), GpuInfo(1, "Fake B", 16 * 2**30, 15 * 2**30)]


class FakeMemory:
    """Stands in for torch.cuda's memory calls: a fixed peak and free memory, calls recorded."""

    def __init__(self, peak: int = 2**30, free: int = 3 * 2**30) -> None:
        self.peak_bytes, self.free_bytes, self.calls = peak, free, []

    def applies(self, device: str) -> bool:
        return device.startswith("cuda")

    def reset_peak(self, device: str) -> None:
        self.calls.append(("reset_peak", device))

    def peak(self, device: str) -> int:
        return self.peak_bytes

    def free(self, device: str) -> int:
        return self.free_bytes

    def empty_cache(self, device: str) -> None:
        self.calls.append(("empty_cache", device))


@pytest.fixture
def fake_gpus(monkeypatch):
    monkeypatch.setattr(devices, "discover_gpus", lambda: list(TWO_GPUS))
    memory = FakeMemory()
    monkeypatch.setattr(workers, "_memory", memory)
    return memory


def overlap_by_device(spans: list[tuple[str, float, float]]) -> dict[str, int]:
    """The most trials that ran at once on each device, from (device, start, end) spans."""
    most: Counter[str] = Counter()
    for device, start, _ in spans:
        live = sum(1 for d, s, e in spans if d == device and s <= start < e)
        most[device] = max(most[device], live)
    return dict(most)


def timed_objective(spans: list, lock: threading.Lock, seconds: float = 0.05):
    def objective(params, trial):
        start = time.monotonic()
        time.sleep(seconds)
        with lock:
            spans.append((trial.device, start, time.monotonic()))
        return params["x"]
    return objective


def test_select_gpus_reads_auto_an_index_and_a_list():
    assert select_gpus("auto", TWO_GPUS) == TWO_GPUS
    assert select_gpus(1, TWO_GPUS) == [TWO_GPUS[1]]
    assert select_gpus([1, 0], TWO_GPUS) == [TWO_GPUS[1], TWO_GPUS[0]]
    assert select_gpus(None, TWO_GPUS) == [] and select_gpus("auto", []) == []


def test_select_gpus_explains_a_missing_index_and_falls_back_to_cpu_without_gpus():
    with pytest.raises(ValueError, match=r"asks for \['cuda:3'\], but only \['cuda:0', 'cuda:1'\]"):
        select_gpus([0, 3], TWO_GPUS)
    with pytest.warns(RuntimeWarning, match="no CUDA GPU is visible; running on the CPU") as caught:
        assert select_gpus([0], []) == []
    assert caught[0].filename == __file__  # the caller's line, not devices.py's
    for bad in ("all", True, [0, 0], [-1]):
        with pytest.raises(ValueError, match="`gpus` must"):
            select_gpus(bad, TWO_GPUS)


def test_plan_slots_per_gpu_and_cpu_fallback():
    assert plan_slots(3, "auto", 2, available=[]) == ({"cpu": 3}, False)
    assert plan_slots(1, [0, 1], 2, available=TWO_GPUS) == ({"cuda:0": 2, "cuda:1": 2}, False)
    assert plan_slots(1, "auto", "auto", available=TWO_GPUS) == ({"cuda:0": 1, "cuda:1": 1}, True)
    with pytest.raises(ValueError, match="`per_gpu` must be 'auto' or an int >= 1, but got per_gpu=0"):
        plan_slots(1, "auto", 0, available=TWO_GPUS)


def test_auto_per_gpu_fits_the_free_memory_with_headroom_and_a_limit():
    assert auto_per_gpu(10 * 2**30, 2**30) == 8
    assert auto_per_gpu(3 * 2**30, 2**30) == 2
    assert auto_per_gpu(2**29, 2**30) == 1  # never zero: a GPU is not given up on
    assert auto_per_gpu(10 * 2**30, 0) == devices.AUTO_MAX_PER_GPU


def test_slot_pool_spreads_over_devices_then_packs():
    pool = SlotPool({"cuda:0": 2, "cuda:1": 2})
    taken = [pool.acquire() for _ in range(4)]
    assert sorted(taken, key=lambda s: (s.device, s.index)) == [
        Slot("cuda:0", 0), Slot("cuda:0", 1), Slot("cuda:1", 0), Slot("cuda:1", 1)]
    assert [s.device for s in taken[:2]] in (["cuda:0", "cuda:1"], ["cuda:1", "cuda:0"])
    with pytest.raises(TimeoutError, match=r"no free slot within 0\.05 s"):
        pool.acquire(timeout=0.05)


def test_slot_pool_never_gives_one_slot_to_two_holders():
    pool, held, clashes, lock = SlotPool({"cuda:0": 2, "cuda:1": 3}), set(), [], threading.Lock()

    def worker() -> None:
        for _ in range(200):
            slot = pool.acquire()
            with lock:
                clashes.extend([slot] if slot in held else [])
                held.add(slot)
            with lock:
                held.discard(slot)
            pool.release(slot)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clashes == [] and pool.busy() == []


def test_shrink_retires_a_busy_slot_and_resize_wakes_waiters():
    pool = SlotPool({"cuda:0": 2})
    a, b = pool.acquire(), pool.acquire()
    assert pool.shrink("cuda:0") == 1 and pool.shrink("cuda:0") == 1  # never below one
    pool.release(b)
    with pytest.raises(TimeoutError):
        pool.acquire(timeout=0.05)  # b's slot retired: a still holds the only one
    got: list[Slot] = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire(timeout=5)))
    waiter.start()
    pool.resize("cuda:0", 3)
    waiter.join()
    assert got and got[0] != a


def test_trials_get_gpu_slots_and_never_exceed_per_gpu(fake_gpus):
    spans, lock = [], threading.Lock()
    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.optimize(timed_objective(spans, lock), trials=16, gpus=[0, 1], per_gpu=2, progress=False)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 16
    assert {t.device for t in study.trials} == {"cuda:0", "cuda:1"}
    assert overlap_by_device(spans) == {"cuda:0": 2, "cuda:1": 2}


def test_with_no_gpu_the_same_code_runs_on_cpu_slots(monkeypatch):
    monkeypatch.setattr(devices, "discover_gpus", lambda: [])
    spans, lock = [], threading.Lock()
    study = hw.tune(timed_objective(spans, lock), SPACE, algo="random", trials=6, gpus="auto", per_gpu=2,
                    parallel=2, storage=None, progress=False)
    assert {t.device for t in study.trials} == {"cpu"} and len(study.trials) == 6
    assert overlap_by_device(spans) == {"cpu": 2}


def test_per_gpu_auto_sizes_each_gpu_from_its_first_trial(fake_gpus):
    spans, lock = [], threading.Lock()
    trial_runner = runner.make_runner(gpus="auto", per_gpu="auto")
    assert trial_runner.capacity == 2  # one per GPU until measured
    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.optimize(timed_objective(spans, lock), trials=12, runner=trial_runner, progress=False)
    # peak 1 GiB, 3 GiB free: 0.8 * 3 // 1 = 2 per GPU
    assert trial_runner.pool.capacity_of("cuda:0") == 2 and trial_runner.pool.capacity_of("cuda:1") == 2
    assert ("reset_peak", "cuda:0") in fake_gpus.calls and ("reset_peak", "cuda:1") in fake_gpus.calls
    assert max(overlap_by_device(spans).values()) == 2 and len(study.trials) == 12


def test_per_gpu_auto_measures_a_trial_that_did_not_fail(fake_gpus, monkeypatch):
    monkeypatch.setattr(devices, "discover_gpus", lambda: TWO_GPUS[:1])
    peaks = iter([0, 2**30])  # the first trial fails before it allocates anything

    def objective(params, trial):
        fake_gpus.peak_bytes = next(peaks, 2**30)
        if trial.number == 0:
            raise ValueError("bad config")
        return params["x"]
    trial_runner = runner.make_runner(gpus="auto", per_gpu="auto")
    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.optimize(objective, trials=4, runner=trial_runner, progress=False)
    assert study.trials[0].state is TrialState.FAIL
    assert trial_runner.pool.capacity_of("cuda:0") == 2  # from the second trial's 1 GiB, not the first's 0


def test_parallel_cpu_trials_share_the_cores_in_torch():
    import torch
    seen = []
    hw.tune(lambda p: seen.append(torch.get_num_threads()) or 0.0, SPACE, algo="random", trials=4, parallel=2,
            storage=None, progress=False)
    assert set(seen) == {max(1, (os.cpu_count() or 1) // 2)}


def test_process_workers_run_a_picklable_objective_and_send_reports_back():
    reports = []
    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.subscribe(lambda e: reports.append(e.number) if isinstance(e, TrialReported) else None)

    def objective(params, trial):
        trial.report(0, value=params["x"])
        return float(os.getpid())

    study.optimize(objective, trials=4, parallel=2, executor="processes", progress=False)
    pids = {t.value for t in study.trials}
    assert len(study.trials) == 4 and os.getpid() not in pids and len(pids) <= 2
    assert sorted(reports) == [0, 1, 2, 3]


STDIN_SCRIPT = """
import hpwidgets as hw
if __name__ == "__main__":
    hw.tune(lambda p: p["x"], {"x": hw.uniform(0, 1)}, trials=2, executor="processes", storage=None, progress=False)
    print("ok")
"""


def test_processes_from_a_script_read_on_stdin_is_refused_with_a_clear_message(tmp_path):
    # Spawned workers would run the main script again: from stdin there is none, so every trial failed.
    child = subprocess.run([sys.executable, "-"], input=STDIN_SCRIPT, capture_output=True, text=True, cwd=tmp_path,
                           timeout=120)
    assert child.returncode == 1
    assert "ValueError: executor='processes'" in child.stderr and "'<stdin>'" in child.stderr
    assert "FileNotFoundError" not in child.stderr


def test_processes_from_a_script_file_run(tmp_path):
    script = tmp_path / "tune.py"
    script.write_text(STDIN_SCRIPT)
    child = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert child.returncode == 0 and child.stdout == "ok\n", child.stderr


def test_the_executor_takes_the_cells_words_as_well_as_the_apis():
    assert type(runner.make_runner(2, executor="process")) is type(runner.make_runner(2, executor="processes"))
    assert type(runner.make_runner(2, executor="thread")) is runner.ThreadRunner
    rule = "`executor` must be None, 'threads', 'processes', 'dask://host:port' or a distributed.Client"
    with pytest.raises(ValueError, match=re.escape(f"{rule}, but got executor='pool'")):
        runner.make_runner(2, executor="pool")


@pytest.mark.parametrize("takes_trial", [False, True])
def test_only_an_objective_that_can_report_gets_a_report_channel(takes_trial):
    # objective(params) cannot report: no manager process, whose round trips cost ~3 ms a trial.
    processes = runner.make_runner(2, executor="processes")
    manager_running = []
    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.subscribe(lambda e: manager_running.append(processes._manager is not None)
                    if isinstance(e, TrialFinished) else None)
    objective = (lambda p, trial: p["x"]) if takes_trial else (lambda p: p["x"])
    study.optimize(objective, trials=4, runner=processes, progress=False)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    assert manager_running == [takes_trial] * 4


def test_a_killed_worker_process_is_retried_once_then_its_trial_fails(tmp_path):
    marker = tmp_path / "died-once"

    def objective(params, trial):
        if trial.number == 1 or not marker.exists():
            marker.touch()
            os.kill(os.getpid(), 9)  # the worker process dies mid-trial
        return 1.0

    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.optimize(objective, trials=3, executor="processes", progress=False)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert study.trials[1].error.startswith("worker died")


def test_a_retried_process_trial_does_not_repeat_the_reports_already_shown(tmp_path):
    study = hw.Study(space=SPACE, algo="random", seed=0)
    seen = reported(study)
    study.optimize(dies_once_after_3_reports(tmp_path / "died"), trials=1, executor="processes", progress=False)
    (only,) = study.trials
    assert only.state is TrialState.COMPLETE and [r.step for r in only.reports] == [0, 1, 2, 3, 4]
    assert seen == RETRIED


def test_process_trials_report_live_and_stop_prunes_them_mid_way(tmp_path):
    seen = tmp_path / "study-saw-step-0"
    study = hw.Study(space=SPACE, algo="random", seed=0)
    stop_at_step_5(study, seen)
    study.optimize(reports_until_stopped(seen), trials=3, executor="processes", progress=False)
    (only,) = study.trials  # Stop: nothing new started after the first trial
    assert only.state is TrialState.PRUNED and only.reports[1].metrics["saw"] == 1.0
    assert 6 <= len(only.reports) < STEPS  # pruned at a report soon after Stop, not at the end


class PruneAtStep2(hw.algorithms.RandomSearch):
    def should_prune(self, trial_number: int, step: int, value: float) -> bool:
        return step >= 2


def test_the_algorithm_prunes_a_process_trial_at_its_next_report():
    def objective(params, trial):
        for step in range(50):
            trial.report(step, loss=params["x"])
            time.sleep(0.02)  # the prune answer travels back while the trial keeps going
        return params["x"]

    study = hw.Study(space=SPACE, algo=PruneAtStep2(), seed=0)
    study.optimize(objective, trials=2, parallel=2, executor="processes", progress=False)
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    assert all(3 <= len(t.reports) < 50 for t in study.trials)


def test_a_worker_process_reads_the_pickled_objective_once_and_keeps_it(tmp_path):
    first, second = write_payload(b"first", str(tmp_path)), write_payload(b"second", str(tmp_path))
    assert payload_bytes(first) == b"first"
    os.remove(first.path)
    assert payload_bytes(first) == b"first"  # kept: not read again
    assert payload_bytes(second) == b"second" and payload_bytes(b"as sent") == b"as sent"


def test_process_trials_send_the_objective_once_and_still_share_no_state():
    """Trials name the pickle's file (deleted after trial 0: the one worker kept its bytes), and each
    trial unpickles its own copy of the data the objective carries, so one trial's change is not seen."""
    data = np.zeros(100_000)

    def objective(params):
        data[0] += 1
        return float(data[0])

    processes = runner.make_runner(1, executor="processes")
    folders = []

    def on_finished(event):
        if isinstance(event, TrialFinished) and event.trial.number == 0:
            folders.append(processes._folder)
            for name in os.listdir(processes._folder):
                os.remove(os.path.join(processes._folder, name))

    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.subscribe(on_finished)
    study.optimize(objective, trials=3, runner=processes, progress=False)
    assert [t.value for t in study.trials] == [1.0, 1.0, 1.0]
    assert folders and not os.path.exists(folders[0])  # removed with the runner
