"""executor="processes": a worker process that dies is charged to its own trial alone."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import hpwidgets as hw
from hpwidgets.trial import TrialState

SPACE = {"x": hw.uniform(0, 1)}
HEALTHY_VALUE = 0.5


def crashes_beside_a_healthy_trial(folder: Path) -> Any:
    """Trial 1 ends its worker process (os._exit) each time it runs, once trial 0 has started in
    the same pool; trial 0 notes each of its attempts and waits to be terminated with its pool
    until trial 1 has crashed twice, then returns ``HEALTHY_VALUE``."""
    def objective(params: dict, trial: hw.Trial) -> float:
        crashes = len(list(folder.glob("crash-*")))
        if trial.number == 1:
            deadline = time.monotonic() + 30
            while not (folder / f"healthy-{crashes}").exists() and time.monotonic() < deadline:
                time.sleep(0.01)  # until trial 0 runs in this pool: the crash breaks it under trial 0
            (folder / f"crash-{crashes}").touch()
            os._exit(3)
        (folder / f"healthy-{len(list(folder.glob('healthy-*')))}").touch()
        if crashes < 2:
            time.sleep(15)  # the broken pool terminates it long before
            return -1.0
        return HEALTHY_VALUE
    return objective


def test_a_crashing_trial_does_not_spend_the_attempts_of_a_healthy_one_beside_it(tmp_path: Path) -> None:
    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.optimize(crashes_beside_a_healthy_trial(tmp_path), trials=2, parallel=2, executor="processes",
                   progress=False)
    healthy, crashing = study.trials
    assert sorted(path.name for path in tmp_path.glob("healthy-*")) == ["healthy-0", "healthy-1", "healthy-2"]
    assert (healthy.state, healthy.value, healthy.error) == (TrialState.COMPLETE, HEALTHY_VALUE, None)
    assert crashing.state is TrialState.FAIL and crashing.error.startswith("worker died: the worker process "
                                                                           "running this trial ended twice")
