"""Shared by the process and Dask tests: a trial that proves its reports arrive live, and a Stop."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import hpwidgets as hw
from hpwidgets.events import TrialReported

STEPS = 2000


def stop_at_step_5(study: hw.Study, seen: Path) -> None:
    """Mark ``seen`` when the study gets a step 0 report, and stop the study at step 5."""
    def on_event(event: Any) -> None:
        if isinstance(event, TrialReported) and event.step == 0:
            seen.touch()  # the study has step 0 while the trial still runs
        if isinstance(event, TrialReported) and event.step == 5:
            study.stop()
    study.subscribe(on_event)


def reports_until_stopped(seen: Path) -> Any:
    """Reports step 0, waits until the study has seen it (up to 20 s: without live reports it
    never does), then reports ``saw`` for ``STEPS`` steps unless pruned first."""
    def objective(params: dict, trial: hw.Trial) -> float:
        trial.report(0, loss=1.0)
        waited = 0.0
        while not seen.exists() and waited < 20:
            time.sleep(0.01)
            waited += 0.01
        for step in range(1, STEPS):
            trial.report(step, loss=1.0 / step, saw=float(seen.exists()))
            time.sleep(0.005)
        return 0.0
    return objective


def dies_once_after_3_reports(marker: Path) -> Any:
    """First attempt: reports steps 0-2 (loss 10 + step), then its worker process dies. A retry
    reports steps 0-4 (loss = step) and returns."""
    def objective(params: dict, trial: hw.Trial) -> float:
        first = not marker.exists()
        marker.touch()
        for step in range(3 if first else 5):
            trial.report(step, loss=(10.0 if first else 0.0) + step)
        if first:
            os.kill(os.getpid(), signal.SIGKILL)
        return 0.0
    return objective


def reported(study: hw.Study) -> list[tuple[int, float]]:
    """Every (step, loss) the study is given live, in order; filled while it runs."""
    seen: list[tuple[int, float]] = []
    study.subscribe(lambda e: seen.append((e.step, e.metrics["loss"])) if isinstance(e, TrialReported) else None)
    return seen


# The dead attempt's reports, then the retry's past them: each step reaches the study once.
RETRIED = [(0, 10.0), (1, 11.0), (2, 12.0), (3, 3.0), (4, 4.0)]
