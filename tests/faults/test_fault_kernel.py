"""Scenarios 4 and 6 in real kernels driven by nbclient: a kernel interrupt during ``%%hptune --wait``,
and a kernel SIGKILLed in the middle of a background search, then the same cell re-run in a new kernel.

Each cell logs the trial numbers it runs to a file named by the notebook, so the test can tell
which trials a kernel really ran, not just what the store says.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from faultkit import client, error_name, finished_count, integrity, interrupt, notebook, rows, stream, wait_until

pytestmark = pytest.mark.slow

TRIALS = 24


def hptune_cell(name: str, *flags: str) -> str:
    """A cell that sleeps 0.1 s per trial and appends its trial number to LOG (set by an earlier cell)."""
    options = " ".join(["--algo random --seed 0", f"--trials {TRIALS}", f"--name {name}", "--storage s.db",
                        "-o st", *flags])
    return (f"%%hptune {options}\nx = hp.uniform(0, 1)\nimport time\ntime.sleep(0.1)\n"
            "with open(LOG, 'a') as log:\n    print(hp.trial.number, file=log)\nx\n")


def logged(path: Path) -> list[int]:
    return [int(n) for n in path.read_text().split()] if path.exists() else []


# --- 4. kernel interrupt during %%hptune --wait ----------------------------------------------------
def interrupt_notebook() -> object:
    return notebook([
        "%load_ext hpwidgets\nLOG = 'run.log'",
        hptune_cell("intr", "--wait"),
        "import time\ntime.sleep(0.3)  # the trial that was running finishes\n"
        "print(st.running, st.paused, len(st.trials))",
        "%hptune stop intr",
        "print(st.wait(20), st.finish_reason, len(st.trials))",
        hptune_cell("intr", "--wait"),  # the same cell again: resumes from the store
    ])


def test_kernel_interrupt_pauses_the_search_and_rerunning_the_cell_resumes_it(kernel_env: Path) -> None:
    db, nb = kernel_env / "s.db", interrupt_notebook()
    runner = client(nb, kernel_env)
    watcher = threading.Thread(target=lambda: (wait_until(lambda: finished_count(db) >= 3, 30, "3 trials"),
                                               interrupt(runner)), daemon=True)
    with runner.setup_kernel():
        runner.execute_cell(nb.cells[0], 0)
        watcher.start()
        runner.execute_cell(nb.cells[1], 1)
        watcher.join()
        for index in range(2, len(nb.cells)):
            runner.execute_cell(nb.cells[index], index)
    cells = nb.cells
    assert error_name(cells[1]) == "KeyboardInterrupt" and "is paused" in stream(cells[1], "stderr")
    running, paused, done = stream(cells[2]).split()
    assert (running, paused) == ("True", "True") and 3 <= int(done) < TRIALS, stream(cells[2])
    assert error_name(cells[3]) is None and "UsageError" not in stream(cells[3], "stderr"), stream(cells[3], "stderr")
    assert stream(cells[4]).split()[:2] == ["True", "stopped"]
    assert f"{TRIALS} trials ({TRIALS} complete)" in stream(cells[5])
    assert [row[:2] for row in rows(db)] == [(n, "COMPLETE") for n in range(TRIALS)]
    assert sorted(logged(kernel_env / "run.log")) == list(range(TRIALS))  # nothing ran twice
    assert integrity(db) == "ok"


# --- 6. kernel SIGKILLed mid-search, the same cell re-run in a new kernel ---------------------------
def run_and_kill(cwd: Path) -> None:
    """Start the background search in a kernel, then SIGKILL that kernel after 5 finished trials."""
    nb = notebook(["%load_ext hpwidgets\nLOG = 'first.log'\nimport os\nprint(os.getpid())", hptune_cell("killed")])
    runner = client(nb, cwd)
    with runner.setup_kernel():
        runner.execute_cell(nb.cells[0], 0)
        pid = int(stream(nb.cells[0]))
        runner.execute_cell(nb.cells[1], 1)  # returns at once: the search runs in the background
        assert error_name(nb.cells[1]) is None, nb.cells[1].outputs
        wait_until(lambda: finished_count(cwd / "s.db") >= 5, 30, "5 finished trials")
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: dead(pid), 10, "the kernel to die")


def dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as stat:  # a zombie until its parent reaps it: dead all the same
        return stat.read().split()[2] == "Z"


def test_a_killed_kernel_resumes_in_a_new_kernel_with_the_exact_finished_count(kernel_env: Path) -> None:
    db = kernel_env / "s.db"
    run_and_kill(kernel_env)
    before = {number: (state, value) for number, state, value, _ in rows(db)}
    done = {n for n, (state, _) in before.items() if state != "RUNNING"}
    cut = {n for n, (state, _) in before.items() if state == "RUNNING"}  # the trial the kill interrupted
    assert len(done) >= 5 and len(cut) <= 1 and set(logged(kernel_env / "first.log")) <= done | cut
    nb = notebook(["%load_ext hpwidgets\nLOG = 'second.log'", hptune_cell("killed"),
                   "print(st.wait(60), len(st.trials), st.finish_reason)"])
    client(nb, kernel_env).execute()
    assert stream(nb.cells[2]).split() == ["True", str(TRIALS), "complete"], nb.cells[2].outputs
    after = rows(db)
    assert [row[0] for row in after] == list(range(TRIALS)) and all(row[1] != "RUNNING" for row in after)
    assert all(before[n] == (state, value) for n, state, value, _ in after if n in done)  # untouched
    assert all(state == "FAIL" and "interrupted" in error for n, state, _, error in after if n in cut)
    rerun = logged(kernel_env / "second.log")
    assert sorted(rerun) == [n for n in range(TRIALS) if n not in done | cut]  # exactly the missing ones
    assert integrity(db) == "ok"
