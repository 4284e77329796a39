"""Shared by the fault scenarios: read the store behind hpwidgets' back, wait for conditions, run kernels.

The checks read SQLite directly (not through ``hpwidgets.store``), so a bug in the store cannot
hide itself: what is asserted is what a fresh process would find in the file.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import hpwidgets as hw
from hpwidgets.trial import TrialState

REPO = Path(__file__).resolve().parents[2]
KERNEL = "hpwidgets-faults"
Row = tuple[int, str, float | None, str | None]


def rows(db: Path, study: str | None = None) -> list[Row]:
    """(number, state, value, error) of every trial in ``db`` (of one study when named), by number."""
    query = ("SELECT t.number, t.state, t.value, t.error FROM trials AS t JOIN studies AS s ON s.id = t.study_id "
             "WHERE ? IS NULL OR s.name = ? ORDER BY s.id, t.number")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:  # read-only: the check never writes
        return conn.execute(query, (study, study)).fetchall()


def finished_count(db: Path, study: str | None = None) -> int:
    """Finished trials on disk; 0 while the file or its tables do not exist yet."""
    try:
        return sum(1 for row in rows(db, study) if row[1] != "RUNNING")
    except sqlite3.Error:
        return 0


def integrity(db: Path) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def assert_saved(study: hw.Study, db: Path, *, running: int = 0) -> list[Row]:
    """Every finished trial the study holds is on disk, identical; at most ``running`` RUNNING rows."""
    on_disk = rows(db, study.name)
    by_number = {number: (state, value, error) for number, state, value, error in on_disk}
    for trial in study.trials:
        assert trial.number in by_number, f"trial {trial.number} finished but is not on disk"
        state, value, error = by_number[trial.number]
        assert (state, value, error) == (trial.state.value, trial.value, trial.error), f"trial {trial.number} differs"
    stuck = [row for row in on_disk if row[1] == "RUNNING"]
    assert len(stuck) <= running, f"RUNNING rows left behind: {stuck}"
    assert integrity(db) == "ok"
    return on_disk


def states(trials: Iterable[hw.FrozenTrial]) -> list[TrialState]:
    return [t.state for t in trials]


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "the condition") -> None:
    """Poll ``condition`` every 20 ms; fail the test (never hang it) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.02)


def child_env() -> dict[str, str]:
    """The environment for a child interpreter that must import this checkout."""
    paths = [str(REPO), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


# --- real kernels through nbclient ---------------------------------------------------------------
def install_kernelspec(root: Path) -> dict[str, str]:
    """A kernelspec for this interpreter under ``root``; returns the env vars that make it visible."""
    spec_dir = root / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "hpwidgets faults", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return {"JUPYTER_PATH": str(root / "jupyter"), "IPYTHONDIR": str(root / "ipython"),
            "PYTHONPATH": child_env()["PYTHONPATH"]}


def notebook(cells: list[str]) -> Any:
    import nbformat
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])


def client(nb: Any, cwd: Path, timeout: float = 60) -> Any:
    """A NotebookClient that records errors in the outputs instead of raising (we assert on them)."""
    import nbclient
    return nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=timeout, allow_errors=True,
                                   resources={"metadata": {"path": str(cwd)}})


def interrupt(nb_client: Any) -> None:
    """``KernelManager.interrupt_kernel`` from another thread (nbclient's manager is the async one)."""
    result = nb_client.km.interrupt_kernel()
    if asyncio.iscoroutine(result):
        asyncio.run(result)


def stream(cell: Any, name: str = "stdout") -> str:
    return "".join(out.get("text", "") for out in cell.outputs
                   if out.output_type == "stream" and out.get("name") == name)


def error_name(cell: Any) -> str | None:
    return next((out.ename for out in cell.outputs if out.output_type == "error"), None)
