"""Resume after SIGKILL: a study killed half way is reopened by name and finished exactly."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import hpwidgets as hw
from hpwidgets.trial import TrialState

CHILD = textwrap.dedent("""
    import sys, time
    import hpwidgets as hw

    db, log, algo = sys.argv[1], sys.argv[2], sys.argv[3]

    def objective(params, trial):
        time.sleep(0.1)
        with open(log, "a") as f:
            f.write(f"{trial.number}\\n")
        return (params["x"] - 0.3) ** 2 + params["n"]

    space = {"x": hw.uniform(0, 1), "n": hw.int(1, 4), "c": hw.choice("a", "b")}
    hw.tune(objective, space, algo=algo, trials=40, seed=1, name="killed", storage=db, progress=False)
""")


def finished_count(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT COUNT(*) FROM trials WHERE state != 'RUNNING'").fetchone()[0]


def run_and_kill(tmp_path: Path, algo: str, kill_after: int) -> tuple[Path, list[int]]:
    script, db, log = tmp_path / "child.py", tmp_path / "study.db", tmp_path / "calls.log"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), str(db), str(log), algo])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if db.exists() and finished_count(db) >= kill_after:
            break
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    ran = [int(line) for line in log.read_text().split()]
    return db, ran


@pytest.mark.parametrize("algo", ["random", "tpe"])
def test_a_killed_study_resumes_with_the_exact_finished_count(tmp_path, algo):
    db, ran_before = run_and_kill(tmp_path, algo, kill_after=8)
    on_disk = finished_count(db)
    # The child logs a call just before its trial is committed, so the log may be one ahead.
    assert on_disk >= 8 and len(ran_before) - on_disk in (0, 1)
    ran_after: list[int] = []

    def objective(params, trial):
        ran_after.append(trial.number)
        return (params["x"] - 0.3) ** 2 + params["n"]

    space = {"x": hw.uniform(0, 1), "n": hw.int(1, 4), "c": hw.choice("a", "b")}
    study = hw.tune(objective, space, algo=algo, trials=40, seed=1, name="killed", storage=str(db), progress=False)
    trials = study.trials
    assert len(trials) == 40 and [t.number for t in trials] == list(range(40))
    interrupted = [t for t in trials if t.state is TrialState.FAIL]
    # The trial running at the kill is the only casualty: marked FAIL, never re-run.
    assert len(interrupted) <= 1 and all("interrupted" in t.error for t in interrupted)
    finished_before = {t.number for t in trials if t.number in set(ran_before) and t.state is TrialState.COMPLETE}
    assert not finished_before & set(ran_after)
    assert len(ran_after) == 40 - on_disk - len(interrupted)
    assert finished_count(db) == 40


def test_load_study_from_a_missing_file_says_so_and_creates_nothing(tmp_path):
    missing = tmp_path / "typo.db"
    with pytest.raises(ValueError, match=f"no storage file '{missing}'; load_study opens a store that exists"):
        hw.load_study("anything", missing)
    assert not missing.exists()

