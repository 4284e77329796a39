"""Scenarios 7 and 8: two processes write one storage file at once; a Dask worker dies mid-trial.

Two processes stand for two notebooks (a kernel is a process running the same Study code);
they start together behind a file barrier, so their transactions really interleave.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dask
import distributed
import pytest
from faultkit import assert_saved, child_env, integrity, rows, states, wait_until

import hpwidgets as hw
from hpwidgets.trial import TrialState

TRIALS = 30
WRITER = textwrap.dedent("""
    import json, os, sys, time
    import hpwidgets as hw

    db, name, seed, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    open(f"{go}.{seed}", "w").close()  # imported and ready
    while not os.path.exists(go):  # start together with the other writer
        time.sleep(0.005)
    study = hw.tune(lambda p: time.sleep(0.005) or p["x"], {"x": hw.uniform(0, 1)}, algo="random",
                    trials=int(sys.argv[5]), seed=seed, name=name, storage=db, progress=False)
    print(json.dumps([[t.number, t.state.value, t.value, t.error] for t in study.trials]))
""")


def two_writers(db: Path, names: tuple[str, str]) -> list[list[list]]:
    """Run two writer processes on ``db`` at once; each returns the trials its study ended with."""
    go = db.with_suffix(".go")
    children = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), name, str(seed), str(go), str(TRIALS)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
                for seed, name in enumerate(names)]
    wait_until(lambda: all(Path(f"{go}.{seed}").exists() for seed in (0, 1)), 60, "both writers to be ready")
    go.touch()
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_two_processes_with_different_studies_share_one_file(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    first, second = two_writers(db, ("left", "right"))
    for name, seen in (("left", first), ("right", second)):
        on_disk = rows(db, name)
        assert [row[0] for row in on_disk] == list(range(TRIALS)) and {row[1] for row in on_disk} == {"COMPLETE"}
        assert [list(row) for row in on_disk] == seen  # what each process saw is what is stored
    assert integrity(db) == "ok"


def test_two_processes_on_the_same_study_never_collide_or_lose_a_trial(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    first, second = two_writers(db, ("same", "same"))
    on_disk = rows(db, "same")
    numbers = [row[0] for row in on_disk]
    assert numbers == list(range(len(numbers))) and {row[1] for row in on_disk} == {"COMPLETE"}
    stored = {row[0]: list(row) for row in on_disk}
    for seen in (first, second):
        assert all(stored[trial[0]] == trial for trial in seen)  # nothing a process finished is missing
    # `trials` is the study's total: the store refuses a row past it, whichever process asks. A process
    # that opens the study after the other has finished a trial loads that one as resumed, so the two
    # lists may share trials: together they cover every row, and no row is past the total.
    seen_numbers = {trial[0] for trial in first} | {trial[0] for trial in second}
    assert len(on_disk) == TRIALS and seen_numbers == set(numbers), (len(on_disk), len(first), len(second))
    assert integrity(db) == "ok"


# --- 8. a Dask worker dies mid-trial ------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    # Saturation 1.0: no task waits in a busy worker's queue, so the killed worker takes only its trial.
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}), \
            distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                     dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        yield client


def kill_worker_when(pid_file: Path) -> threading.Thread:
    """SIGKILL the worker process whose pid the objective writes to ``pid_file``."""
    def watch() -> None:
        wait_until(pid_file.exists, 30, "a trial to announce its worker")
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def dies_on_trial(number: int, pid_file: Path) -> Callable[[dict, hw.Trial], float]:
    """Trial ``number`` announces its worker's pid and hangs (on its first attempt only)."""
    def objective(params: dict, trial: hw.Trial) -> float:
        if trial.number == number and not pid_file.exists():
            part = pid_file.with_suffix(".part")
            part.write_text(str(os.getpid()))
            part.rename(pid_file)  # atomic: the watcher never reads half a pid
            time.sleep(60)
        time.sleep(0.05)
        return params["x"]
    return objective


def set_allowed_failures(client: Any, value: int) -> int:
    before = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)
    client.run_on_scheduler(lambda dask_scheduler, v=value: setattr(dask_scheduler, "allowed_failures", v))
    return before


@pytest.mark.parametrize("allowed_failures", [3, 0], ids=["retried", "given-up"])
def test_a_dead_worker_costs_at_most_its_trial_and_everything_is_stored_once(dask_client: Any, tmp_path: Path,
                                                                             allowed_failures: int) -> None:
    db, pid_file = tmp_path / "dask.db", tmp_path / "worker.pid"
    before = set_allowed_failures(dask_client, allowed_failures)
    try:
        watcher = kill_worker_when(pid_file)
        study = hw.Study("dask", {"x": hw.uniform(0, 1)}, algo="random", seed=0, storage=db)
        study.optimize(dies_on_trial(2, pid_file), trials=6, executor=dask_client, background=True, progress=False)
        assert study.wait(90), "the search hung after its worker died"
        watcher.join()
    finally:
        set_allowed_failures(dask_client, before)
    expected = [TrialState.COMPLETE] * 6
    if allowed_failures == 0:  # the scheduler gives up on the task: that trial alone is FAIL
        expected[2] = TrialState.FAIL
        assert study.trials[2].error.startswith("worker died")
    assert [t.number for t in study.trials] == list(range(6)) and states(study.trials) == expected
    assert study.finish_reason == "complete"
    assert_saved(study, db)
    wait_until(lambda: len(dask_client.nthreads()) == 2, 30, "the nanny to restart the worker")
