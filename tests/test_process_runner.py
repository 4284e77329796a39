"""executor="processes": a worker process that dies is charged to its own trial alone (and to
none once the study stops); a prune reaches a trial at the report after the one that decided it."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import hpwidgets as hw
from hpwidgets import runner
from hpwidgets.events import TrialReported
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


def test_a_trial_whose_worker_dies_once_the_study_stops_is_interrupted_and_not_sent_again(tmp_path: Path) -> None:
    reported, stopped = tmp_path / "reported", tmp_path / "stopped"

    def wait_for(path: Path) -> None:
        deadline = time.monotonic() + 30
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)

    def objective(params: dict, trial: hw.Trial) -> float:
        (tmp_path / f"attempt-{len(list(tmp_path.glob('attempt-*')))}").touch()
        trial.report(0, loss=1.0)
        reported.touch()  # past its report: a stop from here on cannot prune it there
        wait_for(stopped)
        os._exit(3)  # as a Ctrl-C's process would, had it not ignored SIGINT

    def stop_once_past_the_report() -> None:
        wait_for(reported)
        study.stop()
        stopped.touch()

    study = hw.Study(space=SPACE, algo="random", seed=0)
    stopper = threading.Thread(target=stop_once_past_the_report)
    study.subscribe(lambda e: isinstance(e, TrialReported) and not stopper.is_alive() and stopper.start())
    study.optimize(objective, trials=3, executor="processes", progress=False)
    assert [(t.state, t.error) for t in study.trials] == [(TrialState.FAIL, "interrupted")]
    assert [path.name for path in tmp_path.glob("attempt-*")] == ["attempt-0"]


def test_asha_stops_a_process_trial_at_the_report_after_its_rung(monkeypatch: Any) -> None:
    # A report waiting for the next poll reaches the pruner late (a trial reporting every 5 ms ran
    # 5-15 steps past its rung): with no poll in time, each report must be judged as it arrives,
    # and each trial's end still be seen at once.
    monkeypatch.setattr(runner, "RELAY_INTERVAL_S", 30.0)

    def objective(params: dict, trial: hw.Trial) -> float:
        for step in range(1, 10):
            trial.report(step, loss=trial.number + 1 / step)  # each trial worse than every earlier one
            time.sleep(0.05)
        return float(trial.number)

    study = hw.Study(space=SPACE, algo="random", seed=0, pruner="asha")
    started = time.monotonic()
    study.optimize(objective, trials=3, executor="processes", progress=False)
    assert time.monotonic() - started < 15
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.PRUNED]
    assert study.pruner.rung_steps()[0] == 1
    assert all(t.reports[-1].step <= 3 for t in study.trials[1:])  # the rung's report, or one or two after it
