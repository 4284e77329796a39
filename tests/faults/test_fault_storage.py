"""Scenario 9 and bad storage files: a read-only location, a full disk, a corrupted or foreign SQLite file.

Read-only: the tests run as root, which ignores permission bits, so the attempt runs in a forked
child that drops to ``nobody``. Disk full: a child process whose RLIMIT_FSIZE makes writes past
a size fail with EFBIG (SIGXFSZ ignored), which SQLite reports as a failed write.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from faultkit import child_env, integrity, rows
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import hpwidgets as hw
from hpwidgets.store import StorageError

SPACE = {"x": hw.uniform(0, 1)}
NOBODY = 65534
posix_root = pytest.mark.skipif(not hasattr(os, "fork") or os.geteuid() != 0, reason="needs fork and root")


# --- read-only locations ----------------------------------------------------------------------------
def as_nobody(action: Callable[[], object], timeout: float = 30) -> str:
    """Run ``action`` in a forked child that has dropped root; "ok" or "Type: message"."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            action()
            message = "ok"
        except BaseException as error:  # the failure is the answer
            message = f"{type(error).__name__}: {error}"
        finally:
            os.write(write_end, message.encode()[:60000])
            os._exit(0)
    os.close(write_end)
    previous = signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))  # a stuck child must not hang us
    signal.alarm(int(timeout))
    try:
        with os.fdopen(read_end, "rb") as pipe:
            message = pipe.read().decode()
        os.waitpid(pid, 0)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert message, "the child died without answering (killed after the timeout?)"
    return message


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory ``nobody`` can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="hpwidgets-faults-"))
    path.chmod(0o755)  # readable, not writable, by nobody
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


def no_trial_may_run(params: dict) -> float:
    raise AssertionError("a trial ran although the store could not be written")


@posix_root
def test_a_read_only_directory_is_refused_before_any_trial(shared_dir: Path) -> None:
    db = shared_dir / "hptune.db"
    message = as_nobody(lambda: hw.tune(no_trial_may_run, SPACE, algo="random", trials=3, storage=db,
                                        progress=False))
    assert message.startswith("StorageError") and "not writable (Permission denied)" in message, message
    assert list(shared_dir.iterdir()) == []  # nothing created behind the user's back


@posix_root
def test_a_read_only_store_file_is_refused_and_left_untouched(shared_dir: Path) -> None:
    db = shared_dir / "hptune.db"
    hw.tune(lambda p: p["x"], SPACE, algo="random", trials=2, name="ro", storage=db, progress=False)
    before = db.read_bytes()
    message = as_nobody(lambda: hw.tune(no_trial_may_run, SPACE, algo="random", trials=4, name="ro", storage=db,
                                        progress=False))
    assert message.startswith("StorageError") and "Permission denied" in message and str(db) in message, message
    assert db.read_bytes() == before and [row[:2] for row in rows(db)] == [(0, "COMPLETE"), (1, "COMPLETE")]


@posix_root
def test_hptune_on_a_read_only_directory_is_a_usage_error(shell: InteractiveShell, shared_dir: Path) -> None:
    line = f"--algo random --trials 2 --storage {shared_dir / 'hptune.db'}"
    message = as_nobody(lambda: shell.run_cell_magic("hptune", line, "x = hp.uniform(0, 1)\nx\n"))
    assert message.startswith("UsageError") and "not writable" in message, message


# --- a full disk --------------------------------------------------------------------------------------
CHILD = textwrap.dedent("""
    import json, sys
    import hpwidgets as hw

    db, trials, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    calls, raised, study = [], None, None

    def objective(params, trial):
        calls.append(trial.number)
        for step in range(steps):  # reports make a finished trial's transaction bigger than a start
            trial.report(step, loss=params["x"] + step)
        return params["x"]

    try:
        study = hw.Study("full", {"x": hw.uniform(0, 1)}, algo="random", seed=0, storage=db)
        study.optimize(objective, trials=trials, progress=False)
    except Exception as error:
        raised = f"{type(error).__name__}: {error}"
    trials = [] if study is None else [[t.number, t.state.value, t.value, t.error] for t in study.trials]
    reason = None if study is None else study.finish_reason
    print(json.dumps({"raised": raised, "reason": reason, "calls": calls, "trials": trials}))
""")


