"""Which RUNNING rows of this process are still running: a failed final write leaves one behind."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hpwidgets as hw
from hpwidgets.results import trial_row
from hpwidgets.space import SearchSpace, uniform
from hpwidgets.store import StorageError, Store
from hpwidgets.trial import FrozenTrial, TrialState

SPACE = SearchSpace({"x": uniform(0, 1)})
STALE = f"interrupted: this process (pid {os.getpid()}) is not running this trial, and its result was never saved"


def _rows(path: Path) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT number, state, error FROM trials ORDER BY number").fetchall()


@pytest.fixture
def disk_full_on(monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """Trial numbers whose final write fails inside SQLite's transaction, as a full disk's does."""
    numbers: set[int] = set()
    real = Store._transaction

    @contextlib.contextmanager
    def transaction(self: Store, action: str, *, write: bool) -> Iterator[sqlite3.Connection]:
        with real(self, action, write=write) as conn:
            if any(action == f"save trial {n}" for n in numbers):
                raise sqlite3.OperationalError("database or disk is full")
            yield conn

    monkeypatch.setattr(Store, "_transaction", transaction)
    return numbers


def _complete(number: int) -> FrozenTrial:
    return FrozenTrial(number, TrialState.COMPLETE, {"x": 0.5}, value=0.5, started_at=1.0, finished_at=2.0)


def test_a_row_whose_final_write_failed_is_marked_and_a_retry_completes_it(tmp_path: Path,
                                                                            disk_full_on: set[int]) -> None:
    store = Store(tmp_path / "s.db")
    study = store.open_study("s", direction="minimize", space=SPACE)
    assert [store.start_trial(study.id, {"x": 0.5}) for _ in range(2)] == [0, 1]
    disk_full_on.add(0)
    with pytest.raises(StorageError, match=r"could not save trial 0 .*database or disk is full"):
        store.finish_trial(study.id, _complete(0))
    disk_full_on.clear()
    assert store.mark_interrupted(study.id) == 1  # trial 1 is still running here: spared
    assert _rows(store.path) == [(0, "FAIL", STALE), (1, "RUNNING", None)]
    store.finish_trial(study.id, _complete(0))  # a retried write wins, whole
    assert [(t.number, t.state, t.error) for t in store.load_trials(study.id)] == [
        (0, TrialState.COMPLETE, None), (1, TrialState.RUNNING, None)]
    store.close()


def test_another_store_of_this_process_spares_the_trials_a_store_here_runs(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    running = Store(tmp_path / "s.db")
    study = running.open_study("s", direction="minimize", space=SPACE).id
    assert running.start_trial(study, {"x": 0.5}) == 0
    other = Store(tmp_path / "sub" / ".." / "s.db")  # the same file, spelled otherwise
    assert other.mark_interrupted(study) == 0 and _rows(other.path) == [(0, "RUNNING", None)]
    running.finish_trial(study, _complete(0))
    assert _rows(other.path) == [(0, "COMPLETE", None)]
    running.close()
    other.close()


def test_a_row_of_this_pid_that_no_store_here_started_is_stale(tmp_path: Path) -> None:
    """A pid reused after a container restart: the row is an old process's, not ours."""
    store = Store(tmp_path / "s.db")
    study = store.open_study("s", direction="minimize", space=SPACE).id
    with contextlib.closing(sqlite3.connect(store.path)) as conn, conn:
        conn.execute("INSERT INTO trials (study_id, number, state, metrics_json, started_at, device, host, pid) "
                     "VALUES (?, 0, 'RUNNING', '{}', 1.0, 'cpu', ?, ?)", (study, socket.gethostname(), os.getpid()))
    assert store.mark_interrupted(study) == 1 and _rows(store.path) == [(0, "FAIL", STALE)]
    store.close()


def test_a_rerun_in_the_same_process_after_a_failed_write_resumes_to_the_exact_count(
        tmp_path: Path, disk_full_on: set[int]) -> None:
    db = tmp_path / "s.db"
    disk_full_on.add(2)
    first = hw.Study("s", SPACE, algo="random", seed=0, storage=db)  # kept alive, as a notebook keeps it
    with pytest.raises(StorageError, match="could not save trial 2"):
        first.optimize(lambda p: p["x"], trials=5, progress=False)
    assert [(n, state) for n, state, _ in _rows(db)] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "RUNNING")]
    disk_full_on.clear()  # space freed
    again = hw.tune(lambda p: p["x"], SPACE, algo="random", trials=5, seed=1, name="s", storage=db, progress=False)
    assert [(t.number, t.state) for t in again.trials] == [(0, TrialState.COMPLETE), (1, TrialState.COMPLETE),
                                                          (2, TrialState.FAIL), (3, TrialState.COMPLETE),
                                                          (4, TrialState.COMPLETE)]
    assert again.trials[2].error == STALE and _rows(db)[2] == (2, "FAIL", STALE)
    assert again.clean_checkpoints() == (0, 0)


def test_the_error_column_shows_the_first_line_with_text() -> None:
    """An unsaved trial's error is its own (none) plus "\\nnot saved: ...": the column shows the note."""
    unsaved = FrozenTrial(1, TrialState.COMPLETE, {"x": 0.5}, value=0.5, error="\nnot saved: disk is full")
    assert trial_row(unsaved)["error"] == "not saved: disk is full"
    failed = FrozenTrial(2, TrialState.FAIL, {"x": 0.5}, error="  \nZeroDivisionError: division by zero\nTraceback")
    assert trial_row(failed)["error"] == "ZeroDivisionError: division by zero"
    assert trial_row(FrozenTrial(3, TrialState.FAIL, {"x": 0.5}, error=" \n "))["error"] is None
