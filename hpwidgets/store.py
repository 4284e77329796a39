"""SQLite persistence for studies and trials: one file, shared by threads and by processes.

* WAL journal: readers never block the writer, so a dashboard can poll while trials finish.
* ``synchronous=NORMAL``: in WAL mode a commit is in the -wal file (the OS page cache) when COMMIT
  returns, so it survives the process being killed (SIGKILL, OOM killer, a restarted kernel); only
  an OS crash or power loss can drop the last commits, never corrupting the file. FULL would pay an
  fsync per commit for that rarer case.
* Every write is one short ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front, so
  ``MAX(number) + 1`` is atomic across processes and waiting writers are retried by the busy timeout.
* One connection per Store behind a lock; other processes are kept in order by SQLite's file locks.
* A file that is not ours (corrupted, or another application's database) is inspected before anything
  is written to it and refused, left byte-for-byte untouched. A new file is built beside its path and
  hard-linked into place, so nobody ever sees it without its tables.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._store_file import (
    APPLICATION,
    SCHEMA_VERSION,
    TABLES,
    StorageError,
    check_location,
    create_new,
    create_schema,
    read_meta,
)
from ._store_rows import build_trials, check_study_args, encode_params, rows_no_process_runs
from .space import Dimension, SearchSpace
from .trial import FrozenTrial, TrialState

__all__ = ["StorageError", "Store", "StudyRecord", "StudySummary"]

BUSY_TIMEOUT_S = 30.0  # another notebook may hold the write lock while it commits a batch

_STUDY_COLUMNS = "id, name, direction, target, algo, space_json, created_at"
_UPSERT_TRIAL = """
    INSERT INTO trials (study_id, number, state, value, metrics_json, error, started_at, finished_at, device, host, pid)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (study_id, number) DO UPDATE SET
        state = excluded.state, value = excluded.value, metrics_json = excluded.metrics_json,
        error = excluded.error, started_at = COALESCE(excluded.started_at, trials.started_at),
        finished_at = excluded.finished_at, device = excluded.device"""
_SUMMARIES = """
    SELECT s.name, s.direction, s.target, s.algo, s.created_at, COUNT(t.id),
           COALESCE(SUM(t.state = 'COMPLETE'), 0),
           MIN(CASE WHEN t.state = 'COMPLETE' THEN t.value END),
           MAX(CASE WHEN t.state = 'COMPLETE' THEN t.value END)
    FROM studies AS s LEFT JOIN trials AS t ON t.study_id = s.id
    GROUP BY s.id ORDER BY s.created_at, s.id"""


@dataclass(frozen=True)
class StudyRecord:
    id: int
    name: str
    direction: str
    target: str | None
    algo: str
    space: SearchSpace
    created_at: float


@dataclass(frozen=True)
class StudySummary:
    name: str
    direction: str
    target: str | None
    algo: str
    n_trials: int
    n_complete: int
    best_value: float | None
    created_at: float


# Stores open in this process; a forked child must not reuse its parent's SQLite handles.
_OPEN_STORES: weakref.WeakSet[Store] = weakref.WeakSet()
_INHERITED: list[sqlite3.Connection] = []  # kept open: SQLite forbids using, even closing, them after fork()


def _after_fork_in_child() -> None:
    for store in list(_OPEN_STORES):
        store._forget_connection()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Store:
    """Studies and their trials in one SQLite file; see the module docstring for the guarantees."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))  # notebooks may chdir later
        check_location(self.path)
        create_new(self.path)
        self._real_path = os.path.realpath(self.path)  # two Stores of one file in a process, however spelled
        self._lock = threading.RLock()
        self._closed = False
        self._started: set[tuple[int, int]] = set()  # (study id, number): trials started here, not yet finished
        self._conn: sqlite3.Connection | None = self._connect(inspect_first=True)
        try:
            self._initialise()
        except BaseException:
            self.close()
            raise
        _OPEN_STORES.add(self)

    # --- connection and transactions ------------------------------------------------------------
    def _connect(self, *, inspect_first: bool = False) -> sqlite3.Connection:
        conn = None
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)  # shared by threads, guarded by self._lock
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if inspect_first:
                self._inspect(conn)  # before the WAL switch, which would rewrite a foreign file's header
            conn.execute("PRAGMA journal_mode = WAL")  # no-op when the file is already in WAL mode
            conn.execute("PRAGMA synchronous = NORMAL")  # see the module docstring
            conn.execute("PRAGMA foreign_keys = ON")
            return conn
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._failed("open the store", exc) from exc
            raise

    def _inspect(self, conn: sqlite3.Connection) -> bool:
        """True for an empty database (ours to fill); raises for a corrupted, foreign or newer one."""
        try:
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        except sqlite3.OperationalError as exc:  # locked, disk full, I/O error: not a verdict on the file
            raise StorageError(f"could not read {self.path}: {exc}; it was left untouched "
                               "(is its disk full, or another program holding it?)") from exc
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path} is not a readable SQLite database ({exc}); it may be corrupted. "
                               "It was left untouched: pass a different path") from exc
        names = {n for n in names if not n.startswith("sqlite_")}
        if not names:
            return True
        meta = read_meta(conn) if "meta" in names else {}
        if meta.get("application") != APPLICATION:
            raise StorageError(f"{self.path} is an SQLite database but not an hpwidgets store (it holds "
                               f"{', '.join(sorted(names))}); it was left untouched: pass a different path")
        version = int(meta.get("schema_version", "0"))
        if version > SCHEMA_VERSION:
            raise StorageError(f"{self.path} was written by a newer hpwidgets (store schema {version}); this "
                               f"version reads schema {SCHEMA_VERSION}: upgrade hpwidgets to open it")
        missing = sorted(TABLES - names)
        if missing:
            raise StorageError(f"{self.path} is an hpwidgets store with missing tables {missing}; it is damaged")
        return False

    def _initialise(self) -> None:
        # BEGIN IMMEDIATE is also the write probe: a read-only database fails here, at construction.
        with self._transaction("initialise the store", write=True) as conn:
            if self._inspect(conn):  # an empty file, or a file system without hard links (see create_new)
                create_schema(conn)

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StorageError(f"the store {self.path} is closed")
        if self._conn is None:  # first use after a fork
            self._conn = self._connect()
        return self._conn

    def _forget_connection(self) -> None:
        """Called in a forked child: the parent's lock may be held by a thread that no longer exists."""
        self._lock = threading.RLock()
        self._started = set()  # the parent's trials: this process runs none of them
        if self._conn is not None:
            _INHERITED.append(self._conn)
            self._conn = None

    @contextlib.contextmanager
    def _transaction(self, action: str, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction; reads use one too, so several queries see a single snapshot."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._failed(action, exc) from exc
                raise

    def _failed(self, action: str, exc: sqlite3.Error) -> StorageError:
        return StorageError(f"could not {action} in {self.path}: {exc}")

    def _require_study(self, conn: sqlite3.Connection, study_id: int) -> None:
        if conn.execute("SELECT 1 FROM studies WHERE id = ?", (study_id,)).fetchone() is None:
            raise StorageError(f"there is no study with id {study_id!r} in {self.path} (was it deleted?)")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()  # the last connection checkpoints the WAL into the main file
            self._conn, self._closed = None, True
        _OPEN_STORES.discard(self)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # --- studies ---------------------------------------------------------------------------------
    def open_study(self, name: str, *, direction: str, space: SearchSpace | Mapping[str, Dimension],
                   target: str | None = None, algo: str = "tpe") -> StudyRecord:
        """Create the study, or return the stored one (its stored space and algo win; see update_study)."""
        check_study_args(name, direction, target, algo)
        space = SearchSpace.coerce(space)
        with self._transaction(f"open study {name!r}", write=True) as conn:
            row = conn.execute(f"SELECT {_STUDY_COLUMNS} FROM studies WHERE name = ?", (name,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO studies (name, direction, target, algo, space_json, created_at, "
                             "schema_version) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (name, direction, target, algo, space.to_json(), time.time(), SCHEMA_VERSION))
                row = conn.execute(f"SELECT {_STUDY_COLUMNS} FROM studies WHERE name = ?", (name,)).fetchone()
        record = _study_record(row)
        if (record.direction, record.target) != (direction, target):
            raise StorageError(
                f"study {name!r} in {self.path} was created with direction={record.direction!r}, "
                f"target={record.target!r}, but is now opened with direction={direction!r}, target={target!r}; "
                f"use another study name, or first delete it with all its trials: "
                f"hpwidgets.store.Store({str(self.path)!r}).delete_study({name!r})")
        return record

    def get_study(self, name: str) -> StudyRecord | None:
        with self._transaction(f"read study {name!r}", write=False) as conn:
            row = conn.execute(f"SELECT {_STUDY_COLUMNS} FROM studies WHERE name = ?", (name,)).fetchone()
        return None if row is None else _study_record(row)

    def list_studies(self) -> list[StudySummary]:
        with self._transaction("list studies", write=False) as conn:
            rows = conn.execute(_SUMMARIES).fetchall()
        return [StudySummary(name, direction, target, algo, n_trials, n_complete,
                             best_max if direction == "maximize" else best_min, created_at)
                for name, direction, target, algo, created_at, n_trials, n_complete, best_min, best_max in rows]

    def update_study(self, study_id: int, *, space: SearchSpace | Mapping[str, Dimension] | None = None,
                     algo: str | None = None) -> None:
        """Record what the study runs now: its edited or changed space, its swapped algorithm."""
        changes: dict[str, str] = {}
        if space is not None:
            changes["space_json"] = SearchSpace.coerce(space).to_json()
        if algo is not None:
            if not isinstance(algo, str):
                raise TypeError(f"algo must be a string, but got algo={algo!r}")
            changes["algo"] = algo
        if not changes:
            return
        assignments = ", ".join(f"{column} = ?" for column in changes)  # column names are ours, not input
        with self._transaction("update the study", write=True) as conn:
            self._require_study(conn, study_id)
            conn.execute(f"UPDATE studies SET {assignments} WHERE id = ?", (*changes.values(), study_id))

    def delete_study(self, name: str) -> bool:
        """Delete a study and all its trials; False when there was no such study."""
        with self._transaction(f"delete study {name!r}", write=True) as conn:
            row = conn.execute("SELECT id FROM studies WHERE name = ?", (name,)).fetchone()
            if row is None:
                return False
            trial_ids = "SELECT id FROM trials WHERE study_id = ?"
            conn.execute(f"DELETE FROM reports WHERE trial_id IN ({trial_ids})", row)
            conn.execute(f"DELETE FROM params WHERE trial_id IN ({trial_ids})", row)
            conn.execute("DELETE FROM trials WHERE study_id = ?", row)
            conn.execute("DELETE FROM studies WHERE id = ?", row)
        return True

    # --- trials ----------------------------------------------------------------------------------
    def start_trial(self, study_id: int, params: Mapping[str, Any], device: str = "cpu",
                    limit: int | None = None) -> int | None:
        """Insert a RUNNING row and return its number: the study's next free one, across processes.

        With ``limit``, None instead once the study holds that many rows: the check and the insert
        share one write transaction, so processes sharing a study never exceed its total together.
        """
        encoded = encode_params(params)
        number: int | None = None
        try:
            with self._transaction("start a trial", write=True) as conn:
                self._require_study(conn, study_id)
                (number,) = conn.execute("SELECT COALESCE(MAX(number) + 1, 0) FROM trials WHERE study_id = ?",
                                         (study_id,)).fetchone()
                # Numbers are unique and >= 0, so rows <= number: count them (a scan) only near the limit.
                if limit is not None and number >= limit and self._count_trials(conn, study_id) >= limit:
                    return None
                cursor = conn.execute(
                    "INSERT INTO trials (study_id, number, state, metrics_json, started_at, device, host, pid) "
                    "VALUES (?, ?, 'RUNNING', '{}', ?, ?, ?, ?)",
                    (study_id, number, time.time(), str(device), socket.gethostname(), os.getpid()))
                conn.executemany("INSERT INTO params (trial_id, name, value_json) VALUES (?, ?, ?)",
                                 [(cursor.lastrowid, name, value) for name, value in encoded])
                # Before COMMIT: another Store of this process sees the row only once it is marked ours.
                self._started.add((study_id, number))
        except BaseException as error:
            if number is not None and self._has_row(study_id, number):  # a Ctrl-C after the COMMIT
                error.trial_number = number  # type: ignore[attr-defined]  # the caller books the row
            elif number is not None:  # not committed: no row to own
                self._started.discard((study_id, number))
            raise
        return number

    def _has_row(self, study_id: int, number: int) -> bool:
        try:
            with self._transaction("look up a trial", write=False) as conn:  # ours: another process may
                return conn.execute("SELECT 1 FROM trials WHERE study_id = ? AND number = ? AND state = 'RUNNING' "
                                    "AND host = ? AND pid = ?",  # have taken the number since our ROLLBACK
                                    (study_id, number, socket.gethostname(), os.getpid())).fetchone() is not None
        except Exception:  # the store itself failed: the row cannot have been committed either
            return False

    @staticmethod
    def _count_trials(conn: sqlite3.Connection, study_id: int) -> int:
        return conn.execute("SELECT COUNT(*) FROM trials WHERE study_id = ?", (study_id,)).fetchone()[0]

    def finish_trial(self, study_id: int, trial: FrozenTrial) -> None:
        """Record a finished trial in one transaction, committed on return; start_trial is optional."""
        state = TrialState(trial.state)
        if not state.finished:
            raise ValueError(f"finish_trial needs a COMPLETE, PRUNED or FAIL trial, but trial {trial.number} "
                             f"is {state.value}")
        params = encode_params(trial.params)
        metrics = json.dumps({name: float(v) for name, v in trial.metrics.items()})
        reports = [(seq, int(report.step), name, float(value))
                   for seq, report in enumerate(trial.reports) for name, value in report.metrics.items()]
        value = None if trial.value is None else float(trial.value)
        row = (study_id, int(trial.number), state.value, value, metrics, trial.error, trial.started_at,
               trial.finished_at, str(trial.device), socket.gethostname(), os.getpid())
        try:
            with self._transaction(f"save trial {trial.number}", write=True) as conn:
                self._require_study(conn, study_id)
                conn.execute(_UPSERT_TRIAL, row)
                (trial_id,) = conn.execute("SELECT id FROM trials WHERE study_id = ? AND number = ?",
                                           (study_id, int(trial.number))).fetchone()
                conn.execute("DELETE FROM params WHERE trial_id = ?", (trial_id,))
                conn.execute("DELETE FROM reports WHERE trial_id = ?", (trial_id,))
                conn.executemany("INSERT INTO params (trial_id, name, value_json) VALUES (?, ?, ?)",
                                 [(trial_id, name, encoded) for name, encoded in params])
                conn.executemany("INSERT INTO reports (trial_id, seq, step, name, value) VALUES (?, ?, ?, ?, ?)",
                                 [(trial_id, *report) for report in reports])
        finally:  # saved or not, nothing here runs it any more: mark_interrupted may fail a row left RUNNING
            for store in self._same_file():
                store._started.discard((study_id, int(trial.number)))

    def load_trials(self, study_id: int) -> list[FrozenTrial]:
        """Every trial of the study, RUNNING ones included, ordered by number: one query per table."""
        of_study = "JOIN trials AS t ON t.id = x.trial_id WHERE t.study_id = ?"
        with self._transaction("load trials", write=False) as conn:
            self._require_study(conn, study_id)
            trials = conn.execute("SELECT id, number, state, value, metrics_json, error, started_at, finished_at, "
                                  "device FROM trials WHERE study_id = ? ORDER BY number", (study_id,)).fetchall()
            params = conn.execute(f"SELECT x.trial_id, x.name, x.value_json FROM params AS x {of_study} "
                                  "ORDER BY x.rowid", (study_id,)).fetchall()
            reports = conn.execute(f"SELECT x.trial_id, x.seq, x.step, x.name, x.value FROM reports AS x {of_study} "
                                   "ORDER BY x.trial_id, x.seq, x.rowid", (study_id,)).fetchall()
        return build_trials(trials, params, reports)

    def mark_interrupted(self, study_id: int) -> int:
        """Fail this host's RUNNING rows that no process runs: their process has ended (a killed
        kernel leaves them behind), or it is this one and no Store here started the trial and has it
        still to finish (its final write failed, or the pid is an old one's, reused)."""
        with self._transaction("mark interrupted trials", write=True) as conn:
            self._require_study(conn, study_id)
            rows = conn.execute("SELECT id, number, pid FROM trials WHERE study_id = ? AND state = 'RUNNING' "
                                "AND host = ? AND pid IS NOT NULL", (study_id, socket.gethostname())).fetchall()
            ours = self._running_here(study_id)  # read under the write lock: start_trial marks before COMMIT
            failed = rows_no_process_runs(rows, ours)
            now = time.time()
            conn.executemany("UPDATE trials SET state = 'FAIL', finished_at = ?, error = ? WHERE id = ?",
                             [(now, error, trial_id) for trial_id, error in failed])
        return len(failed)

    def _running_here(self, study_id: int) -> set[int]:
        """The study's trials that a Store of this process on this file started and has not finished."""
        return {number for store in self._same_file() for sid, number in list(store._started) if sid == study_id}

    def _same_file(self) -> set[Store]:
        return {self, *(store for store in list(_OPEN_STORES) if store._real_path == self._real_path)}


# --- helpers ---------------------------------------------------------------------------------------
def _study_record(row: tuple[Any, ...]) -> StudyRecord:
    study_id, name, direction, target, algo, space_json, created_at = row
    return StudyRecord(study_id, name, direction, target, algo, SearchSpace.from_json(space_json), created_at)
