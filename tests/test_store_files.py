"""Store tests for unusable paths and files: refused at construction, with a clear message, untouched."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hpwidgets.store import StorageError, Store

posix_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork, signals and POSIX permissions")


def test_parent_that_is_a_file_is_refused_at_construction(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    for path, reason in ((blocker / "hptune.db", f"{blocker} is not a directory"),
                         (blocker / "sub" / "hptune.db", f"{blocker / 'sub'}: Not a directory")):
        with pytest.raises(StorageError) as info:
            Store(path)
        assert str(path) in str(info.value) and reason in str(info.value)
    assert blocker.read_text() == "x"


def test_missing_parent_and_directory_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        Store(tmp_path / "missing" / "hptune.db")
    assert not (tmp_path / "missing").exists()  # not created behind the user's back
    with pytest.raises(StorageError, match="is a directory"):
        Store(tmp_path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc refuses new files on Linux")
def test_unwritable_pseudo_filesystem_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="/proc is not writable"):
        Store("/proc/hptune.db")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory an unprivileged user can reach (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="hpwidgets-store-"))
    path.chmod(0o777)
    yield path
    path.chmod(0o755)
    shutil.rmtree(path)


def _as_unprivileged(action: Callable[[], object]) -> str:
    """Run ``action`` in a forked child that cannot bypass permissions (root drops to nobody)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            if os.geteuid() == 0:  # root ignores permission bits: become nobody
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            try:
                action()
                message = "ok"
            except BaseException as exc:  # any failure is the answer, reported to the parent
                message = f"{type(exc).__name__}: {exc}"
            os.write(write_end, message.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    return message


@posix_only
def test_read_only_file_is_refused_at_construction(shared_dir: Path) -> None:
    path = shared_dir / "hptune.db"
    Store(path).close()
    path.chmod(0o444)
    before = path.read_bytes()
    message = _as_unprivileged(lambda: Store(path))
    assert message.startswith("StorageError") and "Permission denied" in message and str(path) in message
    assert path.read_bytes() == before


@posix_only
def test_read_only_directory_is_refused_at_construction(shared_dir: Path) -> None:
    shared_dir.chmod(0o555)
    message = _as_unprivileged(lambda: Store(shared_dir / "hptune.db"))
    assert message.startswith("StorageError") and "not writable (Permission denied)" in message
    assert list(shared_dir.iterdir()) == []


@pytest.mark.parametrize("header", [b"", b"SQLite format 3\x00\x10\x00\x01\x01"], ids=["random", "bad-pages"])
def test_corrupted_file_is_refused_and_left_untouched(tmp_path: Path, header: bytes) -> None:
    path = tmp_path / "hptune.db"
    content = header + random.Random(0).randbytes(8192 - len(header))
    path.write_bytes(content)
    with pytest.raises(StorageError, match="not a readable SQLite database") as info:
        Store(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == content and sorted(p.name for p in tmp_path.iterdir()) == ["hptune.db"]


@pytest.mark.parametrize("setup", ["CREATE TABLE foo (x)", "CREATE TABLE meta (key, value); "
                                   "INSERT INTO meta VALUES ('application', 'other')", "CREATE TABLE meta (id)"])
def test_foreign_database_is_refused_and_left_untouched(tmp_path: Path, setup: str) -> None:
    path = tmp_path / "hptune.db"
    conn = sqlite3.connect(path)
    conn.executescript(setup)
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StorageError, match="not an hpwidgets store") as info:
        Store(path)
    assert str(path) in str(info.value) and ("foo" in str(info.value) or "meta" in str(info.value))
    assert path.read_bytes() == before


def test_newer_schema_is_refused_and_empty_file_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "hptune.db"
    path.touch()  # an empty file is an empty database: ours to fill
    Store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(StorageError, match="newer hpwidgets"):
        Store(path)
    other = Store(tmp_path / "other.db")  # built beside its path, then linked into place
    assert other.path == tmp_path / "other.db" and other.list_studies() == []
    other.close()
    sqlite3.connect(tmp_path / "plain.db").close()
    assert (tmp_path / "other.db").stat().st_mode == (tmp_path / "plain.db").stat().st_mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hptune.db", "other.db", "plain.db"]


def test_opening_the_file_again_in_this_process_keeps_its_locks_for_other_processes(tmp_path: Path) -> None:
    """A second Store on the file (a re-run cell) must not drop the first one's SQLite locks: another
    process, believing itself the last user, would then delete the -wal file under this one."""
    import hpwidgets as hw
    db = tmp_path / "h.db"
    first = hw.Study("a", space={"x": hw.uniform(0, 1)}, algo="random", seed=0, storage=db)
    first.optimize(lambda p: p["x"], trials=3, progress=False)
    again = hw.Study("a", storage=db)  # the same process opens it once more
    child = ("import sys, hpwidgets as hw; s = hw.Study('a', storage=sys.argv[1]);"
             "s.optimize(lambda p: p['x'], trials=6, progress=False)")
    subprocess.run([sys.executable, "-c", child, str(db)], check=True, timeout=120)
    again.optimize(lambda p: p["x"], trials=9, progress=False)  # was: "database disk image is malformed"
    assert len(hw.load_study("a", db).trials) == 9
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
