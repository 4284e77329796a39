"""The store's file: where it may live, how a new one is built, and how ours is recognised.

``store.Store`` uses these before it writes anything; they never change a byte of a file
that is not a store of ours.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import stat
import tempfile
import threading
from pathlib import Path

APPLICATION = "hpwidgets"
SCHEMA_VERSION = 1

SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE studies (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
        direction TEXT NOT NULL CHECK (direction IN ('minimize', 'maximize')), target TEXT, algo TEXT NOT NULL,
        space_json TEXT NOT NULL, created_at REAL NOT NULL, schema_version INTEGER NOT NULL)""",
    """CREATE TABLE trials (id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL REFERENCES studies (id),
        number INTEGER NOT NULL, state TEXT NOT NULL CHECK (state IN ('RUNNING', 'COMPLETE', 'PRUNED', 'FAIL')),
        value REAL, metrics_json TEXT NOT NULL, error TEXT, started_at REAL, finished_at REAL,
        device TEXT NOT NULL, host TEXT, pid INTEGER, UNIQUE (study_id, number))""",
    """CREATE TABLE params (trial_id INTEGER NOT NULL REFERENCES trials (id), name TEXT NOT NULL,
        value_json TEXT NOT NULL, PRIMARY KEY (trial_id, name))""",
    # seq numbers the Report within its trial: steps may repeat, so they cannot order the curve.
    """CREATE TABLE reports (trial_id INTEGER NOT NULL REFERENCES trials (id), seq INTEGER NOT NULL,
        step INTEGER NOT NULL, name TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (trial_id, seq, name))""",
)
TABLES = frozenset({"meta", "studies", "trials", "params", "reports"})


class StorageError(ValueError):
    """The store cannot be used: unwritable, corrupted, foreign, closed, or a conflicting study."""


def check_location(path: Path) -> None:
    """Refuse an unusable path now, with the OS reason, rather than at the first finished trial."""
    if path.is_dir():
        raise StorageError(f"cannot use {path} as a store: it is a directory, not a file")
    parent = path.parent
    try:
        mode = os.stat(parent).st_mode
    except FileNotFoundError:
        raise StorageError(f"cannot create a store at {path}: the directory {parent} does not exist "
                           "(create it first)") from None
    except OSError as exc:
        raise StorageError(f"cannot create a store at {path}: {parent}: {exc.strerror}") from None
    if not stat.S_ISDIR(mode):
        raise StorageError(f"cannot create a store at {path}: {parent} is not a directory")
    try:  # a real write probe: permission bits lie (root, ACLs, read-only mounts)
        fd, probe = tempfile.mkstemp(prefix=".hpwidgets-probe-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise StorageError(f"cannot write a store at {path}: the directory {parent} is not writable "
                           f"({exc.strerror}); SQLite also needs it for the -wal and -shm files") from None
    # Asked, never opened: closing any descriptor of the file drops every POSIX lock this process
    # holds on it, its open SQLite connections' included, and another process would then delete
    # the -wal file under them ("database disk image is malformed").
    effective = os.access in os.supports_effective_ids
    if path.exists() and not os.access(path, os.R_OK | os.W_OK, effective_ids=effective):
        raise StorageError(f"cannot write the store {path}: {os.strerror(errno.EACCES)}")


def create_schema(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        conn.execute(statement)
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                     [("application", APPLICATION), ("schema_version", str(SCHEMA_VERSION))])


def create_new(path: Path) -> None:
    """Build a new store beside ``path`` and hard-link it into place, so that no reader (another
    notebook, a dashboard polling the file) ever sees the file without its tables."""
    if path.exists():
        return
    draft = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.new")  # SQLite's file mode
    try:
        conn = sqlite3.connect(draft, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")  # recorded in the header, so the linked file is WAL too
            conn.execute("BEGIN IMMEDIATE")
            create_schema(conn)
            conn.execute("COMMIT")
        finally:
            conn.close()  # the last connection folds the -wal file into the draft and deletes it
        os.link(draft, path)
    except FileExistsError:
        pass  # another process created it first: use theirs
    except (OSError, sqlite3.Error):
        pass  # e.g. no hard links on this file system: Store._initialise creates the tables in place
    finally:
        with contextlib.suppress(OSError):
            draft.unlink()


def read_meta(conn: sqlite3.Connection) -> dict[str, str]:
    try:
        return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}
    except sqlite3.Error:  # someone else's table called meta
        return {}
