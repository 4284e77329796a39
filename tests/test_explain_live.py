"""The live explainer's refreshes: off the trials' threads, one at a time, coalesced, and synchronous
at the end of a search (so a finished study's explainer shows every trial)."""

from __future__ import annotations

import threading
import time
from typing import Any

import hpwidgets as hw
from hpwidgets.events import StudyFinished, TrialFinished
from hpwidgets.explain import LiveFigures
from hpwidgets.trial import FrozenTrial, TrialState

WAIT_S = 5.0  # generous: only a broken refresher ever waits this long


class Recording(LiveFigures):
    """Counts its redraws and notes the thread of each; ``gate`` (when set) holds the next redraw."""

    def __init__(self, every_s: float) -> None:
        self.threads: list[threading.Thread] = []
        self.entered = threading.Event()
        self.gate: threading.Event | None = None
        self.ended_at = 0.0
        self.study = hw.Study(space={"x": hw.uniform(0, 1)}, algo="random", seed=0, storage=None)
        super().__init__([self.study], every_s=every_s, mode="static")
        self._handle = self  # as if shown: redraws now compute figures and update "the display"

    def figures(self) -> list[dict[str, Any]]:
        self.threads.append(threading.current_thread())
        self.entered.set()
        gate, self.gate = self.gate, None
        if gate is not None:
            gate.wait(WAIT_S)
        self.ended_at = time.monotonic()
        return []

    def text(self) -> str:
        return ""

    def update(self, bundle: dict[str, Any], raw: bool = False) -> None:
        """The display handle's method."""

    def settle(self) -> None:
        """Wait until the refresher has gone (nothing stale is left)."""
        deadline = time.monotonic() + WAIT_S
        while getattr(self, "_refresher", None) is not None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert getattr(self, "_refresher", None) is None, "the refresher never finished"


def finished(number: int = 0) -> TrialFinished:
    return TrialFinished("s", FrozenTrial(number, TrialState.COMPLETE, {"x": 0.5}, value=0.5))


def test_a_finished_trial_never_refreshes_on_the_thread_that_published_it() -> None:
    live = Recording(every_s=0.0)
    live._on_event(finished())
    assert live.entered.wait(WAIT_S)
    live.settle()
    assert live.threads and threading.current_thread() not in live.threads  # was: the trial's own thread
    live.close()


def test_trials_finishing_during_a_refresh_make_one_more_refresh_not_one_each() -> None:
    live = Recording(every_s=0.0)
    gate = live.gate = threading.Event()
    live._on_event(finished(0))
    assert live.entered.wait(WAIT_S)  # the refresher's redraw is under way, held at the gate
    for number in range(1, 10):
        live._on_event(finished(number))  # returns at once: the redraw runs elsewhere
    gate.set()
    live.settle()
    assert len(live.threads) == 2  # the held redraw, then one for all nine (was: one per trial)
    live.close()


def test_every_s_counts_from_the_end_of_the_last_refresh() -> None:
    live = Recording(every_s=0.0)
    live.refresh()
    assert live._last >= live.ended_at  # was: its start, so a slow refresh was due again at once
    live.close()


def test_the_end_of_a_search_refreshes_at_once_and_leaves_nothing_stale() -> None:
    live = Recording(every_s=3600.0)  # no throttled redraw within this test
    live._on_event(finished())
    assert live.threads == []  # due only an hour after the last
    live._on_event(StudyFinished("s", "complete", 1))
    assert live.threads == [threading.current_thread()]  # synchronous: optimize returns after it
    live.settle()  # the waiting refresher sees the figures current and ends without a redraw
    assert len(live.threads) == 1
    live.close()


def test_close_ends_a_waiting_refresher() -> None:
    live = Recording(every_s=3600.0)
    live._on_event(finished())
    live.close()
    live.settle()
    assert live.threads == []


def test_a_real_search_ends_with_a_redraw_after_its_last_trial() -> None:
    live = Recording(every_s=0.0)
    live.study.optimize(lambda p: p["x"], trials=20, progress=False)
    assert live.threads[-1] is threading.current_thread()  # the StudyFinished redraw, last
    live.close()
