"""Shared by the process and Dask tests: a trial that proves its reports arrive live, and a Stop."""

from __future__ import annotations

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
