"""Store tests on real SQLite files: round-trips, threads, processes and crashes (paths: test_store_files)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hpwidgets.space import SearchSpace, choice, integer, loguniform
from hpwidgets.store import StorageError, Store
from hpwidgets.trial import FrozenTrial, Report, TrialState

ROOT = Path(__file__).resolve().parents[1]
SPACE = SearchSpace({"lr": loguniform(1e-4, 1e-1), "layers": integer(1, 4), "opt": choice(16, "16", 16.5, True, None)})
PARAMS = {"lr": 0.001, "layers": 3, "opt": 16}
posix_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork, signals and POSIX permissions")

# Children import the package from this checkout and signal readiness on stdout.
CHILD = """
import os, signal, sys, time
from hpwidgets.space import uniform
from hpwidgets.store import Store
from hpwidgets.trial import FrozenTrial, TrialState
store = Store(sys.argv[1])
rec = store.open_study(sys.argv[2], direction="minimize", space={"x": uniform(0, 1)})
n = int(sys.argv[3])
"""
WRITER = """
print("ready", flush=True)
while not os.path.exists(sys.argv[4]):
    time.sleep(0.005)
for i in range(n):
    number = store.start_trial(rec.id, {"x": i / n}, "cpu")
    store.finish_trial(rec.id, FrozenTrial(number, TrialState.COMPLETE, {"x": i / n}, value=float(i),
                                           metrics={"pid": float(os.getpid())}))
    time.sleep(0.002)  # pace the writes so the two writers overlap even if one wakes late
"""
CRASHER = """
store.start_trial(rec.id, {"x": 0.5}, "cuda:0")  # still in flight when the process dies
for i in range(n):
    number = store.start_trial(rec.id, {"x": i / n}, "cpu")
    store.finish_trial(rec.id, FrozenTrial(number, TrialState.COMPLETE, {"x": i / n}, value=float(i)))
