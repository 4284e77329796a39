"""Scenario 11 at CI size: thousands of trivial trials finish, memory grows by a bounded amount per
trial, and a live panel keeps up by batching. ``benchmarks/faults.py`` runs the full 10,000.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, ClassVar

import anywidget  # noqa: F401 - a dev dependency: missing means a broken install
import comm
import pytest
from comm.base_comm import BaseComm
from faultkit import finished_count, integrity

import hpwidgets as hw
from hpwidgets.events import TrialFinished
from hpwidgets.ui import Dashboard

TRIALS = 2000
SPACE = {"x": hw.uniform(0, 1), "n": hw.int(1, 10), "c": hw.choice("a", "b")}
MAX_GROWTH_MB = 30  # measured: ~2.5 MB for these 1500 trials; a per-trial leak of 20 KB would exceed it


class CountingComm(BaseComm):
    messages: ClassVar[int] = 0

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                    **keys: Any) -> None:
        CountingComm.messages += 1


def rss_mb() -> float:
    """Resident memory now (not the peak: earlier tests in this process must not count)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads /proc")
def test_thousands_of_trials_complete_with_bounded_memory_and_a_panel_that_keeps_up(
        db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(comm, "create_comm", lambda *a, **k: CountingComm(*a, **k))
    CountingComm.messages = 0
    study = hw.Study("many", SPACE, algo="random", seed=0, storage=db)
    panel = Dashboard(study, mode="widget")  # the real pump: at most 10 updates a second
    memory: dict[int, float] = {}
    study.subscribe(lambda e: memory.__setitem__(e.trial.number + 1, rss_mb())
                    if isinstance(e, TrialFinished) and (e.trial.number + 1) in (500, TRIALS) else None)
    started = time.monotonic()
    try:
        study.optimize(lambda p: p["x"], trials=TRIALS, progress=False)
        elapsed = time.monotonic() - started
        panel.flush()
        assert len(study.trials) == TRIALS and study.finish_reason == "complete"
        assert finished_count(db) == TRIALS and integrity(db) == "ok"
        print(f"RSS growth, trial 500 to {TRIALS}: {memory[TRIALS] - memory[500]:.1f} MB")
        assert memory[TRIALS] - memory[500] < MAX_GROWTH_MB, memory
        assert elapsed < 60, f"{TRIALS} trivial trials took {elapsed:.1f} s"
        assert panel._stats.done == TRIALS and panel._view.chart.n_trials == TRIALS
        assert CountingComm.messages < TRIALS / 4, "the panel sent about one message per trial: not batching"
    finally:
        panel.close()
