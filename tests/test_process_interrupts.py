"""executor="processes" and a real Ctrl-C: SIGINT to the whole process group, as a terminal and
Jupyter's interrupt send it. Worker and manager processes ignore it; the study stops their trials.

Each scenario runs in a child process in a session of its own (so only it and its workers get the
signal), which prints what it saw as one JSON line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import hpwidgets as hw

CHILD = r'''
import json, os, signal, sys, threading, time
from pathlib import Path
import hpwidgets as hw
from hpwidgets.events import TrialReported

HERE = Path(__file__).parent
if __name__ == "__mp_main__" and os.environ.get("SLOW_START"):
    (HERE / f"starting-{os.getpid()}").touch()
    time.sleep(float(os.environ["SLOW_START"]))  # as a main script's `import torch` does in each spawned process


def ctrl_c():
    os.killpg(os.getpgid(0), signal.SIGINT)


def until(condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def reports(params, trial):
    for step in range(10):
        trial.report(step, loss=params["x"])
        time.sleep(0.05)
    return params["x"]


def stuck(params, trial):
    (HERE / f"running-{trial.number}").touch()
    trial.report(0, loss=params["x"])
    time.sleep(60)  # never reports again: only ending its process stops it
    return params["x"]


def silent(params, trial):
    time.sleep(60)  # loads its data: no report yet
    trial.report(0, loss=params["x"])
    return params["x"]


def outcome(study, **more):
    trials = [[t.state.name, t.error] for t in study.trials]
    print(json.dumps({"trials": trials, "finish_reason": study.finish_reason, **more}), flush=True)


def pause(study):
    """%%hptune --wait's way: a background search, Ctrl-C while waiting pauses it."""
    reported = set()
    study.subscribe(lambda e: reported.add(e.number) if isinstance(e, TrialReported) else None)
    study.optimize(reports, trials=4, parallel=2, executor="processes", background=True, progress=False)
    threading.Thread(target=lambda: until(lambda: len(reported) == 2) and ctrl_c(), daemon=True).start()
    try:
        study.wait(30)
    except KeyboardInterrupt:
        pass
    until(lambda: len(study.trials) == 2)  # the two running trials go on to their end
    paused = [[t.state.name, t.error] for t in study.trials]
    study.resume()
    study.wait(30)
    outcome(study, paused=paused)


def foreground(study, objective, first_press, second_press):
    returned = threading.Event()
    pressed = []

    def press():
        until(first_press)
        pressed.append(time.monotonic())
        ctrl_c()
        if second_press and not returned.wait(1.0):  # by then the study waits for its trials to return
            ctrl_c()

    threading.Thread(target=press, daemon=True).start()
    try:
        study.optimize(objective, trials=4, parallel=2, executor="processes", progress=False)
    except KeyboardInterrupt:
        returned.set()
    outcome(study, interrupt_s=time.monotonic() - pressed[0])


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)  # started from a background job, it may be ignored
    study = hw.Study(space={"x": hw.uniform(0, 1)}, algo="random", seed=0, storage=None)
    scenario = sys.argv[1]
    if scenario == "pause":
        pause(study)
    elif scenario == "start-up":
        foreground(study, reports, lambda: any(HERE.glob("starting-*")), second_press=False)
    elif scenario == "twice-at-start-up":
        foreground(study, silent, lambda: any(HERE.glob("starting-*")), second_press=True)
    else:
        foreground(study, stuck, lambda: len(list(HERE.glob("running-*"))) == 2, second_press=True)
'''


def run_child(folder: Path, scenario: str, **env: str) -> dict[str, Any]:
    """The child's JSON line, plus ``wall_s``: how long it took to run and exit (workers included)."""
    script = folder / "child.py"
    script.write_text(CHILD)
    package = str(Path(hw.__file__).resolve().parent.parent)
    (folder / "tmp").mkdir()
    child_env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(folder / "tmp"), **env,
                 "PYTHONPATH": os.pathsep.join(filter(None, [package, os.environ.get("PYTHONPATH")]))}
    started = time.monotonic()
    with subprocess.Popen([sys.executable, str(script), scenario], cwd=folder, env=child_env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True) as child:
        try:
            out, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # its worker processes too
            out, err = child.communicate()
            raise AssertionError(f"the child did not end within 60 s:\n{err[-3000:]}") from None
    assert child.returncode == 0, err[-3000:]
    lines = out.strip().splitlines()
    assert lines, err[-3000:]
    return {**json.loads(lines[-1]), "wall_s": time.monotonic() - started}


def test_ctrl_c_while_waiting_pauses_a_process_search_whose_running_trials_then_finish(tmp_path: Path) -> None:
    seen = run_child(tmp_path, "pause")
    assert seen["paused"] == [["COMPLETE", None]] * 2  # not FAIL "interrupted: KeyboardInterrupt"
    assert seen["trials"] == [["COMPLETE", None]] * 4 and seen["finish_reason"] == "complete"


def test_ctrl_c_while_the_processes_start_leaves_them_running_and_stops_their_trials(tmp_path: Path) -> None:
    # The manager process is still re-running the main script when the Ctrl-C comes: it survives,
    # and the trials, started late, stop at their first report.
    seen = run_child(tmp_path, "start-up", SLOW_START="0.5")
    assert seen["trials"] == [["PRUNED", None]] * 2
    assert seen["finish_reason"] == "interrupted" and seen["interrupt_s"] < 10


def test_a_second_ctrl_c_ends_the_worker_processes_of_trials_that_no_longer_report(tmp_path: Path) -> None:
    seen = run_child(tmp_path, "twice")
    assert seen["trials"] == [["FAIL", "interrupted"]] * 2  # booked once each, not sent again
    assert seen["finish_reason"] == "interrupted"
    assert seen["interrupt_s"] < 10 and seen["wall_s"] < 30  # the trials would sleep 60 s; exit waits for none
    assert not list((tmp_path / "tmp").glob("hpwidgets-objective-*"))  # the pickled objective is deleted


def test_a_second_ctrl_c_while_the_processes_start_starts_none_after_it(tmp_path: Path) -> None:
    # The second Ctrl-C comes while a trial's thread still waits for the first worker processes to
    # start: nothing is there to end yet, and none may start later to run a trial to its end.
    seen = run_child(tmp_path, "twice-at-start-up", SLOW_START="2")
    assert seen["trials"] == [["FAIL", "interrupted"]] * 2
    assert seen["wall_s"] < 30  # the trials would take 60 s before their first report