os.kill(os.getpid(), signal.SIGKILL)  # right after finish_trial returned
"""


def _spawn(body: str, *args: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(CHILD) + textwrap.dedent(body), *map(str, args)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "hptune.db")
    yield opened
    opened.close()


def _study(store: Store, name: str = "s", direction: str = "minimize", target: str | None = None) -> int:
    return store.open_study(name, direction=direction, target=target, space=SPACE, algo="tpe").id


def _done(number: int, value: float | None, state: TrialState = TrialState.COMPLETE, **extra: object) -> FrozenTrial:
    return FrozenTrial(number, state, PARAMS, value=value, started_at=10.0 + number, finished_at=20.0 + number,
                       **extra)


def _raw(path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(sql, args).fetchall()
    conn.close()
    return rows


# --- round-trips ---------------------------------------------------------------------------------
def test_every_state_round_trips_through_a_reopened_store(tmp_path: Path) -> None:
    path = tmp_path / "hptune.db"
    store = Store(path)
    study = _study(store)
    error = 'Traceback (most recent call last):\n  File "<cell>", line 3\nZeroDivisionError: division by zero — ünï'
    trials = [
        FrozenTrial(0, TrialState.COMPLETE, PARAMS, value=0.25, metrics={"loss": 0.25, "acc": 0.9},
                    reports=(Report(0, {"loss": 1.0, "acc": 0.5}), Report(1, {"loss": 0.5}), Report(1, {"loss": 0.25})),
                    started_at=100.0, finished_at=101.5, device="cuda:1"),
        FrozenTrial(1, TrialState.PRUNED, {**PARAMS, "opt": "16"}, reports=(Report(0, {"loss": 2.0}),),
                    started_at=102.0, finished_at=103.0),
        FrozenTrial(2, TrialState.FAIL, {**PARAMS, "opt": None}, error=error, started_at=104.0, finished_at=104.5),
    ]
    for trial in trials:
        assert store.start_trial(study, trial.params, trial.device) == trial.number
        store.finish_trial(study, trial)
    assert store.start_trial(study, {**PARAMS, "opt": True}, "cuda:0") == 3
    store.close()

    loaded = Store(path).load_trials(study)
    assert loaded[:3] == trials
    assert [type(t.params["opt"]) for t in loaded] == [int, str, type(None), bool]
    assert [r.step for r in loaded[0].reports] == [0, 1, 1] and list(loaded[0].reports[0].metrics) == ["loss", "acc"]
    running = loaded[3]
    assert (running.state, running.device, running.finished_at, running.value) == (TrialState.RUNNING, "cuda:0",
                                                                                   None, None)
    assert running.started_at is not None and running.params["opt"] is True


@pytest.mark.parametrize("value", [16, "16", 16.0, 16.5, True, False, None, 0, -7, 2**53 + 1, 1e-300, "", "ünï",
                                   np.int64(3), np.float32(0.5), np.bool_(True)])
def test_param_values_keep_their_json_type(store: Store, value: object) -> None:
    study = _study(store)
    store.finish_trial(study, FrozenTrial(0, TrialState.COMPLETE, {"v": value}, value=1.0))
    (loaded,) = store.load_trials(study)
    expected = value.item() if isinstance(value, np.generic) else value
    assert loaded.params["v"] == expected and type(loaded.params["v"]) is type(expected)


def test_start_trial_refuses_past_a_limit_on_rows_not_numbers(store: Store) -> None:
    study = _study(store)
    store.finish_trial(study, _done(7, 1.0))  # one row, numbered 7 (an import): numbers have a gap
    assert [store.start_trial(study, PARAMS, "cpu", limit=3) for _ in range(3)] == [8, 9, None]
    assert [t.number for t in store.load_trials(study)] == [7, 8, 9]  # the refused one wrote nothing


def test_finish_trial_is_an_upsert_that_replaces_params_and_reports(store: Store) -> None:
    study = _study(store)
    store.finish_trial(study, _done(5, 1.0))  # never started: recorded anyway
    assert store.start_trial(study, {**PARAMS, "stale": 1}, "cpu") == 6
    store.finish_trial(study, _done(6, 2.0, reports=(Report(0, {"loss": 3.0}),)))
    store.finish_trial(study, _done(6, 4.0, state=TrialState.PRUNED, reports=(Report(0, {"loss": 5.0}),)))
    five, six = store.load_trials(study)
    assert (five.number, five.value, six.value, six.state) == (5, 1.0, 4.0, TrialState.PRUNED)
    assert dict(six.params) == PARAMS and six.reports == (Report(0, {"loss": 5.0}),)
    with pytest.raises(ValueError, match="RUNNING"):
        store.finish_trial(study, FrozenTrial(7, TrialState.RUNNING, PARAMS))


def test_unknown_study_and_closed_store_raise_storage_error(store: Store) -> None:
    with pytest.raises(StorageError, match="no study with id 99"):
        store.start_trial(99, PARAMS, "cpu")
    store.close()
    store.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        store.load_trials(1)


# --- studies -------------------------------------------------------------------------------------
def test_open_study_returns_the_stored_study_and_refuses_a_changed_direction(store: Store) -> None:
    record = store.open_study("s", direction="maximize", target="acc", space=SPACE, algo="tpe")
    other_space = SPACE.replace(layers=integer(1, 8))
    again = store.open_study("s", direction="maximize", target="acc", space=other_space, algo="random")
    assert again == record and again.space == SPACE and again.algo == "tpe"  # only update_study changes them
    store.update_study(record.id, space=other_space)
    assert store.get_study("s").space == other_space and store.get_study("s").algo == "tpe"
    store.update_study(record.id, algo="random")
    assert store.get_study("s").space == other_space and store.get_study("s").algo == "random"
    assert store.get_study("nope") is None
    with pytest.raises(TypeError, match="algo=3"):
        store.update_study(record.id, algo=3)
    with pytest.raises(StorageError, match=r"direction='maximize'.*direction='minimize'") as refused:
        store.open_study("s", direction="minimize", target="acc", space=SPACE)
    with pytest.raises(ValueError, match=r"target='acc'.*target='loss'"):
        store.open_study("s", direction="maximize", target="loss", space=SPACE)
    hint = str(refused.value).rsplit(": ", 1)[1]  # the call it suggests must work as written
    exec(hint, {"hpwidgets": __import__("hpwidgets.store")})
    assert store.get_study("s") is None


def test_list_studies_best_value_respects_direction(store: Store) -> None:
    for name, direction in (("up", "maximize"), ("down", "minimize")):
        study = _study(store, name, direction)
        for number, value in enumerate([1.0, 3.0, 2.0]):
            store.finish_trial(study, _done(number, value))
        store.finish_trial(study, _done(3, 10.0, state=TrialState.PRUNED))  # never the best
        store.finish_trial(study, _done(4, -10.0, state=TrialState.FAIL, error="boom"))
        store.start_trial(study, PARAMS, "cpu")
    _study(store, "empty")
    summaries = {s.name: s for s in store.list_studies()}
    assert (summaries["up"].best_value, summaries["down"].best_value, summaries["empty"].best_value) == (3.0, 1.0, None)
    assert (summaries["up"].n_trials, summaries["up"].n_complete, summaries["empty"].n_trials) == (6, 3, 0)
    assert summaries["up"].direction == "maximize" and summaries["down"].algo == "tpe"


def test_delete_study_removes_its_rows_only(store: Store) -> None:
    doomed, kept = _study(store, "doomed"), _study(store, "kept")
    for study in (doomed, kept):
        store.finish_trial(study, _done(0, 1.0, reports=(Report(0, {"loss": 1.0}),)))
    assert store.delete_study("doomed") is True and store.delete_study("doomed") is False
    assert store.get_study("doomed") is None and len(store.load_trials(kept)) == 1
    for table, count in (("trials", 1), ("params", len(PARAMS)), ("reports", 1)):
        assert _raw(store.path, f"SELECT COUNT(*) FROM {table}") == [(count,)]


def test_ten_thousand_trials_load_with_their_params(store: Store) -> None:
    study = _study(store)
    for number in range(10_000):
        store.finish_trial(study, FrozenTrial(number, TrialState.COMPLETE, {**PARAMS, "layers": number % 4 + 1},
                                              value=float(number), reports=(Report(0, {"loss": number / 2}),)))
    trials = store.load_trials(study)
    assert [t.number for t in trials] == list(range(10_000))
    assert trials[1234].params["layers"] == 3 and trials[1234].reports[0].metrics["loss"] == 617.0


# --- concurrency ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n_stores", [1, 2])
def test_trial_numbers_are_unique_across_threads(tmp_path: Path, n_stores: int) -> None:
    stores = [Store(tmp_path / "hptune.db") for _ in range(n_stores)]  # two stores contend like two processes
    study = _study(stores[0])
    numbers: list[int] = []
    barrier = threading.Barrier(8)

    def work(k: int) -> None:
        barrier.wait()
        for _ in range(50):
            number = stores[k % n_stores].start_trial(study, PARAMS, "cpu")
            numbers.append(number)
            if number % 2:
                stores[k % n_stores].finish_trial(study, _done(number, 1.0))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == list(range(400))
    assert sum(t.state is TrialState.COMPLETE for t in stores[-1].load_trials(study)) == 200


@pytest.mark.parametrize("same_study", [True, False])
def test_two_processes_write_one_file(tmp_path: Path, same_study: bool) -> None:
    path, go = tmp_path / "hptune.db", tmp_path / "go"
    children = [_spawn(WRITER, path, "shared" if same_study else f"own-{k}", 200, go) for k in range(2)]
    for child in children:
        assert child.stdout.readline().strip() == "ready", child.communicate()[1]
    go.touch()  # both start writing at once
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    store = Store(path)
    trials = [t for s in store.list_studies() for t in store.load_trials(store.get_study(s.name).id)]
    assert len(trials) == 400 and all(t.state is TrialState.COMPLETE for t in trials)
    expected = list(range(400)) if same_study else sorted(list(range(200)) * 2)
    assert sorted(t.number for t in trials) == expected
    spans = [[t.started_at for t in trials if t.metrics["pid"] == c.pid] for c in children]
    assert all(len(span) == 200 for span in spans)
    assert max(map(min, spans)) < min(map(max, spans))  # the two writers really overlapped
    assert _raw(path, "PRAGMA integrity_check") == [("ok",)]


@posix_only
def test_sigkill_after_finish_keeps_every_trial_and_marks_the_running_one(tmp_path: Path) -> None:
    path = tmp_path / "hptune.db"
    child = _spawn(CRASHER, path, "crash", 25)
    _, err = child.communicate(timeout=120)  # also reaps it, so its pid is no longer alive
    assert child.returncode == -signal.SIGKILL, err
    store = Store(path)
    study = store.get_study("crash").id
    trials = store.load_trials(study)
    assert [t.state for t in trials] == [TrialState.RUNNING] + [TrialState.COMPLETE] * 25
    assert [t.value for t in trials[1:]] == [float(i) for i in range(25)]
    assert store.mark_interrupted(study) == 1 and store.mark_interrupted(study) == 0
    failed = store.load_trials(study)[0]
    assert failed.state is TrialState.FAIL and failed.device == "cuda:0" and failed.finished_at is not None
    assert failed.error == f"interrupted: the process running this trial ended (pid {child.pid})"
    assert _raw(path, "PRAGMA integrity_check") == [("ok",)]


@posix_only
def test_mark_interrupted_spares_live_processes_and_other_hosts(store: Store) -> None:
    study = _study(store)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid no longer answers signal 0
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        numbers = [store.start_trial(study, PARAMS, "cpu") for _ in range(4)]  # all owned by this process
        update = "UPDATE trials SET pid = ?, host = COALESCE(?, host) WHERE number = ?"
        _raw(store.path, update, dead.pid, None, numbers[1])
        _raw(store.path, update, sleeper.pid, None, numbers[2])
        _raw(store.path, update, dead.pid, "elsewhere", numbers[3])
        assert store.mark_interrupted(study) == 1
        assert [t.state for t in store.load_trials(study)] == [TrialState.RUNNING, TrialState.FAIL,
                                                              TrialState.RUNNING, TrialState.RUNNING]
    finally:
        sleeper.kill()
        sleeper.wait()


@posix_only
def test_forked_child_gets_a_fresh_lock_and_connection(store: Store) -> None:
    study = _study(store)
    store.start_trial(study, PARAMS, "cpu")
    held, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with store._lock:
            held.set()
            release.wait()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    held.wait()
    pid = os.fork()  # while another thread holds the store's lock
    if pid == 0:
        code = 1
        try:
            code = 0 if store.start_trial(study, PARAMS, "cpu") == 1 else 2
        finally:
            os._exit(code)
    release.set()
    holder.join()
    deadline = time.monotonic() + 20
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child deadlocked on its parent's lock")
    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert [t.number for t in store.load_trials(study)] == [0, 1]
