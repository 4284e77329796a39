"""Shared by the magic's test modules: a fresh InteractiveShell with the extension, and cells to run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

import hpwidgets as hw
from hpwidgets.magic import load_ipython_extension, unload_ipython_extension

QUICK = "--algo random --seed 0 --trials 4"
CELL = "x = hp.uniform(0, 1)\nm = 0.1  # @hp uniform(0.01, 0.99)\nacc = 1 - (x - 0.3) ** 2 + m\nacc\n"
SLOW_CELL = "x = hp.uniform(0, 1)\nimport time\ntime.sleep(0.05)\nx\n"


@pytest.fixture
def ip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)  # the default storage, hptune.db, lands in the test's own folder
    shell = InteractiveShell.instance()
    shell.reset(new_session=False)
    shell.user_ns.setdefault("__spec__", None)  # reset() drops it; Dask's nanny (spawn) reads __main__.__spec__
    load_ipython_extension(shell)
    yield shell
    for value in list(shell.user_ns.values()):
        if isinstance(value, hw.Study) and value.running:
            value.stop()
            value.wait()
    unload_ipython_extension(shell)


def tune(ip: InteractiveShell, line: str, cell: str = CELL) -> hw.Study:
    ip.run_cell_magic("hptune", f"{line} -o st", cell)
    return ip.user_ns["st"]


def run_in_thread(ip: InteractiveShell, code: str, variable: str,
                  cell_id: str | None = None) -> tuple[threading.Thread, hw.Study]:
    """A cell (a blocking %%hptune in terminal IPython, storing its study in ``variable``) run on
    another thread, as a frontend's cell ``cell_id``; returns once the study has finished a trial."""
    thread = threading.Thread(target=ip.run_cell, args=(code,), kwargs={"cell_id": cell_id}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not (variable in ip.user_ns and len(ip.user_ns[variable].trials) >= 1):
        assert time.monotonic() < deadline, "the study never finished a trial"
        time.sleep(0.01)
    ip.execution_count += 1  # the next cell is a later run, as in a kernel, where this cell has returned
    return thread, ip.user_ns[variable]


def start_in_thread(ip: InteractiveShell, line: str, cell: str) -> tuple[threading.Thread, hw.Study]:
    """A blocking ``%%hptune LINE`` on another thread (its study in ``slow``), so this one can stop it."""
    return run_in_thread(ip, f"%%hptune {line} -o slow\n{cell}", "slow")
