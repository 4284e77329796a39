"""Scenarios 4 and 5 in this process: Ctrl-C (a real SIGINT) and Stop in the middle of a trial.

Ctrl-C during a *foreground* ``optimize`` lands in the objective (it runs on the main thread):
that trial is FAIL "interrupted", the study stops and KeyboardInterrupt reaches the caller.
Ctrl-C during ``%%hptune`` (which waits for a background search) pauses the study instead:
the running trial finishes normally and ``%hptune resume`` / ``%hptune stop`` take over.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from faultkit import assert_saved, finished_count, rows, states, wait_until
from IPython.core.interactiveshell import InteractiveShell

import hpwidgets as hw
from hpwidgets.trial import TrialState

SPACE = {"x": hw.uniform(0, 1)}


@contextmanager
def sigint_when(ready: Callable[[], bool]) -> Iterator[None]:
    """Send this process a real SIGINT once ``ready()``; the main thread gets KeyboardInterrupt."""
    assert threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    done = threading.Event()

    def fire() -> None:
        deadline = time.monotonic() + 20
        while not ready() and time.monotonic() < deadline and not done.is_set():
            time.sleep(0.01)
        if not done.is_set():
            os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        signal.signal(signal.SIGINT, previous)


def sleeper(at: int, started: threading.Event) -> Callable[[dict, hw.Trial], float]:
    """Trial ``at`` announces itself and sleeps long enough to be interrupted in the middle."""
    def objective(params: dict, trial: hw.Trial) -> float:
        if trial.number == at:
            started.set()
            time.sleep(20)
        return params["x"]
    return objective


# --- 4. KeyboardInterrupt -------------------------------------------------------------------------
def test_ctrl_c_in_a_foreground_search_fails_the_running_trial_and_stops(db: Path) -> None:
    started = threading.Event()
    study = hw.Study("ctrl-c", SPACE, algo="random", seed=0, storage=db)
    with sigint_when(started.is_set), pytest.raises(KeyboardInterrupt):
        study.optimize(sleeper(3, started), trials=10, progress=False)
    assert states(study.trials) == [TrialState.COMPLETE] * 3 + [TrialState.FAIL]
    assert study.trials[3].error.startswith("interrupted: KeyboardInterrupt")
    assert study.finish_reason == "interrupted" and not study.running
    assert_saved(study, db)


def test_an_interrupted_search_resumes_without_rerunning_anything(db: Path) -> None:
    started = threading.Event()
    first = hw.Study("ctrl-c", SPACE, algo="random", seed=0, storage=db)
    with sigint_when(started.is_set), pytest.raises(KeyboardInterrupt):
        first.optimize(sleeper(2, started), trials=6, progress=False)
    ran: list[int] = []
    again = hw.tune(lambda p, t: ran.append(t.number) or p["x"], SPACE, algo="random", trials=6, name="ctrl-c",
                    storage=db, progress=False)
    assert ran == [3, 4, 5]  # the interrupted trial counts (FAIL), nothing finished is run twice
    assert states(again.trials) == [TrialState.COMPLETE] * 2 + [TrialState.FAIL] + [TrialState.COMPLETE] * 3
    assert_saved(again, db)


def test_ctrl_c_while_hptune_waits_pauses_the_study_and_resume_finishes_it(shell: InteractiveShell,
                                                                           db: Path) -> None:
    cell = "x = hp.uniform(0, 1)\nimport time\ntime.sleep(0.05)\nx\n"
    line = f"--algo random --seed 0 --trials 12 --name waited --storage {db} --wait -o st"
    with sigint_when(lambda: finished_count(db) >= 2), pytest.raises(KeyboardInterrupt):
        shell.run_cell_magic("hptune", line, cell)
    study = shell.user_ns["st"]
    wait_until(lambda: not study.running_trials, 5, "the running trial to finish")
    paused_at = len(study.trials)
    time.sleep(0.2)
    assert study.paused and len(study.trials) == paused_at < 12  # paused: nothing new starts
    assert all(t.state is TrialState.COMPLETE for t in study.trials)  # the interrupted trial just finished
    assert study.running, "a paused study must still count as running, or %hptune resume/stop cannot reach it"
    shell.run_line_magic("hptune", "resume waited")
    assert study.wait(20) and len(study.trials) == 12 and study.finish_reason == "complete"
    assert_saved(study, db)


# --- 5. Stop ----------------------------------------------------------------------------------------
def reporter(steps: int = 50) -> Callable[[dict, hw.Trial], float]:
    def objective(params: dict, trial: hw.Trial) -> float:
        for step in range(steps):
            time.sleep(0.01)
            trial.report(step, loss=params["x"] + step)
        return params["x"]
    return objective


def test_stop_mid_trial_prunes_it_at_its_next_report_and_saves_it(db: Path) -> None:
    study = hw.Study("stopped", SPACE, algo="random", seed=0, storage=db)
    study.optimize(reporter(), trials=20, background=True, progress=False)
    wait_until(lambda: len(study.trials) >= 2 and bool(study.running_trials), 20, "trial 2 to be running")
    time.sleep(0.05)  # a few reports into trial 2
    study.stop()
    assert study.wait(10) and study.finish_reason == "stopped"
    assert states(study.trials) == [TrialState.COMPLETE] * 2 + [TrialState.PRUNED]
    pruned = study.trials[2]
    assert pruned.reports and pruned.value == pruned.reports[-1].metrics["loss"]  # stands for its last report
    assert_saved(study, db)


def test_stop_lets_trials_that_never_report_finish_and_starts_no_more(db: Path) -> None:
    release = threading.Event()
    study = hw.Study("stopped", SPACE, algo="random", seed=0, storage=db)
    study.optimize(lambda p: release.wait(10) and p["x"], trials=20, parallel=2, background=True, progress=False)
    wait_until(lambda: len(study.running_trials) == 2, 10, "two running trials")
    study.stop()
    release.set()
    assert study.wait(10) and study.finish_reason == "stopped"
    assert states(study.trials) == [TrialState.COMPLETE] * 2
    assert [row[:2] for row in rows(db)] == [(0, "COMPLETE"), (1, "COMPLETE")]
    assert_saved(study, db)
    resumed = hw.tune(lambda p: p["x"], SPACE, algo="random", trials=4, name="stopped", storage=db, progress=False)
    assert [t.number for t in resumed.trials] == [0, 1, 2, 3]
