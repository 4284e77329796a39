"""Shared by the tests of ``clean``: files that refuse to go, and a study busy with a trial."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import hpwidgets as hw


def refuse_to_unlink(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Files called ``name`` cannot be deleted, as another user's files cannot (root ignores permission bits)."""
    unlink = os.unlink

    def refusing(path: Any, *args: Any, **kwargs: Any) -> None:
        if os.path.basename(path) == name:
            raise PermissionError(errno.EACCES, "Permission denied", os.path.basename(path))
        unlink(path, *args, **kwargs)
    monkeypatch.setattr(os, "unlink", refusing)


@contextmanager
def one_trial_running(db: Path, name: str, space: Mapping[str, hw.Dimension]) -> Iterator[hw.Study]:
    """A background study whose one trial runs until the block ends (it is stored RUNNING meanwhile)."""
    release = threading.Event()
    busy = hw.Study(name, space=space, algo="random", seed=0, storage=db)
    busy.optimize(lambda p: release.wait(5) and 0.0, trials=1, background=True, progress=False)
    try:
        deadline = time.monotonic() + 5
        while not busy.running_trials:
            assert time.monotonic() < deadline, "the trial never started"
            time.sleep(0.01)
        yield busy
    finally:
        release.set()
        busy.wait()