def run_with_file_limit(db: Path, limit: int, trials: int, steps: int) -> dict:
    """Run CHILD with writes past ``limit`` bytes failing (EFBIG) instead of killing it (SIGXFSZ)."""
    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**child_env(), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(db), str(trials), str(steps)], capture_output=True,
                          text=True, timeout=120, env=env, preexec_fn=limit_files, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_full_disk_mid_search_stops_it_with_the_trials_so_far_saved(tmp_path: Path) -> None:
    db = tmp_path / "full.db"
    out = run_with_file_limit(db, limit=400_000, trials=500, steps=20)
    saved = [t for t in out["trials"] if "not saved" not in (t[3] or "")]
    assert 3 <= len(saved) < 500 and len(out["trials"]) - len(saved) <= 1
    assert integrity(db) == "ok"
    on_disk = {n: (state, value, error) for n, state, value, error in rows(db)}
    assert all(on_disk[n] == (state, value, error) for n, state, value, error in saved)  # every one, identical
    assert sum(state == "RUNNING" for state, _, _ in on_disk.values()) <= 1
    assert out["raised"] and out["raised"].startswith("StorageError") and "I/O" in out["raised"], out["raised"]
    assert out["reason"] == "storage error", f"finish_reason {out['reason']!r} hides the failed write"
    resumed = hw.tune(lambda p: p["x"], SPACE, algo="random", trials=len(on_disk) + 3, name="full", storage=db,
                      progress=False)
    assert [t.number for t in resumed.trials] == list(range(len(on_disk) + 3))
    assert all(state != "RUNNING" for _, state, _, _ in rows(db))


def test_a_disk_full_when_the_store_opens_is_a_clear_error_before_any_trial(tmp_path: Path) -> None:
    db = tmp_path / "full.db"
    hw.Study("full", SPACE, algo="random", seed=0, storage=db).store.close()
    before = db.read_bytes()
    out = run_with_file_limit(db, limit=1024, trials=5, steps=0)  # not even room for SQLite's -shm file
    assert out["calls"] == [] and out["trials"] == []
    raised = out["raised"] or ""
    assert raised.startswith("StorageError") and str(db) in raised and "I/O" in raised, raised
    assert "corrupted" not in raised, f"a full disk is reported as a corrupted file: {raised}"
    assert db.read_bytes() == before and integrity(db) == "ok"


# --- corrupted or foreign files -------------------------------------------------------------------
def foreign(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices (total) VALUES (9.5)")
    conn.close()


def corrupted(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))


def garbage(path: Path) -> None:
    path.write_bytes(os.urandom(4096))


BAD_FILES = {"foreign": (foreign, "not an hpwidgets store"), "corrupted": (corrupted, "corrupted"),
             "garbage": (garbage, "not a readable SQLite database")}


def snapshot(path: Path) -> tuple[bytes, int, list[str]]:
    return path.read_bytes(), path.stat().st_mtime_ns, sorted(p.name for p in path.parent.iterdir())


@pytest.mark.parametrize("kind", BAD_FILES)
def test_tune_refuses_a_bad_file_and_leaves_it_untouched(tmp_path: Path, kind: str) -> None:
    make, message = BAD_FILES[kind]
    path = tmp_path / "hptune.db"
    make(path)
    before = snapshot(path)
    with pytest.raises(StorageError, match=message) as raised:
        hw.tune(no_trial_may_run, SPACE, algo="random", trials=2, storage=path, progress=False)
    assert str(path) in str(raised.value) and "pass a different path" in str(raised.value)
    assert snapshot(path) == before  # same bytes, same mtime, no -wal or -shm beside it


@pytest.mark.parametrize("kind", BAD_FILES)
def test_hptune_refuses_a_bad_file_with_a_usage_error(shell: InteractiveShell, tmp_path: Path, kind: str) -> None:
    make, message = BAD_FILES[kind]
    path = tmp_path / "hptune.db"
    make(path)
    before = snapshot(path)
    for run in (lambda: shell.run_cell_magic("hptune", f"--trials 2 --storage {path}", "x = hp.uniform(0, 1)\nx\n"),
                lambda: shell.run_line_magic("hptune", f"list --storage {path}"),
                lambda: shell.run_line_magic("hptune", f"show nb --storage {path}")):
        with pytest.raises(UsageError, match=message):
            run()
    assert snapshot(path) == before
